"""Read the input files of a spec as one stream of equally sized Arrow tables with one schema.

Everything streams: Parquet row groups, CSV blocks and JSONL blocks of whole lines are parsed
by pyarrow's C++ readers (one module per format beside this one) and re-chunked here into
`batch_size`-row tables, so memory stays bounded whatever the input size. Only JSON array files
are read whole.

All tables of one `iter_batches` call share one schema. It is fixed before the first table is
produced, from each file's cheap-to-read head (Parquet footer, first CSV/JSONL block, whole
JSON file), so that a column appearing only in a later file is still known up front. Files of
a glob must agree on each column's type up to the lossless promotions of `_shared.promotes`
(e.g. int64 and float64 meet as float64); any other disagreement is an error naming both files,
just as the same disagreement inside one file is.

Bad input never surfaces as a pyarrow/json/codec exception: it becomes an `InputError` with a
one-line reason and a `file:line[:col]` location.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

import pyarrow as pa

from dataflow_cli.errors import InputError
from dataflow_cli.io._shared import nulls_as_strings, reading, reject_duplicate_columns
from dataflow_cli.io.paths import FORMATS, expand_inputs, format_for

# Format -> reader module, imported on first use: pyarrow.parquet alone costs ~0.1 s, which a
# JSONL pipeline's `validate` should not pay.
_READERS = {
    "parquet": "dataflow_cli.io.parquet",
    "jsonl": "dataflow_cli.io.jsonl",
    "json": "dataflow_cli.io.json",
    "csv": "dataflow_cli.io.csv",
    "documents": "dataflow_cli.io.documents",
}


def _reader(path: Path) -> ModuleType:
    import importlib

    return importlib.import_module(_READERS[format_for(path, documents=True)])


def _is_empty_file(path: Path) -> bool:
    return path.stat().st_size == 0


# --------------------------------------------------------------------------- read_schema


def read_schema(paths: list[Path]) -> dict[str, str]:
    """Map column name to Arrow type string, from each file's head only (no data is read).

    CSV columns are all reported as "string": the result is meant for column-existence checks.
    Columns whose types in two files' heads cannot meet are reported as `iter_batches` would.
    """
    columns: dict[str, str] = {}
    merged: pa.Schema | None = None
    origin: dict[str, tuple[Path, pa.DataType]] = {}
    for path in map(Path, paths):
        with reading(path):
            if _is_empty_file(path):
                continue
            module = _reader(path)
            peeked = module.peek_columns(path)
            if module.__name__ != _READERS["csv"]:  # CSV types are not known without parsing data
                schema = pa.schema([(name, pa.type_for_alias(t)) for name, t in peeked.items() if _alias(t)])
                merged = schema if merged is None else _merge(merged, schema, origin, path)
                _note_origin(origin, schema, path)
        for name, type_name in peeked.items():
            if columns.get(name, "null") == "null":
                columns[name] = type_name
    if not columns:
        raise _no_rows(paths)
    return columns


def _alias(type_name: str) -> bool:
    # Nested types have no alias; they take part in the full check of iter_batches only.
    try:
        pa.type_for_alias(type_name)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- iter_batches


def iter_batches(paths: list[Path], batch_size: int, limit: int | None = None) -> Iterator[pa.Table]:
    """Stream every row of `paths` in order as tables of exactly `batch_size` rows (the last may be
    shorter), all with one schema; stop after `limit` rows when given.

    Tables may span file boundaries and may consist of several chunks.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    paths = [Path(path) for path in paths]
    if not paths:
        raise InputError("no input files given")
    if limit is not None and limit <= 0:
        return
    schema = _unified_schema(paths)
    rechunker = _Rechunker(batch_size)
    remaining = limit
    for path, tables in _tables(paths, schema, batch_size):
        with reading(path):
            for table in tables:
                if remaining is not None and table.num_rows >= remaining:
                    yield from rechunker.push(table.slice(0, remaining))
                    yield from rechunker.flush()
                    return
                if remaining is not None:
                    remaining -= table.num_rows
                yield from rechunker.push(table)
    if rechunker.total_rows == 0:
        raise _no_rows(paths)
    yield from rechunker.flush()


def with_row_ids(tables: Iterable[pa.Table]) -> Iterator[tuple[int, pa.Table]]:
    """(index, batch) with the rows' `_id` as the first column: the input's own `_id` (as
    text) where it has that column, else the row's number in the input. A run and every later
    reader of its checkpoints (`runinfo`) number rows this one way."""
    import numpy as np
    import pyarrow.compute as pc

    offset = 0
    for index, table in enumerate(tables):
        n = table.num_rows
        if "_id" in table.column_names:
            ids = pc.cast(table.column("_id"), pa.string())
            table = table.drop_columns(["_id"])
        else:
            numbers = np.arange(offset, offset + n, dtype=np.int64)
            # from_buffers, not pa.array: the latter makes pyarrow import pandas (~0.25 s).
            ids = pc.cast(pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(numbers)]), pa.string())
        offset += n
        yield index, table.add_column(0, "_id", ids)


def _tables(
    paths: list[Path], schema: pa.Schema, batch_size: int
) -> Iterator[tuple[Path, Iterator[pa.Table]]]:
    """(file, its tables) in order; consecutive documents are read together (in parallel), and an
    empty document is still a row (saying it is empty), unlike an empty data file."""
    i = 0
    while i < len(paths):
        module = _reader(paths[i])
        if module.__name__ == _READERS["documents"]:
            j = i
            while j < len(paths) and _reader(paths[j]) is module:
                j += 1
            yield paths[i], module.iter_tables_many(paths[i:j], schema, batch_size)
            i = j
            continue
        with reading(paths[i]):
            if not _is_empty_file(paths[i]):
                yield paths[i], module.iter_tables(paths[i], schema, batch_size)
        i += 1


class _Rechunker:
    """Collects tables and hands them back in slices of exactly `size` rows (zero-copy)."""

    def __init__(self, size: int):
        self.size = size
        self.total_rows = 0
        self._parts: list[pa.Table] = []
        self._rows = 0

    def push(self, table: pa.Table) -> Iterator[pa.Table]:
        if table.num_rows == 0:
            return
        self.total_rows += table.num_rows
        self._parts.append(table)
        self._rows += table.num_rows
        if self._rows < self.size:
            return
        whole = pa.concat_tables(self._parts) if len(self._parts) > 1 else self._parts[0]
        offset = 0
        while self._rows - offset >= self.size:
            yield whole.slice(offset, self.size)
            offset += self.size
        rest = whole.slice(offset)
        self._parts = [rest] if rest.num_rows else []
        self._rows = rest.num_rows

    def flush(self) -> Iterator[pa.Table]:
        if self._rows:
            yield pa.concat_tables(self._parts) if len(self._parts) > 1 else self._parts[0]
        self._parts, self._rows = [], 0


def _no_rows(paths: list[Path]) -> InputError:
    hint = "check that the input is the file you meant and that it is not empty"
    if len(paths) == 1:
        return InputError(f"input `{paths[0]}` has no rows", hint=hint, location=str(paths[0]))
    more = len(paths) - 1
    return InputError(f"input `{paths[0]}` (and {more} more file{'s' * (more > 1)}) has no rows", hint=hint)


# --------------------------------------------------------------------------- one schema for all files


def _unified_schema(paths: list[Path]) -> pa.Schema:
    """Merge the schema of every file's head; columns typed null everywhere become strings.

    Nothing is yielded before this is known, so a column first seen in a later file, or a column
    that is null in one file and text in another, still ends up with one type for all tables.
    A column that is null throughout every sampled head is typed string: later values are then
    cast to text rather than lost.
    """
    merged: pa.Schema | None = None
    origin: dict[str, tuple[Path, pa.DataType]] = {}
    for path in paths:
        with reading(path):
            schema = None if _is_empty_file(path) else _reader(path).head_schema(path)
            if schema is None:
                continue
            reject_duplicate_columns(path, schema.names)
            merged = schema if merged is None else _merge(merged, schema, origin, path)
        _note_origin(origin, schema, path)
    if merged is None:
        raise _no_rows(paths)
    return pa.schema([field.with_type(nulls_as_strings(field.type)) for field in merged])


def _note_origin(origin: dict[str, tuple[Path, pa.DataType]], schema: pa.Schema, path: Path) -> None:
    """Remember the first file that gave each column a type (a null type says nothing yet)."""
    for field in schema:
        if field.name not in origin and not pa.types.is_null(field.type):
            origin[field.name] = (path, field.type)


def _merge(
    merged: pa.Schema, schema: pa.Schema, origin: dict[str, tuple[Path, pa.DataType]], path: Path
) -> pa.Schema:
    try:
        return pa.unify_schemas([merged, schema], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    for field in schema:
        if field.name in origin and not _meet(origin[field.name][1], field.type):
            first_path, first_type = origin[field.name]
            raise _conflict(field.name, first_path, first_type, path, field.type)
    for field in schema:  # the conflict is with a type promoted from several earlier files
        if merged.get_field_index(field.name) >= 0 and not _meet(merged.field(field.name).type, field.type):
            raise _conflict(
                field.name, origin[field.name][0], merged.field(field.name).type, path, field.type
            )
    raise AssertionError(f"schemas of {path} do not unify, yet every column does")


def _meet(left: pa.DataType, right: pa.DataType) -> bool:
    try:
        pa.unify_schemas([pa.schema([("x", left)]), pa.schema([("x", right)])], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return False
    return True


def _conflict(
    name: str, first_path: Path, first_type: pa.DataType, path: Path, type_: pa.DataType
) -> InputError:
    with reading(path):
        location = _reader(path).locate_column(path, name, first_type)
    return InputError(
        f"column `{name}` is {first_type} in `{first_path}` but {type_} in `{path}`",
        hint=f"give `{name}` one type in every input file, e.g. text in both or numbers in both; "
        "or read the files in separate runs with `--set input.path=FILE`",
        location=location,
    )


__all__ = ["FORMATS", "expand_inputs", "format_for", "iter_batches", "read_schema"]
