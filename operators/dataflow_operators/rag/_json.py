"""Strict JSON answers of the rag operators' prompts."""

from __future__ import annotations

from typing import Any

from dataflow_cli.llm.operator import ParseError


def text_field(value: dict[str, Any], name: str) -> str:
    """A required, non-blank string field, stripped."""
    field = value.get(name)
    if not isinstance(field, str) or not field.strip():
        raise ParseError(f"`{name}` is missing or empty")
    return field.strip()


def object_schema(**fields: dict[str, Any]) -> dict[str, Any]:
    """A closed JSON object schema with every field required, in the given order."""
    return {"type": "object", "properties": fields, "required": list(fields), "additionalProperties": False}


TEXT = {"type": "string", "minLength": 1}
