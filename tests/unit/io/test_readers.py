"""Tests for dataflow_cli.io.readers: formats, globbing, schemas, streaming and bad input."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from dataflow_cli.errors import InputError, SpecError
from dataflow_cli.io import readers
from dataflow_cli.io.readers import FORMATS, expand_inputs, format_for, iter_batches, read_schema

# --------------------------------------------------------------------------- helpers


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


@pytest.fixture
def small_blocks(monkeypatch):
    """Make JSONL/CSV blocks tiny so that multi-block behaviour shows on small files."""
    monkeypatch.setattr(readers, "BLOCK_BYTES", 64)


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


# --------------------------------------------------------------------------- format_for


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.parquet", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "json"),
        ("a.csv", "csv"),
        ("dir.v2/A.JSONL", "jsonl"),
    ],
)
def test_format_for_known_suffixes(name, fmt):
    assert format_for(Path(name)) == fmt
    assert fmt in FORMATS


def test_format_for_unknown_suffix_lists_supported_ones():
    with pytest.raises(SpecError) as caught:
        format_for(Path("data.txt"))
    for suffix in (".parquet", ".jsonl", ".ndjson", ".json", ".csv"):
        assert suffix in caught.value.reason
    assert "data.txt" in caught.value.reason


# --------------------------------------------------------------------------- expand_inputs


def test_expand_relative_and_absolute(tmp_path):
    file = write_jsonl(tmp_path / "a.jsonl", [{"x": 1}])
    assert expand_inputs("a.jsonl", tmp_path) == [file]
    assert expand_inputs(str(file), Path("/nonexistent")) == [file]


def test_expand_globs_sorted(tmp_path):
    for name in ["b.jsonl", "a.jsonl", "c.jsonl", "sub/d.jsonl", "sub/deeper/e.jsonl", "a1.jsonl"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(tmp_path / name, [{"x": 1}])
    assert [p.name for p in expand_inputs("*.jsonl", tmp_path)] == [
        "a.jsonl",
        "a1.jsonl",
        "b.jsonl",
        "c.jsonl",
    ]
    assert [p.name for p in expand_inputs("?.jsonl", tmp_path)] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    recursive = expand_inputs("**/*.jsonl", tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in recursive] == [
        "a.jsonl",
        "a1.jsonl",
        "b.jsonl",
        "c.jsonl",
        "sub/d.jsonl",
        "sub/deeper/e.jsonl",
    ]
    assert all(p.is_absolute() for p in recursive)


def test_expand_glob_ignores_directories_and_base_dir_glob_chars(tmp_path):
    base = tmp_path / "odd[1]"
    (base / "x.jsonl").mkdir(parents=True)  # a directory that matches the glob
    write_jsonl(base / "y.jsonl", [{"x": 1}])
    assert expand_inputs("*.jsonl", base) == [base / "y.jsonl"]


def test_expand_missing_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"x": 1}])
    with pytest.raises(InputError) as caught:
        expand_inputs("trian.jsonl", tmp_path)
    assert caught.value.reason == "input file `trian.jsonl` not found"
    assert "train.jsonl" in caught.value.hint


def test_expand_missing_directory(tmp_path):
    with pytest.raises(InputError) as caught:
        expand_inputs("nope/a.jsonl", tmp_path)
    assert caught.value.reason == "input file `nope/a.jsonl` not found"
    assert "does not exist" in caught.value.hint


def test_expand_glob_without_match(tmp_path):
    with pytest.raises(InputError) as caught:
        expand_inputs("data/*.jsonl", tmp_path)
    assert caught.value.reason == "input file `data/*.jsonl` not found"


def test_expand_directory_is_an_error(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(InputError) as caught:
        expand_inputs("data", tmp_path)
    assert "directory" in caught.value.reason
    assert "data/*" in caught.value.hint


def test_expand_checks_each_format(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"x": 1}])
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(SpecError):
        expand_inputs("*", tmp_path)


# --------------------------------------------------------------------------- read_schema


def test_read_schema_each_format(tmp_path):
    parquet = write_parquet(tmp_path / "a.parquet", [{"id": 1, "text": "x", "score": 0.5}])
    assert read_schema([parquet]) == {"id": "int64", "text": "string", "score": "double"}

    csv_file = tmp_path / "b.csv"
    csv_file.write_text('id,"the text"\n1,x\n', encoding="utf-8")
    assert read_schema([csv_file]) == {"id": "string", "the text": "string"}

    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('\n{"id": 1, "text": "x", "tags": ["a"], "maybe": null}\n{"broken\n', encoding="utf-8")
    assert read_schema([jsonl]) == {
        "id": "int64",
        "text": "string",
        "tags": "list<item: string>",
        "maybe": "null",
    }

    array = tmp_path / "d.json"
    array.write_text('[{"id": 1, "flag": true}, {"id": 2, "extra": 1}]', encoding="utf-8")
    assert read_schema([array]) == {"id": "int64", "flag": "bool"}


def test_read_schema_does_not_read_parquet_data(tmp_path):
    path = write_parquet(tmp_path / "a.parquet", [{"a": 1}])
    data = bytearray(path.read_bytes())
    data[4:20] = b"\x00" * 16  # clobber the first data page; the footer stays intact
    path.write_bytes(bytes(data))
    assert read_schema([path]) == {"a": "int64"}


def test_read_schema_union_in_order(tmp_path):
    first = write_jsonl(tmp_path / "1.jsonl", [{"b": None, "a": 1}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"c": "x", "b": "y"}])
    assert read_schema([first, second]) == {"b": "string", "a": "int64", "c": "string"}


def test_read_schema_empty_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as caught:
        read_schema([empty])
    assert caught.value.reason == f"input `{empty}` has no rows"


def test_read_schema_malformed_first_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('\n\n{"a": 1,}\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_schema([path])
    assert caught.value.location == f"{path}:3:9"


def test_read_schema_csv_header_not_utf8(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,t\xe9xt\n1,2\n")
    with pytest.raises(InputError) as caught:
        read_schema([path])
    assert caught.value.location == f"{path}:1"
    assert caught.value.reason == "file is not valid UTF-8 (byte 0xe9 at column 5)"


def test_read_schema_corrupt_parquet(tmp_path):
    path = tmp_path / "a.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(InputError) as caught:
        read_schema([path])
    assert caught.value.location == str(path)
    assert caught.value.reason.startswith("not a readable Parquet file: ")


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".ndjson", ".json", ".csv"])
def test_reads_every_format(tmp_path, suffix):
    path = write_sample(tmp_path / f"sample{suffix}")
    # For CSV this also checks that a null (unquoted empty) and "" (quoted) stay apart.
    assert rows([path], batch_size=2) == SAMPLE
    tables = list(iter_batches([path], 2))
    assert [t.num_rows for t in tables] == [2, 2, 1]
    assert len({t.schema for t in tables}) == 1
    assert tables[0].schema.field("text").type == pa.string()
    assert tables[0].schema.field("n").type == pa.int64()


def test_rechunks_across_files(tmp_path):
    paths = [write_jsonl(tmp_path / f"{i}.jsonl", [{"i": i * 7 + j} for j in range(7)]) for i in range(3)]
    tables = list(iter_batches(paths, 5))
    assert [t.num_rows for t in tables] == [5, 5, 5, 5, 1]
    assert [row["i"] for t in tables for row in t.to_pylist()] == list(range(21))


def test_rechunks_mixed_formats(tmp_path):
    paths = [
        write_parquet(tmp_path / "a.parquet", [{"i": j} for j in range(4)], row_group_size=3),
        write_jsonl(tmp_path / "b.jsonl", [{"i": j} for j in range(4, 9)]),
    ]
    (tmp_path / "c.csv").write_text("i\n9\n10\n", encoding="utf-8")
    paths.append(tmp_path / "c.csv")
    tables = list(iter_batches(paths, 3))
    assert [t.num_rows for t in tables] == [3, 3, 3, 2]
    assert [r["i"] for t in tables for r in t.to_pylist()] == list(range(11))


def test_multiblock_jsonl_and_csv(tmp_path, small_blocks):
    records = [{"i": i, "text": f"row {i} " + "é" * (i % 5)} for i in range(50)]
    jsonl = write_jsonl(tmp_path / "a.jsonl", records)
    csv_file = tmp_path / "b.csv"
    pa_csv.write_csv(pa.Table.from_pylist(records), csv_file)
    assert rows([jsonl], 7) == records
    assert rows([csv_file], 7) == records
    assert [t.num_rows for t in iter_batches([jsonl, csv_file], 30)] == [30, 30, 30, 10]


def test_limit(tmp_path):
    paths = [write_jsonl(tmp_path / f"{i}.jsonl", [{"i": i * 7 + j} for j in range(7)]) for i in range(3)]
    assert [t.num_rows for t in iter_batches(paths, 5, limit=12)] == [5, 5, 2]
    assert [r["i"] for r in rows(paths, 5, limit=9)] == list(range(9))
    assert rows(paths, 5, limit=100) == rows(paths, 5)
    assert list(iter_batches(paths, 5, limit=0)) == []


def test_limit_stops_reading(tmp_path, small_blocks):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(50)) + "{broken\n", encoding="utf-8")
    assert [r["i"] for r in rows([path], 10, limit=3)] == [0, 1, 2]


def test_heads_of_all_files_are_checked_up_front(tmp_path):
    good = write_jsonl(tmp_path / "a.jsonl", [{"i": 1}, {"i": 2}])
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"i": 3}\n{oops\n', encoding="utf-8")
    batches = iter_batches([good, bad], 1)
    with pytest.raises(InputError) as caught:
        next(batches)
    assert caught.value.location == f"{bad}:2:2"


def test_rejects_non_positive_batch_size(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"i": 1}])
    with pytest.raises(ValueError):
        list(iter_batches([path], 0))


def test_streams_before_reading_the_whole_file(tmp_path, small_blocks):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(100)) + "{broken\n", encoding="utf-8")
    batches = iter_batches([path], 10)
    assert next(batches).num_rows == 10  # the bad last line has not been reached yet
    with pytest.raises(InputError) as caught:
        list(batches)
    assert caught.value.location == f"{path}:101:2"


def test_huge_row(tmp_path):
    big = "x" * (5 * 1024 * 1024) + "😀"
    records = [{"id": 1, "text": "small"}, {"id": 2, "text": big}, {"id": 3, "text": "after"}]
    for path in (
        write_jsonl(tmp_path / "a.jsonl", records),
        write_parquet(tmp_path / "a.parquet", records),
        tmp_path / "a.csv",
    ):
        if path.suffix == ".csv":
            pa_csv.write_csv(pa.Table.from_pylist(records), path)
        assert rows([path], 2) == records


def test_huge_row_spanning_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "BLOCK_BYTES", 1 << 20)
    records = [{"text": "a"}, {"text": "y" * (3 << 20)}, {"text": "b"}]
    path = write_jsonl(tmp_path / "a.jsonl", records)
    assert rows([path], 10) == records


def test_jsonl_blank_lines_crlf_and_bom(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n   \n{"a": 2}\r\n{"a": 3}')
    assert rows([path]) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_csv_bom_quotes_and_multiline(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b'\xef\xbb\xbfid,text\n1,"a, b"\n2,"line1\nline2"\n3,""\n4,\n')
    assert rows([path]) == [
        {"id": 1, "text": "a, b"},
        {"id": 2, "text": "line1\nline2"},
        {"id": 3, "text": ""},
        {"id": 4, "text": None},
    ]


def test_text_that_looks_like_dates_stays_text(tmp_path):
    jsonl = write_jsonl(
        tmp_path / "a.jsonl", [{"d": "2024-01-02", "t": "2024-01-02T03:04:05", "n": {"d": "2024-01-02"}}]
    )
    assert rows([jsonl]) == [{"d": "2024-01-02", "t": "2024-01-02T03:04:05", "n": {"d": "2024-01-02"}}]
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("d,t\n2024-01-02,2024-01-02 03:04:05\n", encoding="utf-8")
    assert rows([csv_file]) == [{"d": "2024-01-02", "t": "2024-01-02 03:04:05"}]


def test_csv_null_like_words_stay_text(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("word\nNone\nNA\nnull\n", encoding="utf-8")
    assert [r["word"] for r in rows([path])] == ["None", "NA", "null"]


def test_nested_jsonl_values(tmp_path):
    records = [{"meta": {"lang": "en", "score": 1.5}, "tags": ["a", "b"]}, {"meta": None, "tags": []}]
    assert rows([write_jsonl(tmp_path / "a.jsonl", records)]) == records


# --------------------------------------------------------------------------- schema unification


def test_column_only_in_second_file(tmp_path):
    first = write_jsonl(tmp_path / "1.jsonl", [{"a": 1}, {"a": 2}])
    second = write_parquet(tmp_path / "2.parquet", [{"a": 3, "b": "x"}])
    tables = list(iter_batches([first, second], 2))
    assert all(t.schema == tables[0].schema for t in tables)
    assert tables[0].schema.names == ["a", "b"]
    assert rows([first, second]) == [{"a": 1, "b": None}, {"a": 2, "b": None}, {"a": 3, "b": "x"}]


def test_null_typed_first_file_then_strings(tmp_path):
    first = write_jsonl(tmp_path / "1.jsonl", [{"a": None}] * 3)
    second = write_jsonl(tmp_path / "2.jsonl", [{"a": "x"}])
    tables = list(iter_batches([first, second], 2))
    assert {t.schema.field("a").type for t in tables} == {pa.string()}
    assert [r["a"] for t in tables for r in t.to_pylist()] == [None, None, None, "x"]


def test_null_typed_first_block_then_strings(tmp_path, small_blocks):
    path = write_jsonl(
        tmp_path / "a.jsonl", [{"a": None, "i": i} for i in range(20)] + [{"a": "late", "i": 20}]
    )
    tables = list(iter_batches([path], 4))
    assert {t.schema.field("a").type for t in tables} == {pa.string()}
    assert rows([path])[-1] == {"a": "late", "i": 20}


def test_numbers_and_text_across_files_meet_as_text(tmp_path):
    first = write_jsonl(tmp_path / "1.jsonl", [{"id": 1}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"id": "A-7"}])
    assert rows([first, second]) == [{"id": "1"}, {"id": "A-7"}]


def test_int_and_double_files_promote(tmp_path):
    first = write_parquet(tmp_path / "1.parquet", [{"x": 1}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"x": 2.5}])
    tables = list(iter_batches([first, second], 10))
    assert tables[0].schema.field("x").type == pa.float64()
    assert rows([first, second]) == [{"x": 1.0}, {"x": 2.5}]


def test_later_block_with_number_for_text_column_is_text(tmp_path, small_blocks):
    path = write_jsonl(tmp_path / "a.jsonl", [{"a": f"s{i}"} for i in range(10)] + [{"a": 7}])
    assert rows([path])[-1] == {"a": "7"}


def test_struct_fields_vary_across_files(tmp_path):
    first = write_jsonl(tmp_path / "1.jsonl", [{"meta": {"lang": "en", "score": 0.5}}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"meta": {"score": 1.0, "source": "web"}}])
    assert rows([first, second]) == [
        {"meta": {"lang": "en", "score": 0.5, "source": None}},
        {"meta": {"lang": None, "score": 1.0, "source": "web"}},
    ]


def test_struct_field_appearing_late_is_not_dropped(tmp_path, small_blocks):
    records = [{"meta": {"lang": "en"}} for _ in range(10)] + [{"meta": {"lang": "de", "new": 1}}]
    error = input_error([write_jsonl(tmp_path / "a.jsonl", records)])
    assert error.location.endswith(":11")
    assert "`meta`" in error.reason


def test_parquet_timestamps_stay_timestamps(tmp_path):
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    first = write_parquet(tmp_path / "1.parquet", [{"t": when}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"x": 1}])
    tables = list(iter_batches([first, second], 10))
    assert pa.types.is_timestamp(tables[0].schema.field("t").type)
    assert rows([first, second]) == [{"t": when, "x": None}, {"t": None, "x": 1}]


def test_incompatible_types_across_files(tmp_path):
    first = write_jsonl(tmp_path / "1.jsonl", [{"a": {"x": 1}}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"a": "text"}])
    error = input_error([first, second])
    assert error.location == str(second)
    assert "`a`" in error.reason and str(first) in error.reason


# --------------------------------------------------------------------------- bad input: JSONL


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
    assert error.reason == "field `a` changes from number to string"


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


# --------------------------------------------------------------------------- bad input: CSV


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


# --------------------------------------------------------------------------- bad input: Parquet and JSON


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


def test_json_not_an_array(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"a": 1}', encoding="utf-8")
    error = input_error([path])
    assert error.location == str(path)
    assert error.reason == "expected a JSON array of objects, got an object"


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
    path.write_text('[{"a": 1}, {"a": {"b": 2}}]', encoding="utf-8")
    error = input_error([path])
    assert error.location == str(path)


# --------------------------------------------------------------------------- empty input


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json", ".parquet"])
def test_zero_byte_file_has_no_rows(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    error = input_error([path])
    assert error.reason == f"input `{path}` has no rows"
    assert error.location == str(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [("header.csv", "a,b\n"), ("blank.jsonl", "\n\n  \n"), ("empty.json", "[]")],
)
def test_file_without_rows(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert input_error([path]).reason == f"input `{path}` has no rows"


def test_empty_parquet_table(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.int64())}), path)
    assert input_error([path]).reason == f"input `{path}` has no rows"


def test_all_files_empty(tmp_path):
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.csv"]
    paths[0].write_bytes(b"")
    paths[1].write_bytes(b"\n")
    paths[2].write_text("x\n", encoding="utf-8")
    error = input_error(paths)
    assert error.reason == f"input `{paths[0]}` (and 2 more files) has no rows"


def test_vanished_file(tmp_path):
    path = tmp_path / "gone.jsonl"
    for call in (lambda: rows([path]), lambda: read_schema([path])):
        with pytest.raises(InputError) as caught:
            call()
        assert caught.value.location == str(path)
        assert caught.value.reason.startswith("cannot read input: ")


def test_empty_file_among_others_is_skipped(tmp_path):
    empty = tmp_path / "a.jsonl"
    empty.write_bytes(b"")
    full = write_jsonl(tmp_path / "b.jsonl", [{"a": 1}])
    assert rows([empty, full]) == [{"a": 1}]
