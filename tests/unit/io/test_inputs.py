"""Tests for dataflow_cli.io.inputs: read_schema, streaming in batches across files and formats,
one schema for a glob (and its type rule), empty input."""

from __future__ import annotations

import datetime

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from dataflow_cli.errors import InputError
from dataflow_cli.io import _shared
from dataflow_cli.io.inputs import iter_batches, read_schema
from tests.support.inputs import SAMPLE, input_error, rows, write_jsonl, write_parquet, write_sample

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
    monkeypatch.setattr(_shared, "BLOCK_BYTES", 1 << 20)
    records = [{"text": "a"}, {"text": "y" * (3 << 20)}, {"text": "b"}]
    path = write_jsonl(tmp_path / "a.jsonl", records)
    assert rows([path], 10) == records


def test_text_that_looks_like_dates_stays_text(tmp_path):
    jsonl = write_jsonl(
        tmp_path / "a.jsonl", [{"d": "2024-01-02", "t": "2024-01-02T03:04:05", "n": {"d": "2024-01-02"}}]
    )
    assert rows([jsonl]) == [{"d": "2024-01-02", "t": "2024-01-02T03:04:05", "n": {"d": "2024-01-02"}}]
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("d,t\n2024-01-02,2024-01-02 03:04:05\n", encoding="utf-8")
    assert rows([csv_file]) == [{"d": "2024-01-02", "t": "2024-01-02 03:04:05"}]


# --------------------------------------------------------------------------- one schema for all files


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


def test_files_disagreeing_on_a_type_are_an_error_naming_both(tmp_path):
    # Used to turn `id` into text ("23") without a word, while the same within a file failed.
    first = write_jsonl(tmp_path / "1.jsonl", [{"id": 23, "text": "a"}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"id": None, "text": "b"}, {"id": "A-7", "text": "c"}])
    error = input_error([first, second])
    assert error.reason == f"column `id` is int64 in `{first}` but string in `{second}`"
    assert error.location == f"{second}:2"  # the first value that is not an int64
    assert "one type in every input file" in error.hint and "--set input.path=" in error.hint


def test_type_conflict_is_the_same_error_within_a_file(tmp_path, small_blocks):
    one_file = write_jsonl(tmp_path / "a.jsonl", [{"id": i} for i in range(20)] + [{"id": "A-7"}])
    error = input_error([one_file])
    assert error.location == f"{one_file}:21" and "`id`" in error.reason


def test_type_conflict_with_a_file_after_a_promotion_names_the_first_file(tmp_path):
    first = write_jsonl(tmp_path / "1.jsonl", [{"x": None}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"x": 1}])
    third = write_parquet(tmp_path / "3.parquet", [{"x": 2.5}])
    fourth = write_jsonl(tmp_path / "4.jsonl", [{"x": True}])
    assert rows([first, second, third]) == [{"x": None}, {"x": 1.0}, {"x": 2.5}]
    error = input_error([first, second, third, fourth])
    assert error.reason == f"column `x` is int64 in `{second}` but bool in `{fourth}`"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (pa.int64(), pa.string()),
        (pa.bool_(), pa.int64()),
        (pa.string(), pa.struct([("a", pa.int64())])),
        (pa.list_(pa.int64()), pa.list_(pa.string())),
        (pa.timestamp("s"), pa.string()),
    ],
)
def test_parquet_files_with_conflicting_types(tmp_path, left, right):
    first, second = tmp_path / "1.parquet", tmp_path / "2.parquet"
    pq.write_table(pa.table({"c": pa.nulls(1, left)}), first)
    pq.write_table(pa.table({"c": pa.nulls(1, right)}), second)
    stored = [pq.read_schema(path).field("c").type for path in (first, second)]  # as Parquet keeps them
    error = input_error([first, second])
    assert error.reason == f"column `c` is {stored[0]} in `{first}` but {stored[1]} in `{second}`"
    assert error.location == str(second)


def test_categorical_parquet_meets_plain_text(tmp_path):
    first = tmp_path / "1.parquet"
    pq.write_table(pa.table({"lang": pa.array(["en", "de", "en"]).dictionary_encode()}), first)
    second = write_jsonl(tmp_path / "2.jsonl", [{"lang": "fr"}])
    tables = list(iter_batches([first, second], 10))
    assert tables[0].schema == pa.schema([("lang", pa.string())])
    assert [row["lang"] for row in rows([first, second])] == ["en", "de", "en", "fr"]


def test_read_schema_reports_the_conflict_before_any_data_is_read(tmp_path):
    first = write_parquet(tmp_path / "1.parquet", [{"id": 1}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"id": "x"}])
    with pytest.raises(InputError) as caught:
        read_schema([first, second])
    assert caught.value.reason == f"column `id` is int64 in `{first}` but string in `{second}`"
    assert caught.value.location == f"{second}:1"
    # CSV columns are untyped until data is parsed: no conflict is claimed from a header.
    csv_file = tmp_path / "3.csv"
    csv_file.write_text("id\n7\n", encoding="utf-8")
    assert read_schema([first, csv_file]) == {"id": "int64"}


def test_int_and_double_files_promote(tmp_path):
    first = write_parquet(tmp_path / "1.parquet", [{"x": 1}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"x": 2.5}])
    tables = list(iter_batches([first, second], 10))
    assert tables[0].schema.field("x").type == pa.float64()
    assert rows([first, second]) == [{"x": 1.0}, {"x": 2.5}]


def test_int_to_double_promotion_must_be_exact(tmp_path):
    first = write_parquet(tmp_path / "1.parquet", [{"x": 2**53}, {"x": 2**53 + 1}])
    second = write_jsonl(tmp_path / "2.jsonl", [{"x": 2.5}])
    error = input_error([first, second])
    assert error.location == str(first)
    assert error.reason == "column `x` was typed double from the first rows, but holds this value here"


def test_narrower_numbers_widen_across_files(tmp_path):
    first, second = tmp_path / "1.parquet", tmp_path / "2.parquet"
    pq.write_table(pa.table({"x": pa.array([1], pa.int32()), "s": pa.array(["a"], pa.string())}), first)
    pq.write_table(
        pa.table({"x": pa.array([2], pa.int64()), "s": pa.array(["b"], pa.large_string())}), second
    )
    tables = list(iter_batches([first, second], 10))
    assert tables[0].schema == pa.schema([("x", pa.int64()), ("s", pa.large_string())])
    assert rows([first, second]) == [{"x": 1, "s": "a"}, {"x": 2, "s": "b"}]


def test_later_block_with_number_for_text_column_is_an_error(tmp_path, small_blocks):
    # Not turned into "7": the same rule as inside one block and across files.
    path = write_jsonl(tmp_path / "a.jsonl", [{"a": f"s{i}"} for i in range(10)] + [{"a": 7}])
    error = input_error([path])
    assert error.reason == "column `a` was typed string from the first rows, but holds int64 here"
    assert error.location == f"{path}:11"
    assert "one type throughout the input" in error.hint


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
    assert error.location == f"{second}:1"
    assert error.reason == f"column `a` is struct<x: int64> in `{first}` but string in `{second}`"


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
