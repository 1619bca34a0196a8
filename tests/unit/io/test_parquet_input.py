"""Tests for dataflow_cli.io.parquet: unreadable Parquet input."""

from __future__ import annotations

from tests.support.inputs import input_error, write_parquet

# --------------------------------------------------------------------------- bad input


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "a.parquet"
    path.write_bytes(b"PAR1 garbage garbage garbage")
    error = input_error([path])
    assert error.location == str(path)
    assert error.reason.startswith("not a readable Parquet file: ")
    assert "\n" not in error.reason


def test_truncated_parquet(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", [{"a": i} for i in range(1000)])
    path.write_bytes(path.read_bytes()[:-30])
    error = input_error([path])
    assert error.location == str(path)
    assert error.reason.startswith("not a readable Parquet file: ")
