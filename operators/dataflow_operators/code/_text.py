"""Reading code and tests out of a model's answer."""

from __future__ import annotations

import ast
import re

from dataflow_cli.llm.operator import ParseError

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"", "python", "py", "python3"}


def extract_code(text: str) -> str:
    """The Python in an answer: its first ```python (or untagged) fenced block, else the whole
    answer when it parses as Python. Raises ParseError when there is none or it does not parse."""
    blocks = [body for tag, body in _FENCE.findall(text) if tag.lower() in _PYTHON_TAGS]
    code = (blocks[0] if blocks else text).strip("\n")
    if not code.strip():
        raise ParseError("no code in answer")
    try:
        ast.parse(code)
    except (SyntaxError, ValueError) as exc:
        raise ParseError("code does not parse" if blocks else "no code block in answer") from exc
    return code + "\n"


def numbered_items(text: str) -> list[str]:
    """The items of a numbered list ("1. ...", "2) ..."), each possibly spanning several lines."""
    items: list[list[str]] = []
    for line in text.splitlines():
        match = re.match(r"\s*(?:\d+[.)]|[-*])\s+(.*)", line)
        if match:
            items.append([match.group(1).strip()])
        elif items and line.strip():
            items[-1].append(line.strip())
    return [" ".join(parts).strip() for parts in items if " ".join(parts).strip()]
