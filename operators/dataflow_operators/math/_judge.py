"""Strict JSON answers of LLM judges, shared by the math operators."""

from __future__ import annotations

from typing import Any

from dataflow_cli.llm.operator import ParseError, json_object


def reason_of(value: dict[str, Any]) -> str:
    reason = value.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ParseError("`reason` is missing or not a non-empty string")
    return reason.strip()


def verdict_schema() -> dict[str, Any]:
    """A check's answer: the reason first (the model reasons, then decides), then the verdict."""
    return {
        "type": "object",
        "properties": {"reason": {"type": "string", "minLength": 1}, "passed": {"type": "boolean"}},
        "required": ["reason", "passed"],
        "additionalProperties": False,
    }


def question_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"question": {"type": "string", "minLength": 1}},
        "required": ["question"],
        "additionalProperties": False,
    }


def question_of(text: str) -> str:
    value = json_object(text)
    question = value.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ParseError("`question` is missing or empty")
    return question.strip()
