"""pipelines/math_reasoning end to end on the embedded local model (shape and accounting only:
the 135M model cannot do arithmetic, so nothing is asserted about which rows survive)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import REPO, read_jsonl


@pytest.mark.slow
def test_math_reasoning_on_the_embedded_model(cli, tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp", reason="installed by `make test`")
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "math_reasoning"
    shutil.copytree(REPO / "pipelines" / "math_reasoning", target, ignore=shutil.ignore_patterns("out"))
    spec = target / "pipeline.yaml"
    # Rows 1-2 have gold answers; short outputs keep the run short on two cores.
    stats = cli.json(
        "run",
        spec,
        "--limit",
        "2",
        "--set",
        "stages.check_question.params.stages=[is_math, solvability]",
        "--set",
        "stages.check_question.params.max_tokens=48",
        "--set",
        "stages.solve.params.k=2",
        "--set",
        "stages.solve.params.max_tokens=96",
    )
    out = target / "out"
    kept = read_jsonl(out / "math_sft.jsonl") if (out / "math_sft.jsonl").exists() else []
    rejected = read_jsonl(next(out.rglob("*.rejects.jsonl")))
    assert stats["rows_read"] == 2
    assert (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )
    assert len(kept) == stats["rows_written"] and len(rejected) == stats["rows_rejected"]
    for row in rejected:  # every dropped row says where and why
        assert row["_stage"] and row["_reason"]
        if row["_reason"].startswith("question check"):  # the judge's reason follows
            assert row["_reason"].split(" failed: ", 1)[1]
    for row in kept:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert "\\boxed{" in row["messages"][1]["content"]
        assert 1 <= row["difficulty"] <= 10 and row["reference_source"] in ("gold", "majority")
    checks = next(s for s in stats["stages"] if s["name"] == "check_question")
    assert 2 <= checks["llm"]["requests"] <= 4  # two stages at most per row, fewer after a failure
    solve = next(s for s in stats["stages"] if s["name"] == "solve")
    assert solve["rows_in"] == 0 or solve["llm"]["requests"] >= 1
    json.dumps(stats)
