"""Tests for dataflow_cli.io.jsonl: JSON Lines input and where its errors are reported."""

from __future__ import annotations

from tests.support.inputs import input_error, rows, write_jsonl

# --------------------------------------------------------------------------- reading


def test_jsonl_blank_lines_crlf_and_bom(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n   \n{"a": 2}\r\n{"a": 3}')
    assert rows([path]) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_nested_jsonl_values(tmp_path):
    records = [{"meta": {"lang": "en", "score": 1.5}, "tags": ["a", "b"]}, {"meta": None, "tags": []}]
    assert rows([write_jsonl(tmp_path / "a.jsonl", records)]) == records


# --------------------------------------------------------------------------- bad input


def test_malformed_jsonl_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3 "b": 4}\n', encoding="utf-8")
    error = input_error([path])
    assert error.reason == "malformed JSON line: Expecting ',' delimiter"
    assert error.location == f"{path}:3:9"


def test_malformed_jsonl_line_in_later_block(tmp_path, small_blocks):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(f'{{"a": {i}}}\n' for i in range(40)) + '{"a": }\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:41:7"
    assert error.reason.startswith("malformed JSON line: Expecting value")


def test_jsonl_line_not_an_object(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:2"
    assert error.reason == "JSON line is an array, not an object"


def test_jsonl_scalar_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n"just text"\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:3"
    assert "a string, not an object" in error.reason


def test_jsonl_not_utf8(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    error = input_error([path])
    assert error.location == f"{path}:2"
    assert error.reason == "file is not valid UTF-8 (byte 0xe9 at column 11)"
    assert "iconv -f latin1 -t utf-8" in error.hint


def test_jsonl_not_utf8_in_key_and_later_block(tmp_path, small_blocks):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"".join(b'{"a": "\xc3\xa9%d"}\n' % i for i in range(30)) + b'{"a\xff": 1}\n')
    error = input_error([path])
    assert error.location == f"{path}:31"
    assert error.reason == "file is not valid UTF-8 (byte 0xff at column 4)"


def test_jsonl_not_utf8_inside_malformed_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \xff}\n')
    error = input_error([path])
    assert error.location == f"{path}:2"
    assert "UTF-8" in error.reason


def test_jsonl_type_change_within_block(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": "three"}\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:3"
    assert error.reason == "field `a` is a string here but a number on line 1"


def test_jsonl_type_change_reported_where_the_value_is_whatever_pyarrow_says(tmp_path):
    # pyarrow parses a block in parallel chunks; a chunk that starts inside the run of strings
    # makes it report "changed from string to number", which used to blame line 6001 here.
    lines = [{"id": i, "text": "x" * 200} for i in range(30000)]
    for i in range(4000, 6000):
        lines[i] = {"id": "abc", "text": "y" * 200}
    path = write_jsonl(tmp_path / "a.jsonl", lines)
    for _ in range(3):
        error = input_error([path])
        assert error.location == f"{path}:4001"
        assert error.reason == "field `id` is a string here but a number on line 1"


def test_jsonl_nested_type_change(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"m": {"t": [1, 2]}}\n{"m": null}\n{"m": {"t": [3, "x"]}}\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:3"
    assert error.reason == "field `m/t[]` is a string here but a number on line 1"


def test_jsonl_value_that_does_not_fit_first_block_type(tmp_path, small_blocks):
    path = write_jsonl(tmp_path / "a.jsonl", [{"a": i} for i in range(20)] + [{"a": 1.5}])
    error = input_error([path])
    assert error.location == f"{path}:21"
    assert "`a`" in error.reason and "int64" in error.reason


def test_jsonl_field_appearing_late(tmp_path, small_blocks):
    path = write_jsonl(tmp_path / "a.jsonl", [{"a": i} for i in range(20)] + [{"a": 1, "new": "x"}])
    error = input_error([path])
    assert error.location == f"{path}:21"
    assert "`new`" in error.reason


def test_jsonl_duplicate_key(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n{"a": 1, "a": 2}\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:2"
    assert "`a`" in error.reason
