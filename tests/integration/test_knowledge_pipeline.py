"""pipelines/knowledge_qa end to end: a folder of documents to verified SFT rows.

With scripted fake answers (a cleaner that echoes the passage, a QA writer that quotes the
passage's first sentence) rows flow through every stage and the checks keep what is supported;
on the embedded local model the run only has to account for every row."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, read_jsonl

pytest.importorskip("pypdf", reason="the `documents` extra (installed by `make test`)")

# The "model": echo the passage for cleaning; quote the passage's first sentence and answer
# with its last word for one-hop pairs; for two-hop requests quote A's first sentence and
# answer from B's first sentence.
SCRIPTED = (
    "{% if 'Clean up this passage' in prompt %}{{ prompt.split('Passage:\\n', 1)[1] }}"
    "{% elif 'Passage A:' in prompt %}"
    "{% set a = prompt.split('Passage A:\\n', 1)[1].split('\\n\\nPassage B:', 1)[0].split('. ')[0] %}"
    "{% set b = prompt.split('Passage B:\\n', 1)[1].split('\\n\\nAnswer in JSON', 1)[0].split('. ')[0] %}"
    '{"question": "Which detail follows?", "answer": {{ b.split()[-1] | tojson }}, "quote_a": {{ a | tojson }},'
    ' "quote_b": {{ b | tojson }}, "bridge": {{ a.split()[0] | tojson }}}'
    "{% else %}"
    "{% set s = prompt.split('Passage:\\n', 1)[1].split('\\n\\nAnswer in JSON', 1)[0].split('. ')[0] %}"
    '{"pairs": [{"question": "Which detail does the passage give?", "answer": {{ s.split()[-1] | tojson }},'
    ' "quote": {{ s | tojson }}}]}'
    "{% endif %}"
)


@pytest.fixture
def pipeline(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "knowledge_qa"
    shutil.copytree(
        REPO / "pipelines" / "knowledge_qa", target, ignore=shutil.ignore_patterns("out", ".dataflow")
    )
    return target / "pipeline.yaml"


def accounted(stats: dict) -> bool:
    return (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )


def test_documents_become_verified_sft_rows(cli, pipeline):
    backend = "backends.default={provider: fake, reply_template: " + json.dumps(SCRIPTED) + "}"
    stats = cli.json("run", pipeline, "--set", backend)
    assert stats["rows_read"] == 4 and accounted(stats)
    out = pipeline.parent / "out"
    rejects = read_jsonl(out / "rejects" / "knowledge_sft.rejects.jsonl")
    scanned = [r for r in rejects if r["_stage"] == "has_text"]
    assert [(r["name"], r["_reason"]) for r in scanned] == [
        ("boathouse_notice_scan.pdf", "no text layer (scanned or image-only PDF)")
    ]
    rows = read_jsonl(out / "knowledge_sft.jsonl")
    assert rows and {r["hops"] for r in rows} == {1, 2}
    for row in rows:
        system, user, assistant = row["messages"]
        assert system["role"] == "system" and user["content"].endswith(row["question"])
        assert assistant["content"] == row["answer"] and row["quote"] in user["content"]
        assert row["path"].endswith((".pdf", ".html", ".md")) and row["heading_path"]
        assert row["clean_note"] is None  # the echoed passage keeps every fact
    from_pdf = [r for r in rows if r["path"].endswith(".pdf")]
    assert from_pdf and all(1 <= r["page_start"] <= r["page_end"] <= 5 for r in from_pdf)
    assert all(r["page_start"] is None for r in rows if not r["path"].endswith(".pdf"))
    # Two-hop pairs whose last chunk has no partner, or whose quotes do not support the
    # answer, are rejected with a reason; none is lost.
    support = next(s for s in stats["stages"] if s["name"] == "support")
    assert support["rows_in"] == support["rows_out"] + sum(support["dropped_by_reason"].values())
    assert support["rows_out"] > 0


def test_a_failing_model_still_accounts_for_every_row(cli, pipeline):
    failing = (
        "backends.default={provider: fake, failures: [{match: 'Passage', kind: bad_request, status: 400}]}"
    )
    stats = cli.json("run", pipeline, "--set", failing)
    assert accounted(stats) and stats["rows_written"] == 0
    rejects = read_jsonl(pipeline.parent / "out" / "rejects" / "knowledge_sft.rejects.jsonl")
    assert {r["_stage"] for r in rejects} == {"has_text", "clean"}
    assert all(r["_reason"] == "llm bad_request (HTTP 400)" for r in rejects if r["_stage"] == "clean")


@pytest.mark.slow
def test_knowledge_qa_on_the_embedded_model(cli, pipeline):
    pytest.importorskip("llama_cpp", reason="installed by `make test`")
    # Two documents (the scanned PDF and the HTML page: three chunks); short answers keep it quick.
    stats = cli.json(
        "run",
        pipeline,
        "--limit",
        "2",
        "--set",
        "stages.clean.params.max_tokens=48",
        "--set",
        "stages.qa.params.max_tokens=32",
    )
    assert stats["rows_read"] == 2 and accounted(stats)
    out = pipeline.parent / "out"
    kept = read_jsonl(out / "knowledge_sft.jsonl") if (out / "knowledge_sft.jsonl").exists() else []
    rejected = read_jsonl(out / "rejects" / "knowledge_sft.rejects.jsonl")
    assert len(kept) + len(rejected) == stats["rows_written"] + stats["rows_rejected"]
    assert all(r["_stage"] and r["_reason"] for r in rejected)
    for row in kept:  # the model is tiny: the shape only
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert next(s for s in stats["stages"] if s["name"] == "clean")["llm"]["requests"] == 3
