"""JSON input: a file holding one array of objects, read whole (JSON Lines is the streaming form)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from dataflow_cli.errors import InputError
from dataflow_cli.io._shared import (
    UTF8_BOM,
    conform,
    fits,
    json_kind,
    kind_phrase,
    line_col,
    short,
    utf8_error,
)

_HINT = "a .json input must be an array of objects, [{...}, {...}]; for one object per line use .jsonl"


def head_schema(path: Path) -> pa.Schema | None:
    records = _load_array(path)
    return _records_to_table(path, records).schema if records else None


def peek_columns(path: Path) -> dict[str, str]:
    records = _load_array(path)
    return {field.name: str(field.type) for field in _records_to_table(path, records[:1]).schema}


def locate_column(path: Path, name: str, other: pa.DataType) -> str:
    """Location of the first object whose `name` value does not fit `other`."""
    records = _load_array(path)
    for index, record in enumerate(records):
        value = record.get(name)
        if value is not None and not fits(value, other):
            return _item_location(path, _text(path), index)
    return str(path)


def iter_tables(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    table = _records_to_table(path, _load_array(path))
    yield conform(table, schema, lambda name, type_: str(path))


def _text(path: Path) -> str:
    data = path.read_bytes().removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise utf8_error(path, data, exc.start, 1) from None


def _load_array(path: Path) -> list[dict]:
    """Read a whole `[{...}, ...]` file; anything else is an InputError with a location."""
    text = _text(path)
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg}", location=f"{path}:{exc.lineno}:{exc.colno}") from None
    if not isinstance(value, list):
        line, column = line_col(text, len(text) - len(text.lstrip()))
        kind = json_kind(value)
        hint = _HINT
        if kind == "object":
            hint = (
                "a .json input must be an array of objects: wrap this object in [ ] to read it as "
                "one row, or, for one object per line, name the file .jsonl"
            )
        raise InputError(
            f"expected a JSON array of objects, got {kind_phrase(kind)}",
            hint=hint,
            location=f"{path}:{line}:{column}",
        )
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InputError(
                f"array item {index + 1} is {kind_phrase(json_kind(item))}, not an object",
                hint=_HINT,
                location=_item_location(path, text, index),
            )
    return value


_ITEM_GAP = re.compile(r"[ \t\n\r]*,?[ \t\n\r]*")


def _skip_gap(text: str, position: int) -> int:
    gap = _ITEM_GAP.match(text, position)
    return gap.end() if gap else position


def _item_location(path: Path, text: str, index: int) -> str:
    decoder = json.JSONDecoder()
    position = _skip_gap(text, text.index("[") + 1)
    for _ in range(index):
        _, position = decoder.raw_decode(text, position)
        position = _skip_gap(text, position)
    line, column = line_col(text, position)
    return f"{path}:{line}:{column}"


def _records_to_table(path: Path, records: list[dict]) -> pa.Table:
    if not records:
        return pa.table({})
    try:
        # pa.array infers one struct type over all records (Table.from_pylist would only look
        # at the first record's keys).
        return pa.Table.from_struct_array(pa.array(records))
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        hint = "give each key the same kind of value in every object (null is fine)"
        change = _first_kind_change(records)
        if change is None:
            raise InputError(
                f"cannot turn the JSON objects into columns: {short(exc)}", hint=hint, location=str(path)
            ) from None
        key, index, kind, (first_kind, first_index) = change
        raise InputError(
            f"key `{key}` is {kind_phrase(kind)} here but {kind_phrase(first_kind)} in item {first_index + 1}",
            hint=hint,
            location=_item_location(path, _text(path), index),
        ) from None


def _first_kind_change(records: list[dict]) -> tuple[str, int, str, tuple[str, int]] | None:
    """(key, item index, its kind, (first kind, its index)) for the first top-level value whose
    JSON kind differs from the key's first non-null value."""
    first: dict[str, tuple[str, int]] = {}
    for index, record in enumerate(records):
        for key, value in record.items():
            kind = json_kind(value)
            if kind == "null":
                continue
            seen = first.setdefault(key, (kind, index))
            if seen[0] != kind:
                return key, index, kind, seen
    return None
