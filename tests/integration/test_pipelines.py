"""Every ready pipeline validates and runs; the LLM ones run for real on the embedded model
(llama.cpp, in-process) and through llama.cpp's own OpenAI-compatible server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, read_jsonl

PIPELINES = sorted(p.parent.name for p in (REPO / "pipelines").glob("*/pipeline.yaml"))
LLM_PIPELINES = {
    "demo",
    "sft_synthesis",
    "sft_filter",
    "math_reasoning",
    "text2sql_generate",
    "text2sql_refine",
    "agentic_rag_multihop",
    "knowledge_qa",
    "code_sft",
}


@pytest.fixture
def copy_of(tmp_path, monkeypatch):
    """A scaffolded copy of a ready pipeline (as `dataflow init` makes it), cwd inside tmp."""
    monkeypatch.chdir(tmp_path)

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(REPO / "pipelines" / name, target, ignore=shutil.ignore_patterns("out"))
        return target / "pipeline.yaml"

    return copy


@pytest.mark.parametrize("name", PIPELINES)
def test_ready_pipeline_validates(name, cli, copy_of):
    cli("validate", copy_of(name))


@pytest.mark.parametrize("name", [p for p in PIPELINES if p not in LLM_PIPELINES])
def test_rule_based_pipeline_runs_and_accounts_for_every_row(name, cli, copy_of):
    stats = cli.json("run", copy_of(name))
    assert stats["rows_read"] > 0 and stats["rows_written"] > 0
    assert (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )


@pytest.mark.parametrize("name", sorted(LLM_PIPELINES & set(PIPELINES)))
def test_llm_pipeline_runs_on_a_fake_backend(name, cli, copy_of):
    stats = cli.json("run", copy_of(name), "--set", "backends.default.provider=fake")
    assert (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )
    assert all(s["llm"]["errors"] == 0 for s in stats["stages"] if s["llm"])


@pytest.mark.slow
def test_sft_synthesis_on_the_embedded_model(cli, copy_of):
    pytest.importorskip("llama_cpp", reason="installed by `make test`")
    spec = copy_of("sft_synthesis")
    stats = cli.json("run", spec, "--limit", "2")
    out = spec.parent / "out"
    kept, rejected = read_jsonl(out / "sft.jsonl"), read_jsonl(out / "rejects" / "sft.rejects.jsonl")
    assert len(kept) + len(rejected) == 2
    for row in kept:  # the model is tiny: check the shape, never the content
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] for m in row["messages"])
        assert 3 <= row["quality"] <= 10
    for row in rejected:
        assert row["_stage"] and row["_reason"]
    judge = next(s for s in stats["stages"] if s["name"] == "judge")
    assert judge["llm"]["requests"] == 2
    # A rerun answers from the request cache.
    again = cli.json("run", spec, "--limit", "2", "--fresh")
    assert all(s["llm"]["calls"] == 0 for s in again["stages"] if s["llm"])


@pytest.mark.slow
def test_sft_synthesis_through_the_llama_cpp_server(cli, copy_of, llama_server_fixture):  # noqa: F811
    spec = copy_of("sft_synthesis")
    stats = cli.json(
        "run",
        spec,
        "--limit",
        "2",
        "--set",
        "backends.default={provider: openai, model: smollm2, api_base: "
        + llama_server_fixture
        + ", json_mode: json_object, timeout: 120, max_concurrency: 2}",
    )
    assert stats["rows_read"] == 2
    assert stats["rows_written"] + stats["rows_rejected"] == 2
    assert sum(s["llm"]["calls"] for s in stats["stages"] if s["llm"]) >= 4
    output = spec.parent / "out" / "sft.jsonl"
    assert output.exists() == (stats["rows_written"] > 0)  # a run that keeps nothing writes no file
    rows = read_jsonl(output) if output.exists() else []
    assert all(json.dumps(r["messages"]) for r in rows)


try:  # the fixture needs llama-cpp-python's server extra; without it those tests cannot start
    from tests.support.llama_server import llama_server_fixture  # noqa: F401, E402
except ImportError:  # pragma: no cover
    pass
