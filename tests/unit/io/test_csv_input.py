"""Tests for dataflow_cli.io.csv: CSV input and where its errors are reported."""

from __future__ import annotations

from tests.support.inputs import input_error, rows

# --------------------------------------------------------------------------- reading


def test_csv_bom_quotes_and_multiline(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b'\xef\xbb\xbfid,text\n1,"a, b"\n2,"line1\nline2"\n3,""\n4,\n')
    assert rows([path]) == [
        {"id": 1, "text": "a, b"},
        {"id": 2, "text": "line1\nline2"},
        {"id": 3, "text": ""},
        {"id": 4, "text": None},
    ]


def test_csv_null_like_words_stay_text(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("word\nNone\nNA\nnull\n", encoding="utf-8")
    assert [r["word"] for r in rows([path])] == ["None", "NA", "null"]


# --------------------------------------------------------------------------- bad input


def test_csv_ragged_row(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('a,b,c\n1,2,3\n4,"five\nstill five",6\n7,8\n', encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:5"
    assert error.reason == "row has 2 fields but the header has 3"


def test_csv_row_with_too_many_fields(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:3"
    assert error.reason == "row has 3 fields but the header has 2"


def test_csv_not_utf8_first_block(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,text\n1,ok\n2,na\xefve\n")
    error = input_error([path])
    assert error.location == f"{path}:3"
    assert error.reason == "file is not valid UTF-8 (byte 0xef at column 5)"
    assert "iconv" in error.hint


def test_csv_not_utf8_later_block(tmp_path, small_blocks):
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,text\n" + b"".join(b"%d,fine\n" % i for i in range(40)) + b"40,bad\x80\n")
    error = input_error([path])
    assert error.location == f"{path}:42"
    assert error.reason == "file is not valid UTF-8 (byte 0x80 at column 7)"


def test_csv_value_that_does_not_fit_first_block_type(tmp_path, small_blocks):
    path = tmp_path / "a.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(40)) + "forty\n", encoding="utf-8")
    error = input_error([path])
    assert error.location == f"{path}:42"
    assert "'forty'" in error.reason and "`n`" in error.reason


def test_csv_duplicate_header(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    error = input_error([path])
    assert error.location == str(path)
    assert error.reason == "column `a` appears twice"
