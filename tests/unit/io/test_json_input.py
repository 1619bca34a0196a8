"""Tests for dataflow_cli.io.json: JSON array input and where its errors are reported."""

from __future__ import annotations

from tests.support.inputs import input_error

# --------------------------------------------------------------------------- bad input


def test_json_not_an_array(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('\n  {"a": 1}', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:2:3"  # where the object starts
    assert error.reason == "expected a JSON array of objects, got an object"
    assert "wrap this object in [ ]" in error.hint and ".jsonl" in error.hint


def test_json_array_item_not_an_object(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n  {"a": 1},\n  {"a": [1, 2]},\n  "oops"\n]\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:4:3"
    assert error.reason == "array item 3 is a string, not an object"


def test_json_malformed(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n  {"a": 1},\n  {"a": 2,}\n]\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:3:11"
    assert error.reason.startswith("malformed JSON: ")


def test_json_not_utf8(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b'[\n{"a": "x"},\n{"a": "\xfe"}\n]')
    error = input_error([path])
    assert error.location == f"{path}:3"
    assert error.reason == "file is not valid UTF-8 (byte 0xfe at column 8)"


def test_json_mixed_types(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"a": 1},\n {"a": null},\n {"a": {"b": 2}}]', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:3:2"
    assert error.reason == "key `a` is an object here but a number in item 1"
