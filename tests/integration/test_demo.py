"""`make demo` (scripts/demo.py + pipelines/demo): the rule checks reject the seeded bad rows
whatever the model, the embedded model runs it end to end, and a configured OpenAI-compatible
server is used instead when the environment names one."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, read_jsonl
from tests.support.openai_server import OpenAIServer

_spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

# The seeded bad prompts of data/prompts.jsonl, by _id: dropped before any model call.
RULE_REJECTS = {
    "6": ("prompt_long_enough", "`instruction_words` < 4"),  # "hi"
    "7": ("prompt_long_enough", "`instruction_words` < 4"),  # "test test"
    "4": ("english_prompt", "lang `fr` not allowed"),
    "5": ("english_prompt", "lang `de` not allowed"),
    "8": ("no_pasted_boilerplate", "ai_disclaimer phrase"),  # assistant text in the prompt column
    "3": ("dedup", "duplicate: duplicate of _id 1"),  # same prompt, other case and spacing
    "13": ("dedup", "duplicate: duplicate of _id 0"),
}
MODEL_STAGES = {"answer", "no_refusal", "not_a_copy", "answer_length", "english_answer", "judge", "to_chat"}


@pytest.fixture
def demo_copy(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "pipelines" / "demo", tmp_path / "demo", ignore=shutil.ignore_patterns("out"))
    return tmp_path / "demo" / "pipeline.yaml"


def test_backend_choice_follows_the_environment():
    assert demo.choose_backend({}) == (None, demo.EMBEDDED)
    assert demo.choose_backend({"OPENAI_API_KEY": "k", "DATAFLOW_DEMO_LOCAL": "1"})[0] is None
    override, _ = demo.choose_backend({"OPENAI_API_KEY": "sk-secret"})
    assert override == (
        'backends.default={provider: openai, model: "gpt-4o-mini", '
        'api_base: "https://api.openai.com/v1", max_concurrency: 8, api_key_env: OPENAI_API_KEY}'
    )
    assert "sk-secret" not in override
    override, description = demo.choose_backend(
        {
            "OPENAI_BASE_URL": "http://a:1/v1",
            "DATAFLOW_DEMO_API_BASE": "http://b:2/v1",
            "DATAFLOW_DEMO_MODEL": "m:q4",
        }
    )
    assert 'api_base: "http://b:2/v1"' in override and 'model: "m:q4"' in override
    assert "api_key_env" not in override and description == "m:q4 at http://b:2/v1"


def test_demo_runs_through_a_configured_openai_compatible_server(demo_copy, tmp_path):
    with OpenAIServer(require_api_key="sk-demo") as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-demo"}
        env.pop("DATAFLOW_DEMO_LOCAL", None)
        env.pop("DATAFLOW_DEMO_API_BASE", None)
        env["DATAFLOW_CACHE_DIR"] = str(tmp_path / "cache")
        done = subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "demo.py"),
                str(demo_copy),
                "--run-dir",
                str(tmp_path / "run"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # 7 clean prompts answered; the judge only sees the answers that pass the checks.
        assert server.stats()["status_counts"] == {200: server.stats()["chat_requests"]}
        assert server.stats()["chat_requests"] >= 7
    out = done.stdout
    assert "gpt-4o-mini at " + server.base_url in done.stderr
    assert "== demo: 14 prompts read" in out and "dropped by stage `" in out
    assert "embedded 135M model" not in out  # the note is for the embedded model only
    assert "sk-demo" not in out + done.stderr


@pytest.mark.slow
def test_demo_on_the_embedded_model(cli, demo_copy):
    pytest.importorskip("llama_cpp", reason="installed by `make test`")
    stats = cli.json("run", demo_copy)
    out = demo_copy.parent / "out"
    kept, rejected = read_jsonl(out / "demo.jsonl"), read_jsonl(out / "rejects" / "demo.rejects.jsonl")
    assert stats["rows_read"] == 14 == len(kept) + len(rejected)
    by_id = {r["_id"]: r for r in rejected}
    for row_id, (stage, reason) in RULE_REJECTS.items():
        assert (by_id[row_id]["_stage"], by_id[row_id]["_reason"]) == (stage, reason)
    # The other rows reach the model; what it answers decides only model-stage drops.
    assert all(r["_stage"] in MODEL_STAGES for r in rejected if r["_id"] not in RULE_REJECTS)
    assert kept, "the embedded model answered no clean prompt usably"
    for row in kept:
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert 1 <= row["judge_score"] <= 10
    shown = demo.summary(stats, embedded=True)
    assert "kept     user: " + kept[0]["messages"][0]["content"] in shown
    assert "dropped by stage `" in shown and str(out / "rejects" / "demo.rejects.jsonl") in shown
    assert "embedded 135M model shows the mechanics, not the quality" in shown
