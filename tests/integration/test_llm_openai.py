"""LLM stages end to end against a real local OpenAI-compatible server: retries under faults,
no lost rows, the cache, auth failures, and secrets that never leave the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import read_jsonl, write_jsonl

SECRET = "sk-test-SECRET-0123456789abcdef"


def write_spec(tmp_path: Path, base_url: str, rows: int, *, max_retries: int = 6, extra: str = "") -> Path:
    write_jsonl(tmp_path / "topics.jsonl", [{"topic": f"topic number {i}"} for i in range(rows)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: llm_e2e
input: {{path: topics.jsonl, batch_size: 64}}
output: {{path: out/answers.jsonl}}
backends:
  default:
    provider: openai
    model: test-model
    api_base: {base_url}
    api_key_env: DATAFLOW_TEST_KEY
    max_concurrency: 32
    max_retries: {max_retries}
    backoff: 0.05
    timeout: 5
{extra}
stages:
  - name: answer
    op: prompted_generator
    params: {{template: "Tell me about {{{{ topic }}}}", max_tokens: 32}}
    outputs: {{text: answer}}
"""
    )
    return spec


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFLOW_TEST_KEY", SECRET)
    return tmp_path


def test_generation_with_faults_loses_no_row_and_retries(openai_server_factory, env, cli):
    server = openai_server_factory(
        latency=0.005,
        fail_rate=0.15,
        retry_after=0.1,
        fail_kinds={"rate_limit": 1, "server_error": 1, "reset": 1, "malformed": 1},
        require_api_key=SECRET,
    )
    spec = write_spec(env, server.base_url, 200)
    stats = cli.json("run", spec)
    rows = read_jsonl(env / "out" / "answers.jsonl")
    assert stats["rows_read"] == 200 and len(rows) == 200 and stats["rows_rejected"] == 0
    assert {r["answer"] for r in rows} == {f"echo: Tell me about topic number {i}" for i in range(200)}
    llm = stats["stages"][0]["llm"]
    assert llm["retries"] > 0 and llm["errors"] == 0 and llm["requests"] == 200
    assert sum(server.fault_counts.values()) == llm["retries"]
    # Every request carried the key from the environment.
    assert all(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in server.chat_requests)


def test_rerun_makes_no_requests(openai_server, env, cli):
    spec = write_spec(env, openai_server.base_url, 50)
    cli.json("run", spec)
    before = openai_server.total_requests
    stats = cli.json("run", spec, "--fresh")  # checkpoints ignored: answers come from the cache
    assert openai_server.total_requests == before
    assert stats["stages"][0]["llm"]["cache_hits"] == 50


def test_persistent_failures_are_rejected_with_reason(openai_server_factory, env, cli):
    server = openai_server_factory(rules=[["number 7", "bad_request"]])
    spec = write_spec(env, server.base_url, 20)
    stats = cli.json("run", spec)
    rejects = read_jsonl(env / "out" / "rejects" / "answers.rejects.jsonl")
    assert stats["rows_written"] == 19 and [r["topic"] for r in rejects] == ["topic number 7"]
    assert rejects[0]["_reason"] == "llm bad_request (HTTP 400)"


def test_auth_failure_stops_the_run_without_leaking_the_key(openai_server_factory, env, cli):
    server = openai_server_factory(require_api_key="sk-the-right-one")
    spec = write_spec(env, server.base_url, 20)
    result = cli("run", spec, expect=1)
    assert "auth" in result.stderr and "HTTP 401" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert not (env / "out" / "answers.jsonl").exists()


def test_missing_key_variable_is_named_not_leaked(openai_server, env, cli, monkeypatch):
    monkeypatch.delenv("DATAFLOW_TEST_KEY")
    result = cli("run", write_spec(env, openai_server.base_url, 3), expect=1)
    assert "DATAFLOW_TEST_KEY" in result.stderr and openai_server.total_requests == 0


def test_error_rate_threshold_stops_the_run(openai_server_factory, env, cli):
    server = openai_server_factory(fail_rate=1.0, fail_kinds={"bad_request": 1})
    result = cli("run", write_spec(env, server.base_url, 200), expect=1)
    assert "max_error_rate" in result.stderr
    assert server.total_requests < 200  # it stopped instead of burning through every row


def test_secrets_never_reach_disk_or_output(openai_server, env, cli):
    spec = write_spec(env, openai_server.base_url, 10)
    result = cli("run", spec, "--json")
    assert SECRET not in result.stdout + result.stderr
    for path in Path(".dataflow").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for path in (env / "out").iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
    resolved = (Path(".dataflow/runs/llm_e2e/spec.resolved.yaml")).read_text()
    assert "api_key_env: DATAFLOW_TEST_KEY" in resolved


@pytest.mark.slow
def test_killed_run_resends_at_most_the_requests_in_flight(openai_server_factory, env):
    server = openai_server_factory(latency=0.05)
    spec = write_spec(env, server.base_url, 600)
    command = [sys.executable, "-m", "dataflow_cli", "run", str(spec), "--quiet"]
    proc = subprocess.Popen(command, cwd=env, env=dict(os.environ), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while server.total_requests < 250 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    sent_before_kill = server.total_requests
    answered_before_kill = sum(1 for r in server.chat_requests if r.status == 200)
    assert 250 <= sent_before_kill < 600
    done = subprocess.run(command, cwd=env, env=dict(os.environ), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    resent = server.total_requests - sent_before_kill - (600 - sent_before_kill)
    # Requests answered before the kill are in the cache; at most those in flight are sent again.
    assert 0 <= resent <= 32, (sent_before_kill, answered_before_kill, server.total_requests)
    assert len(read_jsonl(env / "out" / "answers.jsonl")) == 600


def test_tuning_the_backend_keeps_checkpoints_but_a_new_model_does_not(openai_server, env, cli):
    spec = write_spec(env, openai_server.base_url, 10)
    cli.json("run", spec)
    tuned = cli.json(
        "run", spec, "--set", "backends.default.max_concurrency=4", "--set", "backends.default.rpm=600"
    )
    assert tuned["stages"][0]["batches_reused"] == 1 and tuned["stages"][0]["batches_computed"] == 0
    other = cli.json("run", spec, "--set", "backends.default.model=another-model")
    assert other["stages"][0]["batches_computed"] == 1 and other["stages"][0]["llm"]["calls"] == 10
