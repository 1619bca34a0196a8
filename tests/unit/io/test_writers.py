"""Tests for dataflow_cli.io.writers: formats, round trips through the readers, atomicity."""

from __future__ import annotations

import csv
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.io import writers
from dataflow_cli.io.inputs import iter_batches
from dataflow_cli.io.writers import (
    TableWriter,
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temp_files,
)

SIMPLE = pa.table(
    {
        "text": [
            "hello",
            "",
            None,
            "emoji 😀 CJK 中文 é",
            'q"uote \\ back/slash',
            "multi\nline\ttab\r\n",
            "ctl\x00\x1f",
        ],
        "n": [1, None, -3, 2**62 + 1, 0, -(2**63), 2**63 - 1],
        "x": [1.0, 0.1, None, 1e20, -2.5, 1e-7, 123456789.123],
        "ok": [True, False, None, True, False, True, False],
    }
)
NESTED = pa.table(
    {
        "tags": [["a", "b"], [], None],
        "meta": [{"lang": "en", "score": 1.5}, {"lang": None, "score": None}, None],
    }
)


def read_back(path: Path) -> list[dict]:
    return [row for table in iter_batches([path], 3) for row in table.to_pylist()]


def write_all(path: Path, *tables: pa.Table, **kwargs) -> Path:
    with TableWriter(path, **kwargs) as writer:
        for table in tables:
            writer.write(table)
        writer.commit()
    return path


def temp_files(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".tmp-" in name)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json", ".csv"])
def test_simple_types_round_trip(tmp_path, suffix):
    path = write_all(tmp_path / f"out{suffix}", SIMPLE.slice(0, 3), SIMPLE.slice(3))
    assert read_back(path) == SIMPLE.to_pylist()
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json"])
def test_nested_values_round_trip(tmp_path, suffix):
    path = write_all(tmp_path / f"out{suffix}", NESTED)
    assert read_back(path) == NESTED.to_pylist()


def test_csv_writes_nested_values_as_json_text(tmp_path):
    path = write_all(tmp_path / "out.csv", NESTED)
    assert read_back(path) == [
        {"tags": '["a","b"]', "meta": '{"lang":"en","score":1.5}'},
        {"tags": "[]", "meta": '{"lang":null,"score":null}'},
        {"tags": None, "meta": None},
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json", ".csv"])
def test_huge_value_round_trip(tmp_path, suffix):
    table = pa.table({"text": ["a", "é" * (5 << 20), "b"]})
    assert read_back(write_all(tmp_path / f"out{suffix}", table)) == table.to_pylist()


def test_explicit_format_overrides_suffix(tmp_path):
    path = write_all(tmp_path / "out.txt", SIMPLE, fmt="jsonl")
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == SIMPLE.to_pylist()


def test_unknown_suffix(tmp_path):
    with pytest.raises(SpecError):
        TableWriter(tmp_path / "out.txt")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- format details


def test_jsonl_is_one_utf8_object_per_line(tmp_path):
    path = write_all(tmp_path / "out.jsonl", SIMPLE)
    raw = path.read_bytes()
    assert "😀 CJK 中文".encode() in raw  # not \\u-escaped
    lines = raw.decode("utf-8").split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == SIMPLE.to_pylist()
    assert lines[0] == '{"text":"hello","n":1,"x":1.0,"ok":true}'
    assert lines[2] == '{"text":null,"n":-3,"x":null,"ok":null}'


def test_jsonl_floats_stay_floats_and_non_finite_become_null(tmp_path):
    table = pa.table({"x": [1.0, -0.0, float("nan"), float("inf"), 2.5e-300]})
    path = write_all(tmp_path / "out.jsonl", table)
    assert path.read_text().split() == [
        '{"x":1.0}',
        '{"x":-0.0}',
        '{"x":null}',
        '{"x":null}',
        '{"x":2.5e-300}',
    ]


def test_jsonl_other_types(tmp_path):
    table = pa.table(
        {
            "when": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("s")),
            "day": pa.array([datetime.date(2024, 1, 2), None]),
            "blob": pa.array([b"bytes", None]),
            "cat": pa.array(["a", None]).dictionary_encode(),
            "small": pa.array([1, None], pa.int8()),
            "f32": pa.array([0.5, None], pa.float32()),
            "nothing": pa.nulls(2),
            "wide": pa.array(["x", None], pa.large_string()),
        }
    )
    path = write_all(tmp_path / "out.jsonl", table)
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first == {
        "when": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "blob": "bytes",
        "cat": "a",
        "small": 1,
        "f32": 0.5,
        "nothing": None,
        "wide": "x",
    }
    assert set(second.values()) == {None}


def test_json_is_one_array(tmp_path):
    path = write_all(tmp_path / "out.json", SIMPLE.slice(0, 2), SIMPLE.slice(2, 0), SIMPLE.slice(2))
    assert json.loads(path.read_text(encoding="utf-8")) == SIMPLE.to_pylist()


def test_csv_is_readable_by_python(tmp_path):
    path = write_all(tmp_path / "out.csv", SIMPLE)
    with open(path, newline="", encoding="utf-8") as handle:
        parsed = list(csv.reader(handle))
    assert parsed[0] == ["text", "n", "x", "ok"]
    assert parsed[4][0] == "emoji 😀 CJK 中文 é"
    assert len(parsed) == SIMPLE.num_rows + 1


def test_parquet_uses_zstd_and_few_row_groups(tmp_path):
    table = pa.table({"i": list(range(1000))})
    path = write_all(tmp_path / "out.parquet", *(table.slice(i, 10) for i in range(0, 1000, 10)))
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_rows == 1000
    assert metadata.num_row_groups == 1
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_parquet_compression_option(tmp_path):
    path = write_all(tmp_path / "out.parquet", SIMPLE, compression="snappy")
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "SNAPPY"


# --------------------------------------------------------------------------- schema handling


def test_later_tables_are_reordered_and_cast(tmp_path):
    first = pa.table({"a": pa.array([1], pa.int64()), "b": ["x"]})
    later = pa.table({"b": ["y"], "a": pa.array([2], pa.int32())})
    for suffix in (".parquet", ".csv", ".jsonl"):
        path = write_all(tmp_path / f"out{suffix}", first, later)
        assert read_back(path) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert pq.read_schema(tmp_path / "out.parquet").field("a").type == pa.int64()


def test_json_formats_accept_values_after_null_typed_first_table(tmp_path):
    first = pa.table({"a": pa.nulls(1)})
    later = pa.table({"a": ["x"]})
    path = write_all(tmp_path / "out.jsonl", first, later)
    assert read_back(path) == [{"a": None}, {"a": "x"}]


def test_different_columns_are_a_bug(tmp_path):
    with TableWriter(tmp_path / "out.jsonl") as writer:
        writer.write(pa.table({"a": [1]}))
        with pytest.raises(ValueError):
            writer.write(pa.table({"b": [1]}))
    assert not (tmp_path / "out.jsonl").exists()
    assert temp_files(tmp_path) == []


def test_uncastable_table_is_a_bug_not_a_user_error(tmp_path):
    with TableWriter(tmp_path / "out.parquet") as writer:
        writer.write(pa.table({"a": [1]}))
        with pytest.raises(Exception) as caught:
            writer.write(pa.table({"a": ["not a number"]}))
    assert not isinstance(caught.value, DataflowError)
    assert temp_files(tmp_path) == []


# --------------------------------------------------------------------------- empty output


def test_empty_output_with_schema(tmp_path):
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    for suffix in (".parquet", ".csv", ".jsonl", ".json"):
        with TableWriter(tmp_path / f"out{suffix}", schema=schema) as writer:
            writer.commit()
    assert pq.read_table(tmp_path / "out.parquet").schema == schema
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 0
    assert (tmp_path / "out.csv").read_text() == '"a","b"\n'
    assert (tmp_path / "out.jsonl").read_bytes() == b""
    assert json.loads((tmp_path / "out.json").read_text()) == []


def test_empty_output_without_schema(tmp_path):
    for suffix in (".parquet", ".csv", ".jsonl", ".json"):
        with TableWriter(tmp_path / f"out{suffix}") as writer:
            writer.commit()
    assert pq.read_table(tmp_path / "out.parquet").num_columns == 0
    assert (tmp_path / "out.csv").read_bytes() == b""
    assert (tmp_path / "out.jsonl").read_bytes() == b""
    assert json.loads((tmp_path / "out.json").read_text()) == []


def test_zero_row_tables_write_nothing(tmp_path):
    path = write_all(tmp_path / "out.json", SIMPLE.slice(0, 0), SIMPLE.slice(0, 1), SIMPLE.slice(0, 0))
    assert json.loads(path.read_text()) == SIMPLE.slice(0, 1).to_pylist()


# --------------------------------------------------------------------------- atomicity


def test_nothing_appears_before_commit(tmp_path):
    path = tmp_path / "out.jsonl"
    writer = TableWriter(path)
    writer.write(SIMPLE)
    assert not path.exists()
    [temp] = temp_files(tmp_path)
    assert temp.startswith(f".out.jsonl.tmp-{os.getpid()}-")
    writer.commit()
    assert path.exists()
    assert temp_files(tmp_path) == []
    assert writer.rows_written == SIMPLE.num_rows


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json", ".csv"])
def test_abort_keeps_the_previous_file(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    path.write_bytes(b"previous content")
    writer = TableWriter(path)
    writer.write(SIMPLE)
    writer.abort()
    writer.abort()  # idempotent
    assert path.read_bytes() == b"previous content"
    assert temp_files(tmp_path) == []


def test_exception_inside_with_discards_output(tmp_path):
    path = tmp_path / "out.parquet"
    path.write_bytes(b"previous content")
    with pytest.raises(RuntimeError, match="boom"):
        with TableWriter(path) as writer:
            writer.write(SIMPLE)
            raise RuntimeError("boom")
    assert path.read_bytes() == b"previous content"
    assert temp_files(tmp_path) == []


def test_leaving_with_without_commit_discards_output(tmp_path):
    path = tmp_path / "out.jsonl"
    with TableWriter(path) as writer:
        writer.write(SIMPLE)
    assert not path.exists()
    assert temp_files(tmp_path) == []


def test_commit_replaces_previous_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    write_all(path, SIMPLE.slice(0, 1))
    assert json.loads(path.read_text()) == SIMPLE.slice(0, 1).to_pylist()[0]


def test_use_after_commit_or_abort(tmp_path):
    writer = TableWriter(tmp_path / "out.jsonl")
    writer.commit()
    with pytest.raises(RuntimeError):
        writer.write(SIMPLE)
    with pytest.raises(RuntimeError):
        writer.commit()
    aborted = TableWriter(tmp_path / "other.jsonl")
    aborted.abort()
    with pytest.raises(RuntimeError):
        aborted.commit()


# --------------------------------------------------------------------------- destinations


def test_creates_missing_directories(tmp_path):
    path = write_all(tmp_path / "a" / "b" / "out.jsonl", SIMPLE)
    assert read_back(path) == SIMPLE.to_pylist()


def test_directory_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "out.jsonl"
    with pytest.raises(DataflowError) as caught:
        TableWriter(path)
    assert caught.value.reason.startswith(f"cannot write `{path}`: ")
    assert caught.value.hint


def test_destination_is_a_directory(tmp_path):
    (tmp_path / "out.jsonl").mkdir()
    with pytest.raises(DataflowError) as caught:
        TableWriter(tmp_path / "out.jsonl")
    assert caught.value.reason == f"cannot write `{tmp_path / 'out.jsonl'}`: it is a directory"


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user"
)
def test_permission_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(DataflowError) as caught:
            TableWriter(locked / "out.jsonl")
        assert caught.value.reason.startswith(f"cannot write `{locked / 'out.jsonl'}`: ")
    finally:
        locked.chmod(0o700)


# --------------------------------------------------------------------------- atomic_write_*


def test_atomic_write_bytes_and_text(tmp_path):
    path = tmp_path / "state" / "progress.json"
    atomic_write_bytes(path, b"one")
    assert path.read_bytes() == b"one"
    atomic_write_text(path, "zwei 😀")
    assert path.read_text(encoding="utf-8") == "zwei 😀"
    assert temp_files(path.parent) == []


def test_atomic_write_unwritable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataflowError) as caught:
        atomic_write_text(tmp_path / "file" / "state.json", "{}")
    assert caught.value.reason.startswith("cannot write ")


def test_atomic_write_failure_leaves_old_content(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers.os, "replace", broken_replace)
    with pytest.raises(DataflowError) as caught:
        atomic_write_text(path, "new")
    assert "No space left on device" in caught.value.reason
    assert path.read_text() == "old"
    assert temp_files(tmp_path) == []


# --------------------------------------------------------------------------- stale temp files


def test_remove_stale_temp_files(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.jsonl.tmp-{dead_pid}-0badc0de"
    own_old = tmp_path / f".out.jsonl.tmp-{os.getpid()}-feedf00d"  # e.g. a restarted container
    alive = tmp_path / f".out.jsonl.tmp-{os.getppid()}-00000000"
    unrelated = [tmp_path / ".other.jsonl.tmp-1-abcd", tmp_path / "out.jsonl", tmp_path / ".out.jsonl.tmp-x"]
    for path in [stale, own_old, alive, *unrelated]:
        path.write_text("x")
    active = TableWriter(tmp_path / "out.jsonl")

    removed = remove_stale_temp_files(tmp_path, "out.jsonl")

    assert sorted(removed) == sorted([stale, own_old])
    assert alive.exists() and all(path.exists() for path in unrelated)
    assert active._temp.exists()
    active.abort()


def test_remove_stale_temp_files_missing_directory(tmp_path):
    assert remove_stale_temp_files(tmp_path / "nope", "out.jsonl") == []
