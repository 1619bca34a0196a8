"""JSON Lines input: blocks of whole lines parsed by pyarrow, types from the first block.

pyarrow's messages do not say which line is bad (and for a type change they name the two
types in whatever order its parallel parser met them), so on failure the block is parsed
again line by line in Python to find the line and describe the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json

from dataflow_cli.errors import InputError
from dataflow_cli.io import _shared
from dataflow_cli.io._shared import (
    UTF8_BOM,
    conform,
    fits,
    json_kind,
    kind_phrase,
    numbered_lines,
    short,
    temporal_as_strings,
    utf8_error,
)

HINT = 'every line of a .jsonl file must be one JSON object, e.g. {"text": "..."}'


def head_schema(path: Path) -> pa.Schema | None:
    """Types inferred from the first block (None for a file of blank lines)."""
    head = next(_blocks(path), None)
    return None if head is None else _parse_block(path, head[1], head[0], None).schema


def peek_columns(path: Path) -> dict[str, str]:
    """Columns of the first record only."""
    for line_no, raw in numbered_lines(path):
        if raw.strip():
            schema = _parse_block(path, raw, line_no, None).schema
            return {field.name: str(field.type) for field in schema}
    return {}


def locate_column(path: Path, name: str, other: pa.DataType) -> str:
    """Location of the first line whose `name` value does not fit `other`."""
    for line_no, raw in numbered_lines(path):
        try:
            record = json.loads(raw) if raw.strip() else None
        except ValueError:
            continue
        value = record.get(name) if isinstance(record, dict) else None
        if value is not None and not fits(value, other):
            return f"{path}:{line_no}"
    return str(path)


def iter_tables(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    for first_line, data in _blocks(path):
        table = _parse_block(path, data, first_line, schema)

        def locate(name: str, type_: pa.DataType | None, data=data, first_line=first_line) -> str:
            return _first_line_with(path, data, first_line, name, type_)

        yield conform(table, schema, locate)


def _blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield (number of the first line, bytes) for blocks of about BLOCK_BYTES of whole lines."""
    line_no = 1
    pending: list[bytes] = []
    with open(path, "rb") as handle:
        first = True
        while True:
            block = handle.read(_shared.BLOCK_BYTES)
            if first:
                block = block.removeprefix(UTF8_BOM)
                first = False
            if not block:
                break
            cut = block.rfind(b"\n")
            if cut < 0:
                pending.append(block)  # one line longer than a block: keep reading
                continue
            data = b"".join([*pending, block[: cut + 1]])
            pending = [block[cut + 1 :]]
            if data.strip():
                yield line_no, data
            line_no += data.count(b"\n")
    rest = b"".join(pending)
    if rest.strip():
        yield line_no, rest


def _parse_block(path: Path, data: bytes, first_line: int, schema: pa.Schema | None) -> pa.Table:
    """Parse a block of JSON lines with pyarrow, using `schema` for known fields when given."""
    try:
        table = _parse_bytes(path, data, first_line, schema)
    except UnicodeDecodeError:
        # A key that is not UTF-8: pyarrow cannot even name the column.
        _raise_if_not_utf8(path, data, first_line)
        raise
    _check_utf8(path, data, first_line, table)
    return table


def _parse_bytes(path: Path, data: bytes, first_line: int, schema: pa.Schema | None) -> pa.Table:
    try:
        return _read_json_bytes(data, schema)
    except pa.ArrowException as exc:
        if schema is None:
            raise _locate_error(path, data, first_line, exc) from None
    # The block may be fine on its own and merely disagree with `schema`; conform() decides.
    try:
        return _read_json_bytes(data, None)
    except pa.ArrowException as exc:
        raise _locate_error(path, data, first_line, exc) from None


def _read_json_bytes(data: bytes, schema: pa.Schema | None) -> pa.Table:
    table = _read_json_with(data, schema)
    # Re-parse only when pyarrow inferred dates/timestamps itself (not when `schema` asked for them).
    wanted = pa.schema(
        [
            field if _given(schema, field) else field.with_type(temporal_as_strings(field.type))
            for field in table.schema
        ]
    )
    if not wanted.equals(table.schema):
        table = _read_json_with(data, wanted)
    return table


def _given(schema: pa.Schema | None, field: pa.Field) -> bool:
    return (
        schema is not None
        and schema.get_field_index(field.name) >= 0
        and schema.field(field.name).type == field.type
    )


def _read_json_with(data: bytes, schema: pa.Schema | None) -> pa.Table:
    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        return pa_json.read_json(pa.BufferReader(data), parse_options=parse)
    except pa.ArrowInvalid as exc:
        if "straddle" not in str(exc):
            raise
    # A line longer than pyarrow's parse block: parse the whole block at once instead.
    options = pa_json.ReadOptions(block_size=len(data) + 1)
    return pa_json.read_json(pa.BufferReader(data), read_options=options, parse_options=parse)


def _check_utf8(path: Path, data: bytes, first_line: int, table: pa.Table) -> None:
    # pyarrow's JSON reader passes invalid UTF-8 through; validating the parsed table is far
    # cheaper than decoding the raw bytes, so that happens first.
    if data.isascii():
        return
    try:
        table.validate(full=True)
        _all_field_names(table.schema)
        return
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    _raise_if_not_utf8(path, data, first_line)


def _raise_if_not_utf8(path: Path, data: bytes, first_line: int) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise utf8_error(path, data, exc.start, first_line) from None


def _all_field_names(fields: Iterable[pa.Field]) -> list[str]:
    # Reading a name that is not valid UTF-8 raises UnicodeDecodeError, which is the point.
    names = []
    for field in fields:
        names.append(field.name)
        type_ = field.type
        if pa.types.is_struct(type_):
            names += _all_field_names(type_.field(i) for i in range(type_.num_fields))
        elif pa.types.is_list(type_) or pa.types.is_large_list(type_):
            names += _all_field_names([type_.value_field])
    return names


_TYPE_CHANGE = re.compile(r"Column\((?P<path>[^)]*)\) changed from (?P<old>\w+) to (?P<new>\w+)")


def _locate_error(path: Path, data: bytes, first_line: int, exc: BaseException) -> InputError:
    """Turn a pyarrow failure on a JSONL block into an InputError pointing at the bad line."""
    records: list[tuple[int, object]] = []
    for offset, raw in enumerate(data.split(b"\n")):
        line_no = first_line + offset
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise utf8_error(path, raw, error.start, line_no) from None
        if not text.strip():
            continue
        try:
            value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as error:
            return InputError(
                f"malformed JSON line: {error.msg}", hint=HINT, location=f"{path}:{line_no}:{error.colno}"
            )
        except _DuplicateKey as error:
            return InputError(f"key `{error}` appears twice in one object", location=f"{path}:{line_no}")
        if not isinstance(value, dict):
            return InputError(
                f"JSON line is {kind_phrase(json_kind(value))}, not an object",
                hint=HINT,
                location=f"{path}:{line_no}",
            )
        records.append((line_no, value))
    change = _TYPE_CHANGE.search(str(exc))
    if change:
        field = change["path"].lstrip("/").replace("/[]", "[]") or "(root)"
        found = _find_type_change(records, change["path"])
        if found is None:
            return InputError(
                f"field `{field}` changes from {change['old']} to {change['new']}",
                hint=_TYPE_HINT,
                location=f"{path}:{first_line}",
            )
        line_no, new, old, old_line = found
        return InputError(
            f"field `{field}` is {kind_phrase(new)} here but {kind_phrase(old)} on line {old_line}",
            hint=_TYPE_HINT,
            location=f"{path}:{line_no}",
        )
    return InputError(f"cannot parse JSON lines: {short(exc)}", location=f"{path}:{first_line}")


_TYPE_HINT = "give a field the same JSON type on every line (null is fine for missing values)"


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _find_type_change(records: list[tuple[int, object]], field_path: str) -> tuple[int, str, str, int] | None:
    """(line, kind there, the kind first seen, its line) for the first value at `field_path`
    whose JSON kind differs from the first non-null one, reading in file order.

    The kinds are found here rather than taken from pyarrow's message, whose order depends on
    how its parallel parser split the block.
    """
    parts = [part for part in field_path.split("/") if part]
    first: tuple[str, int] | None = None
    for line_no, record in records:
        for value in _values_at(record, parts):
            kind = json_kind(value)
            if kind == "null":
                continue
            if first is None:
                first = (kind, line_no)
            elif kind != first[0]:
                return line_no, kind, first[0], first[1]
    return None


def _values_at(value: object, parts: list[str]) -> Iterator[object]:
    if not parts:
        yield value
    elif parts[0] == "[]" and isinstance(value, list):
        for item in value:
            yield from _values_at(item, parts[1:])
    elif isinstance(value, dict) and parts[0] in value:
        yield from _values_at(value[parts[0]], parts[1:])


def _first_line_with(path: Path, data: bytes, first_line: int, name: str, type_: pa.DataType | None) -> str:
    """Location of the first line whose `name` value is present (type_ None) or does not fit type_."""
    for offset, raw in enumerate(data.split(b"\n")):
        try:
            record = json.loads(raw) if raw.strip() else None
        except ValueError:
            continue
        value = record.get(name) if isinstance(record, dict) else None
        if value is not None and (type_ is None or not fits(value, type_)):
            return f"{path}:{first_line + offset}"
    return f"{path}:{first_line}"
