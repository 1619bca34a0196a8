"""Budgets end to end against the real test server: a cap stops the run cleanly (exit 3, no
output, checkpoints and cached answers kept, `stopped_by` in stats.json), and a rerun with a
higher cap continues without repeating any completed request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import read_jsonl, write_jsonl


def write_spec(tmp_path: Path, base_url: str, rows: int = 40, *, budget: str = "", price: str = "") -> Path:
    write_jsonl(tmp_path / "topics.jsonl", [{"topic": f"topic number {i}"} for i in range(rows)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: budget_e2e
input: {{path: topics.jsonl, batch_size: 8}}
output: {{path: out/answers.jsonl}}
backends:
  default: {{provider: openai, model: test-model, api_base: {base_url}, max_concurrency: 4{price}}}
{budget}
stages:
  - name: answer
    op: prompted_generator
    params: {{template: "Tell me about {{{{ topic }}}}", max_tokens: 16}}
    outputs: {{text: answer}}
"""
    )
    return spec


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_request_cap_stops_cleanly_and_a_higher_cap_continues_without_repeats(
    openai_server_factory, env, cli
):
    server = openai_server_factory(latency=0.01)
    spec = write_spec(env, server.base_url)
    result = cli("run", spec, "--json", "--max-requests", "15", expect=3)
    stats = json.loads(result.stdout)
    assert stats["status"] == "stopped" and stats["output"] is None
    assert stats["stopped_by"]["cap"] == "max_requests" and stats["stopped_by"]["limit"] == 15
    assert stats["stopped_by"]["spent"] == 15 and "15 of 15 requests sent" in stats["stopped_by"]["message"]
    assert stats["budget"]["left"] == {"max_requests": 0}
    assert len(server.chat_requests) == 15  # the cap, never more: requests in flight count
    assert not (env / "out" / "answers.jsonl").exists()  # nothing half-written
    run_dir = env / ".dataflow" / "runs" / "budget_e2e"
    assert json.loads((run_dir / "stats.json").read_text())["stopped_by"]["cap"] == "max_requests"
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "stopped"
    assert "max_requests" in (run_dir / "report.html").read_text()  # the report says what stopped it
    assert "stopped by budget `max_requests`" in result.stderr and "left" in result.stderr

    # The cap bounds the run as a whole: the resumed run may send 10 more, not 25.
    stats = json.loads(cli("run", spec, "--json", "--max-requests", "25", expect=3).stdout)
    assert stats["budget"]["spent"]["requests"] == 25 and stats["budget"]["this_run"]["requests"] == 10

    shards = len(list(run_dir.glob("stages/00-*/*/batch-*.parquet")))  # batches the stopped runs finished
    stats = cli.json("run", spec, "--max-requests", "100")
    assert stats["status"] == "complete" and stats["stopped_by"] is None and stats["rows_written"] == 40
    assert stats["stages"][0]["batches_reused"] == shards
    # Every row's request reached the server exactly once over the three runs.
    prompts = [r.last_content for r in server.chat_requests]
    assert len(prompts) == 40 and len(set(prompts)) == 40
    rows = read_jsonl(env / "out" / "answers.jsonl")
    assert [r["answer"] for r in rows] == [f"echo: Tell me about topic number {i}" for i in range(40)]


def test_usd_cap_from_the_spec_uses_the_spec_price(openai_server, env, cli):
    # 1000 USD per million tokens: each answer (~10 tokens) costs about a cent.
    spec = write_spec(
        env,
        openai_server.base_url,
        budget="budget: {max_usd: 0.05}",
        price=", price: {input_per_mtok: 1000, output_per_mtok: 1000}",
    )
    stats = json.loads(cli("run", spec, "--json", expect=3).stdout)
    stop = stats["stopped_by"]
    assert stop["cap"] == "max_usd" and stop["limit"] == 0.05
    assert stop["spent"] == pytest.approx(stats["stages"][0]["llm"]["cost"], abs=1e-6)
    # The run stops at the cap, over it by at most the requests in flight at that moment.
    assert 0.05 <= stop["spent"] < 0.05 + 4 * 0.03
    assert len(openai_server.chat_requests) < 40


def test_usd_cap_without_a_known_price_is_refused_before_any_request(openai_server, env, cli):
    spec = write_spec(env, openai_server.base_url, budget="budget: {max_usd: 1}")
    result = cli("run", spec, expect=2)
    assert "budget.max_usd needs a price for backend `default`" in result.stderr
    assert "backends.default.price" in result.stderr
    assert openai_server.chat_requests == []


def test_budget_values_must_be_positive(openai_server, env, cli):
    spec = write_spec(env, openai_server.base_url, budget="budget: {max_tokens: 0, max_requests: 1.5}")
    result = cli("validate", spec, expect=2)
    assert "budget.max_tokens: must be > 0, got an integer (`0`)" in result.stderr
    assert "budget.max_requests: expected an integer" in result.stderr
    assert (
        "budget.max_usd: must be > 0, got a number (`-1.0`)"
        in cli("run", spec, "--max-usd", "-1", expect=2).stderr
    )
