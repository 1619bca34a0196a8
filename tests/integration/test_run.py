"""`dataflow run` end to end through the CLI: outputs, rejects, stats, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import read_jsonl, write_jsonl


@pytest.fixture
def project(tmp_path, cli, monkeypatch):
    """A scaffolded copy of the text_clean ready pipeline, cwd inside it."""
    monkeypatch.chdir(tmp_path)
    cli("init", "proj")
    return tmp_path / "proj"


def _stage(stats, name):
    return next(s for s in stats["stages"] if s["name"] == name)


def test_ready_pipeline_runs_and_explains_every_drop(project, cli):
    result = cli("run", project / "pipeline.yaml", "--json")
    stats = json.loads(result.stdout)
    kept = read_jsonl(project / "out" / "clean.jsonl")
    rejected = read_jsonl(project / "out" / "rejects" / "clean.rejects.jsonl")
    source = read_jsonl(project / "data" / "sample.jsonl")

    assert stats["rows_read"] == len(source) == 40
    assert stats["rows_written"] == len(kept) and stats["rows_rejected"] == len(rejected)
    assert len(kept) + len(rejected) == len(source)
    assert {r["_stage"] for r in rejected} == {"length_bounds", "no_boilerplate", "dedup"}
    assert all(r["_reason"] for r in rejected)
    # Columns after select_columns_refiner (the engine's `_id` only in rejects), normalized
    # text, rendered prompt.
    assert set(kept[0]) == {"instruction", "response", "prompt", "response_words"}
    assert all(r["_id"] for r in rejected)
    photosynthesis = next(r for r in kept if r["instruction"] == "Describe photosynthesis.")
    assert photosynthesis["response"].startswith("Photosynthesis is how plants turn light, water")
    assert photosynthesis["prompt"] == "### Instruction:\nDescribe photosynthesis.\n\n### Response:\n"
    dedup = [r for r in rejected if r["_stage"] == "dedup"]
    assert len(dedup) == 3 and all(r["_reason"].startswith("duplicate: duplicate of _id ") for r in dedup)
    # The summary is on stderr, the stats on stdout only.
    assert "summary" in result.stderr and "rejected" in result.stderr
    run_dir = Path(".dataflow/runs/text_clean")
    assert json.loads((run_dir / "stats.json").read_text())["rows_written"] == len(kept)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    assert (run_dir / "spec.resolved.yaml").exists() and (run_dir / "run.log").exists()


def test_resume_reuses_unchanged_stages_and_reruns_changed_ones(project, cli):
    spec = project / "pipeline.yaml"
    first = cli.json("run", spec)
    assert all(s["batches_reused"] == 0 for s in first["stages"])
    output = (project / "out" / "clean.jsonl").read_bytes()

    second = cli.json("run", spec)
    assert all(s["batches_computed"] == 0 for s in second["stages"])
    assert (project / "out" / "clean.jsonl").read_bytes() == output

    third = cli.json("run", spec, "--set", "stages.length_bounds.params.min=12")
    computed = {s["name"]: s["batches_computed"] > 0 for s in third["stages"]}
    assert computed == {
        "normalize": False,
        "measure": False,
        "length_bounds": True,
        "no_boilerplate": True,
        "dedup": True,
        "to_prompt": True,
        "keep_columns": True,
    }
    assert third["rows_written"] < first["rows_written"]

    fresh = cli.json("run", spec, "--fresh")
    assert all(s["batches_reused"] == 0 for s in fresh["stages"])
    assert (project / "out" / "clean.jsonl").read_bytes() == output


def test_input_change_invalidates_checkpoints(project, cli):
    spec = project / "pipeline.yaml"
    cli.json("run", spec)
    data = project / "data" / "sample.jsonl"
    data.write_text(
        data.read_text(encoding="utf-8").replace("Joyful.", "Joyful, glad, cheerful and content."),
        encoding="utf-8",
    )
    stats = cli.json("run", spec)
    assert all(s["batches_reused"] == 0 for s in stats["stages"])
    assert any(
        r["response"] == "Joyful, glad, cheerful and content."
        for r in read_jsonl(project / "out" / "clean.jsonl")
    )


def test_limit_and_output_formats(project, cli):
    spec = project / "pipeline.yaml"
    for suffix in ("parquet", "csv", "json"):
        stats = cli.json("run", spec, "--limit", "10", "--set", f"output.path=out/clean.{suffix}")
        assert stats["rows_read"] == 10
        assert (project / "out" / f"clean.{suffix}").exists()
        assert (project / "out" / "rejects" / f"clean.rejects.{suffix}").exists()
    table = pq.read_table(project / "out" / "clean.parquet")
    assert table.num_rows == stats["rows_written"]
    rows = json.loads((project / "out" / "clean.json").read_text(encoding="utf-8"))
    assert len(rows) == stats["rows_written"]


def _spec(tmp_path: Path, input_name: str, stages: str = "") -> Path:
    stages = stages or "  - name: measure\n    op: length_evaluator\n"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nname: t\ninput: {{path: {input_name}}}\noutput: {{path: out/o.jsonl}}\nstages:\n{stages}"
    )
    return spec


BAD_INPUTS = {
    "malformed.jsonl": (b'{"text": "ok"}\n{"text": "broken\n', "malformed.jsonl:2"),
    "latin1.jsonl": ('{"text": "ok"}\n{"text": "caf\u00e9"}\n'.encode("latin-1"), "latin1.jsonl:2"),
    "ragged.csv": (b"text,n\nhello,1\nworld,2,3\n", "ragged.csv:3"),
    "corrupt.parquet": (b"PAR1 this is not parquet at all", "corrupt.parquet"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_error_and_no_output(tmp_path, cli, monkeypatch, name):
    content, location = BAD_INPUTS[name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(content)
    result = cli("run", _spec(tmp_path, name), expect=None)
    assert result.exit_code in (1, 2), result.stderr
    assert location in result.stderr
    assert "Traceback" not in result.stderr
    # One problem, one message (plus the "1 error in spec" footer when caught by validation).
    assert result.stderr.count(location) == 1
    assert not (tmp_path / "out" / "o.jsonl").exists()
    assert not list((tmp_path / "out").glob(".*tmp*")) if (tmp_path / "out").exists() else True


def test_empty_input_fails_without_output(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.jsonl").write_text("")
    result = cli("run", _spec(tmp_path, "empty.jsonl"), expect=None)
    assert result.exit_code in (1, 2)
    assert "no rows" in result.stderr
    assert not (tmp_path / "out" / "o.jsonl").exists()


def test_unwritable_output_fails_before_reading(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello world"}])
    (tmp_path / "blocker").write_text("a file where a directory should be")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: t\ninput: {path: in.jsonl}\noutput: {path: blocker/o.jsonl}\n"
        "stages:\n  - name: measure\n    op: length_evaluator\n"
    )
    result = cli("run", spec, expect=1)
    assert "cannot write" in result.stderr and "blocker/o.jsonl" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_output_survives_a_failed_run(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello world"}])
    spec = _spec(tmp_path, "in.jsonl")
    cli("run", spec)
    before = (tmp_path / "out" / "o.jsonl").read_bytes()
    (tmp_path / "in.jsonl").write_text('{"text": "fine"}\nnot json\n')
    cli("run", spec, expect=1)
    assert (tmp_path / "out" / "o.jsonl").read_bytes() == before


def test_global_stage_sees_rows_across_batches(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [{"text": f"row {i % 7}"} for i in range(50)]
    write_jsonl(tmp_path / "in.jsonl", rows)
    stages = "  - name: dedup\n    op: exact_dedup_filter\n    params: {columns: [text]}\n"
    spec = _spec(tmp_path, "in.jsonl", stages)
    stats = cli.json("run", spec, "--set", "input.batch_size=4")
    kept = read_jsonl(tmp_path / "out" / "o.jsonl")
    assert [r["text"] for r in kept] == [f"row {i}" for i in range(7)]
    assert stats["rows_rejected"] == 43
    rejects = read_jsonl(tmp_path / "out" / "rejects" / "o.rejects.jsonl")
    assert rejects[0]["_reason"] == "duplicate: duplicate of _id 0" and rejects[0]["_id"] == "7"


def test_user_supplied_ids_are_kept(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"_id": "doc-a", "text": "one two"}, {"_id": "doc-b", "text": "x"}])
    cli("run", _spec(tmp_path, "in.jsonl"))
    assert [r["_id"] for r in read_jsonl(tmp_path / "out" / "o.jsonl")] == ["doc-a", "doc-b"]


def test_glob_input_across_files(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for part in range(3):
        pq.write_table(
            pa.table({"text": [f"p{part} r{i}" for i in range(5)]}), tmp_path / f"part-{part}.parquet"
        )
    stats = cli.json("run", _spec(tmp_path, "part-*.parquet"), "--set", "input.batch_size=4")
    assert stats["rows_read"] == 15 and stats["batches"] == 4
    assert [r["text"] for r in read_jsonl(tmp_path / "out" / "o.jsonl")][5] == "p1 r0"


def test_unwritable_rejects_path_fails_before_any_work(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello world"}])
    (tmp_path / "blocker").write_text("a file where a directory should be")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: t\ninput: {path: in.jsonl}\noutput: {path: out/o.jsonl, rejects: blocker/r.jsonl}\n"
        "stages:\n  - name: measure\n    op: length_evaluator\n"
    )
    result = cli("run", spec, expect=1)
    assert "blocker/r.jsonl" in result.stderr and not (tmp_path / "out" / "o.jsonl").exists()
    assert not Path(".dataflow/runs/t/stages").exists()  # nothing was computed


def test_unwritable_run_directory_is_a_clear_error(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello world"}])
    (tmp_path / "blocker").write_text("a file where a directory should be")
    result = cli("run", _spec(tmp_path, "in.jsonl"), "--run-dir", tmp_path / "blocker" / "run", expect=1)
    assert "cannot write the run directory" in result.stderr and "--run-dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_ray_only_settings_are_reported_as_ignored_by_the_local_executor(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"text": "one two"}])
    spec = _spec(tmp_path, "in.jsonl")
    spec.write_text(spec.read_text() + "executor: {type: ray, checkpoint_dir: file:///tmp/shared}\n")
    result = cli("run", spec, "--executor", "local")
    assert "checkpoint_dir apply only to --executor ray; ignored here" in result.stderr
    assert len(read_jsonl(tmp_path / "out" / "o.jsonl")) == 1
