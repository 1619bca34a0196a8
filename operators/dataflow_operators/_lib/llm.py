"""Answer parsing shared by the generic LLM operators."""

from __future__ import annotations

import re

from dataflow_cli.llm.operator import ParseError

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_score(text: str, low: float, high: float) -> tuple[float, str]:
    """The first number in `text` and its text, if it lies in [low, high]."""
    match = _NUMBER.search(text)
    if match is None:
        raise ParseError("no number in answer")
    score = float(match.group())
    if not low <= score <= high:
        raise ParseError(f"score outside [{low:g}, {high:g}]")
    return score, match.group()


def find_label(text: str, labels: list[str]) -> tuple[int, str]:
    """The index and text of the listed label found earliest in `text` (case-insensitive)."""
    lowered = text.lower()
    found = [(lowered.find(label.lower()), i, label) for i, label in enumerate(labels)]
    found = [f for f in found if f[0] >= 0]
    if not found:
        raise ParseError("no known label in answer")
    _, index, label = min(found)
    return index, label
