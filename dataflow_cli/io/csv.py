"""CSV input: streamed in blocks by pyarrow; column types inferred from the first block.

pyarrow's CSV messages carry no line number, so on failure the file is re-scanned with
Python's csv module to find the row pyarrow choked on.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from dataflow_cli.errors import InputError
from dataflow_cli.io import _shared
from dataflow_cli.io._shared import (
    conform,
    decoded_lines,
    numbered_lines,
    reject_duplicate_columns,
    schema_map,
    short,
    temporal_as_strings,
)


def head_schema(path: Path) -> pa.Schema | None:
    """Column types as pyarrow infers them from the first block (None for a file with no header)."""
    header = _header(path)
    if not header:
        return None
    reject_duplicate_columns(path, header)
    try:
        reader = pa_csv.open_csv(path, read_options=_read_options(), convert_options=_convert_options())
    except pa.ArrowException as exc:
        raise _locate_error(path, exc) from None
    schema = reader.schema
    reader.close()
    if any(pa.types.is_binary(field.type) for field in schema):
        # pyarrow types a column with invalid UTF-8 as binary instead of failing.
        raise _locate_error(path, pa.ArrowInvalid("invalid UTF8 data"))
    return schema_map(schema, temporal_as_strings)


def peek_columns(path: Path) -> dict[str, str]:
    """Header names only, all reported as "string": no data is parsed."""
    return dict.fromkeys(_header(path) or [], "string")


def locate_column(path: Path, name: str, other: pa.DataType) -> str:
    """Location of the first row with a value in column `name` (CSV values are all text, so
    which of them decided the column's type is pyarrow's inference, not something to re-check)."""
    _raise_field_limit()
    reader = csv.reader(text for _, text in decoded_lines(path, numbered_lines(path)))
    header = next(reader, None) or []
    if name not in header:
        return str(path)
    index = header.index(name)
    row_start = reader.line_num + 1
    for row in reader:
        if len(row) > index and row[index] != "":
            return f"{path}:{row_start}"
        row_start = reader.line_num + 1
    return str(path)


def iter_tables(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    try:
        reader = pa_csv.open_csv(path, read_options=_read_options(), convert_options=_convert_options(schema))
    except pa.ArrowException as exc:
        raise _locate_error(path, exc) from None
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowException as exc:
                raise _locate_error(path, exc) from None
            yield conform(pa.Table.from_batches([batch]), schema, lambda name, type_: str(path))
    finally:
        reader.close()


def _header(path: Path) -> list[str] | None:
    _raise_field_limit()
    lines = (text for _, text in decoded_lines(path, numbered_lines(path)))
    return next(csv.reader(lines), None)


def _read_options() -> pa_csv.ReadOptions:
    return pa_csv.ReadOptions(block_size=_shared.BLOCK_BYTES)


def _convert_options(schema: pa.Schema | None = None) -> pa_csv.ConvertOptions:
    # Only an unquoted empty field is null: words like "NA" or "None" are text, and a quoted ""
    # stays an empty string, so nulls and empty strings both survive a CSV round trip.
    return pa_csv.ConvertOptions(
        column_types={field.name: field.type for field in schema or []},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )


_CONVERSION = re.compile(r"column #(\d+): CSV conversion error to (.+?): invalid value '(.*)'", re.S)


def _locate_error(path: Path, exc: BaseException) -> InputError:
    """Find, with Python's csv module, the line pyarrow choked on (its messages have no line)."""
    _raise_field_limit()
    reader = csv.reader(text for _, text in decoded_lines(path, numbered_lines(path)))
    header = next(reader, None) or []
    conversion = _CONVERSION.search(str(exc))
    row_start = reader.line_num + 1
    for row in reader:
        if row and len(row) != len(header):
            return InputError(
                f"row has {len(row)} fields but the header has {len(header)}",
                hint="quote fields that contain the delimiter, and give every row the same number of fields",
                location=f"{path}:{row_start}",
            )
        if conversion and row and row[int(conversion[1])] == conversion[3]:
            column = header[int(conversion[1])]
            return InputError(
                f"column `{column}` was typed {conversion[2]} from the first rows, but holds {conversion[3]!r} here",
                hint="make the column's values consistent, or convert the input to JSONL/Parquet with explicit types",
                location=f"{path}:{row_start}",
            )
        row_start = reader.line_num + 1
    return InputError(f"cannot parse CSV: {short(exc)}", location=str(path))


def _raise_field_limit() -> None:
    # Python's csv module refuses fields over 128 KiB by default; huge text cells are legitimate.
    if csv.field_size_limit() < sys.maxsize // 2:
        csv.field_size_limit(min(sys.maxsize, 2**62))
