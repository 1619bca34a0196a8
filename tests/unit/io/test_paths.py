"""Tests for dataflow_cli.io.paths: formats by suffix, input globs, the default rejects path."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataflow_cli.errors import InputError, SpecError
from dataflow_cli.io.paths import FORMATS, default_rejects_path, expand_inputs, format_for
from tests.support.inputs import write_jsonl

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
    (tmp_path / "notes.rtf").write_text("hi")  # .txt would be a document
    with pytest.raises(SpecError):
        expand_inputs("*", tmp_path)


# --------------------------------------------------------------------------- default_rejects_path


def test_rejects_go_to_a_folder_of_their_own_below_the_output(tmp_path):
    # Out of the reach of `out/*.parquet`, the glob a user hands `datasets.load_dataset`.
    assert default_rejects_path(tmp_path / "out" / "clean.parquet") == (
        tmp_path / "out" / "rejects" / "clean.rejects.parquet"
    )
    assert default_rejects_path(Path("clean.jsonl")) == Path("rejects/clean.rejects.jsonl")
