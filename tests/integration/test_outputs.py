"""Outputs as users load them: the rejects out of the output folder's glob, no file that cannot
be loaded, internal columns only on request, and one run at a time per output file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataflow_cli.io.lock import lock_path
from tests.conftest import read_jsonl, write_jsonl

ROWS = [
    {"text": "one two three four", "source": "a"},
    {"text": "short", "source": "b"},
    {"text": "five six seven eight nine", "source": "c"},
    {"text": "tiny", "source": "d"},
]

SPEC = """\
version: 1
name: outputs
input: {{path: in.jsonl, batch_size: 2}}
output: {{path: {output}}}
stages:
  - name: measure
    op: length_evaluator
  - name: bounds
    op: range_filter
    inputs: {{value: words}}
    params: {{min: 2}}
  - name: keep
    op: select_columns_refiner
    params: {{columns: [text, words]}}
"""


def project(tmp_path: Path, monkeypatch, output: str = "out/clean.parquet") -> Path:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", ROWS)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(output=output), encoding="utf-8")
    return spec


def load_dataset(builder: str, data_files: str, cache: Path):
    """What a Hugging Face user types, offline, with a private cache."""
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_dataset(builder, data_files=data_files, cache_dir=str(cache), split="train")


@pytest.mark.parametrize(("suffix", "builder"), [("parquet", "parquet"), ("jsonl", "json")])
def test_a_glob_over_the_output_folder_loads_the_dataset_alone(tmp_path, cli, monkeypatch, suffix, builder):
    spec = project(tmp_path, monkeypatch, f"out/clean.{suffix}")
    stats = cli.json("run", spec)
    assert (stats["rows_written"], stats["rows_rejected"]) == (2, 2)
    rejects = tmp_path / "out" / "rejects" / f"clean.rejects.{suffix}"
    assert stats["rejects"] == str(rejects)

    # Beside the output only its data card (not data: `out/*` would take it in, `out/*.<suffix>` does not).
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "clean.card.json", "clean.card.md", f"clean.{suffix}", "rejects",
    ]  # fmt: skip
    for pattern in (f"out/*.{suffix}",):
        dataset = load_dataset(builder, str(tmp_path / pattern), tmp_path / "hf")
        # The columns the spec kept, no engine `_id`.
        assert dataset.column_names == ["text", "words"]
        assert dataset.to_list() == [
            {"text": "one two three four", "words": 4},
            {"text": "five six seven eight nine", "words": 5},
        ]
    dropped = load_dataset(builder, str(rejects), tmp_path / "hf")
    assert sorted(dropped.to_dict()["_id"]) == ["1", "3"]
    assert set(dropped.column_names) >= {"_id", "_stage", "_reason"}


def test_no_file_is_written_that_could_not_be_loaded(tmp_path, cli, monkeypatch):
    spec = project(tmp_path, monkeypatch)
    output, rejects = (
        tmp_path / "out" / "clean.parquet",
        tmp_path / "out" / "rejects" / "clean.rejects.parquet",
    )
    cli.json("run", spec)
    assert output.exists() and rejects.exists()

    # Nothing rejected: no rejects file (an empty one cannot be loaded), and the earlier one
    # does not linger to describe a run it does not belong to.
    stats = cli.json("run", spec, "--set", "stages.bounds.params.min=0")
    assert stats["rows_rejected"] == 0 and stats["rejects"] is None
    assert not rejects.exists() and pq.read_table(output).num_rows == 4

    # Nothing kept: no output file, for the same reasons; the rejects say why.
    stats = cli.json("run", spec, "--set", "stages.bounds.params.min=100")
    assert stats["rows_written"] == 0 and stats["output"] is None
    assert not output.exists() and pq.read_table(rejects).num_rows == 4
    result = cli("run", spec, "--set", "stages.bounds.params.min=100")
    assert "no output file" in result.stderr

    # Every file left in the folder loads.
    files = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert files == [rejects]
    assert load_dataset("parquet", str(rejects), tmp_path / "hf").num_rows == 4


def test_a_run_that_creates_no_rejects_leaves_no_rejects_folder(tmp_path, cli, monkeypatch):
    spec = project(tmp_path, monkeypatch, "out/clean.jsonl")
    cli.json("run", spec, "--set", "stages.bounds.params.min=0")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["clean.card.json", "clean.card.md", "clean.jsonl"]


def test_internal_columns_are_opt_in_and_resume_still_works(tmp_path, cli, monkeypatch):
    spec = project(tmp_path, monkeypatch, "out/clean.jsonl")
    cli.json("run", spec)
    assert [set(row) for row in read_jsonl(tmp_path / "out" / "clean.jsonl")] == [{"text", "words"}] * 2

    stats = cli.json("run", spec, "--set", "output.internal_columns=true")
    assert all(stage["batches_computed"] == 0 for stage in stats["stages"])  # from checkpoints
    kept = read_jsonl(tmp_path / "out" / "clean.jsonl")
    assert [(row["_id"], row["text"]) for row in kept] == [
        ("0", "one two three four"),
        ("2", "five six seven eight nine"),
    ]


# --------------------------------------------------------------------------- one run per output

HOLDER = """\
version: 1
name: holder
input: {path: in.jsonl}
output: {path: out/o.jsonl}
backends:
  default: {provider: fake, reply_template: "slow answer", latency: 120, cache: false}
stages:
  - name: write
    op: prompted_generator
    outputs: {text: answer}
    params: {template: "About {{ text }}"}
"""

OTHER = """\
version: 1
name: other
input: {path: in.jsonl}
output: {path: out/o.jsonl}
stages:
  - name: measure
    op: length_evaluator
"""


def dataflow_run(spec: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dataflow_cli", "run", str(spec), "--quiet", "--run-dir", str(run_dir)],
        cwd=spec.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_holder(lock: Path, pid: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == pid:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("the first run never took its output lock")


@pytest.mark.slow
def test_a_second_run_writing_the_same_output_is_refused_naming_the_first(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "tea"}])
    (tmp_path / "holder.yaml").write_text(HOLDER, encoding="utf-8")
    (tmp_path / "other.yaml").write_text(OTHER, encoding="utf-8")
    output = tmp_path / "out" / "o.jsonl"
    first = dataflow_run(tmp_path / "holder.yaml", tmp_path / "run-a")
    try:
        wait_for_holder(lock_path(output), first.pid, first)

        second = dataflow_run(tmp_path / "other.yaml", tmp_path / "run-b")
        assert second.wait(timeout=120) == 1
        error = second.stderr.read()
        assert (
            f"another `dataflow run` (pid {first.pid}, spec `{tmp_path / 'holder.yaml'}`, "
            f"run directory `{tmp_path / 'run-a'}`) is writing `{output}`" in error
        )
        assert "--set output.path=" in error and "Traceback" not in error
        assert not output.exists()
        assert first.poll() is None  # the refused run did not disturb the first one

        # A crash releases the lock (the kernel drops it with the process): the next run goes.
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
        third = dataflow_run(tmp_path / "other.yaml", tmp_path / "run-b")
        assert third.wait(timeout=120) == 0, third.stderr.read()
        assert [row["text"] for row in read_jsonl(output)] == ["tea"]
        assert not lock_path(output).exists()  # released locks leave no file behind
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
