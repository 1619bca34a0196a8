"""Helpers for the input-reader tests (tests/unit/io): writing inputs, reading them back."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from dataflow_cli.errors import InputError
from dataflow_cli.io.inputs import iter_batches
from dataflow_cli.io.paths import format_for


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8"
    )
    return path


def write_parquet(path: Path, records: list[dict], **kwargs) -> Path:
    pq.write_table(pa.Table.from_pylist(records), path, **kwargs)
    return path


def rows(paths: list[Path], batch_size: int = 1000, limit: int | None = None) -> list[dict]:
    return [row for table in iter_batches(paths, batch_size, limit) for row in table.to_pylist()]


def input_error(paths: list[Path], batch_size: int = 100) -> InputError:
    with pytest.raises(InputError) as caught:
        rows(paths, batch_size)
    assert caught.type is InputError
    return caught.value


SAMPLE = [
    {"text": "hello", "n": 1, "x": 0.5, "ok": True},
    {"text": "", "n": None, "x": -2.25, "ok": False},
    {"text": None, "n": 3, "x": None, "ok": None},
    {"text": 'emoji 😀 CJK 中文 é "quoted" \\ back', "n": 2**62 + 1, "x": 1e-7, "ok": True},
    {"text": "multi\nline\ttab\r\n", "n": -7, "x": 3.0, "ok": False},
]


def write_sample(path: Path) -> Path:
    fmt = format_for(path)
    if fmt == "parquet":
        return write_parquet(path, SAMPLE)
    if fmt == "jsonl":
        return write_jsonl(path, SAMPLE)
    if fmt == "json":
        path.write_text(json.dumps(SAMPLE, ensure_ascii=False, indent=2), encoding="utf-8")
        return path
    table = pa.Table.from_pylist(SAMPLE)
    pa_csv.write_csv(table, path)
    return path
