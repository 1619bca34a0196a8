"""Parquet input: the schema from the footer, rows streamed by row-group batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataflow_cli.errors import InputError
from dataflow_cli.io._shared import conform, decoded, schema_map, short


def head_schema(path: Path) -> pa.Schema | None:
    """The file's schema; nothing but the footer is read."""
    try:
        return schema_map(pq.read_schema(path).remove_metadata(), decoded)
    except (pa.ArrowException, OSError) as exc:
        raise _bad_parquet(path, exc) from None


def peek_columns(path: Path) -> dict[str, str]:
    return {field.name: str(field.type) for field in head_schema(path) or []}


def locate_column(path: Path, name: str, other: pa.DataType) -> str:
    return str(path)  # a column's type is the file's, not a row's


def iter_tables(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    try:
        # Buffered column reads: memory stays bounded by batch size, not by row-group size.
        parquet_file = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
        batches = parquet_file.iter_batches(batch_size=batch_size)
    except (pa.ArrowException, OSError) as exc:
        raise _bad_parquet(path, exc) from None
    try:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise _bad_parquet(path, exc) from None
            yield conform(pa.Table.from_batches([batch]), schema, lambda name, type_: str(path))
    finally:
        parquet_file.close()


def _bad_parquet(path: Path, exc: BaseException) -> InputError:
    return InputError(
        f"not a readable Parquet file: {short(exc)}",
        hint="the file may be truncated or not Parquet at all; re-create it",
        location=str(path),
    )
