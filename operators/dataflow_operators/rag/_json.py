"""Strict JSON answers of the rag operators' prompts."""

from __future__ import annotations

import json
from typing import Any

from dataflow_cli.llm.engine import strip_code_fence
from dataflow_cli.llm.operator import ParseError


def json_object(text: str) -> dict[str, Any]:
    """The answer as a JSON object; prose around it, or no object at all, is a parse error."""
    try:
        value = json.loads(strip_code_fence(text))
    except ValueError:
        raise ParseError("answer is not JSON") from None
    if not isinstance(value, dict):
        raise ParseError("answer is not a JSON object")
    return value


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
