"""`mode: batch` end to end against the test server's Batch API (files, batches, status
transitions, output and error files): answers land in the cache like online ones, failed lines
become rejects with reasons, and a run killed after submitting resumes the job by id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import read_jsonl, write_jsonl

SECRET = "sk-batch-SECRET-0123456789"


def write_spec(tmp_path: Path, base_url: str, topics: list[str], *, mode: str = "batch") -> Path:
    write_jsonl(tmp_path / "topics.jsonl", [{"topic": t} for t in topics])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: batch_e2e
input: {{path: topics.jsonl, batch_size: 6}}
output: {{path: out/answers.jsonl}}
backends:
  default:
    provider: openai
    model: test-model
    api_base: {base_url}
    api_key_env: DATAFLOW_TEST_KEY
    price: {{input_per_mtok: 2, output_per_mtok: 4}}
    max_retries: 1
    backoff: 0.01
stages:
  - name: answer
    op: prompted_generator
    mode: {mode}
    batch_poll_interval: 0.05
    params: {{template: "Tell me about {{{{ topic }}}}", max_tokens: 32}}
    outputs: {{text: answer}}
"""
    )
    return spec


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFLOW_TEST_KEY", SECRET)
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_batch_stage_end_to_end_with_mixed_success_and_failure(openai_server_factory, env, cli):
    server = openai_server_factory(batch_seconds=0.2, require_api_key=SECRET)
    topics = [f"topic {i}" for i in range(10)]
    topics[3] += " FAIL500"
    topics[7] += " FAIL400"
    spec = write_spec(env, server.base_url, topics)
    stats = cli.json("run", spec)

    # Two executor batches of 6 and 4 rows: two uploads, two jobs, no chat request at all.
    assert len(server.batch_api_requests("POST", "/v1/files")) == 2
    assert len(server.batch_api_requests("POST", "/v1/batches")) == 2
    assert server.chat_requests == []
    assert all(r.headers.get("Authorization") == f"Bearer {SECRET}" for r in server.batch_api_requests())
    uploaded = [
        json.loads(line)
        for f in server.files.values()
        if f["purpose"] == "batch"
        for line in f["content"].splitlines()
    ]
    assert {line["url"] for line in uploaded} == {"/v1/chat/completions"}
    assert sorted(line["body"]["messages"][-1]["content"] for line in uploaded) == sorted(
        f"Tell me about {t}" for t in topics
    )
    # Jobs went through validating -> in_progress -> completed, with output and error files.
    jobs = list(server.batches.values())
    assert {job["status"] for job in jobs} == {"completed"} and all(job["in_progress_at"] for job in jobs)
    assert sum(job["request_counts"]["failed"] for job in jobs) == 2

    rows = read_jsonl(env / "out" / "answers.jsonl")
    assert [r["answer"] for r in rows] == [f"echo: Tell me about {t}" for t in topics if "FAIL" not in t]
    rejects = {
        r["topic"]: r["_reason"] for r in read_jsonl(env / "out" / "rejects" / "answers.rejects.jsonl")
    }
    assert rejects == {
        "topic 3 FAIL500": "llm server (HTTP 500)",
        "topic 7 FAIL400": "llm bad_request (HTTP 400)",
    }
    llm = stats["stages"][0]["llm"]
    assert llm["requests"] == 10 and llm["calls"] == 10 and llm["errors"] == 2
    # Batch price: half the online one (1 and 2 USD per million tokens).
    assert llm["cost"] == pytest.approx((llm["prompt_tokens"] * 1 + llm["completion_tokens"] * 2) / 1e6)
    records = sorted((env / ".dataflow" / "runs" / "batch_e2e" / "batches").glob("*.json"))
    assert {json.loads(p.read_text())["batch_id"] for p in records} == {job["id"] for job in jobs}

    # The answers are in the request cache under the online keys: an online run sends only the
    # two failed requests again.
    online = write_spec(env, server.base_url, topics, mode="online")
    stats = cli.json("run", online, "--fresh")
    assert stats["stages"][0]["llm"]["cache_hits"] == 8
    assert {r.last_content for r in server.chat_requests} == {
        "Tell me about topic 3 FAIL500",
        "Tell me about topic 7 FAIL400",
    }


def test_failed_and_expired_jobs_reject_rows_with_the_reason(openai_server_factory, env, cli):
    server = openai_server_factory(batch_seconds=0.05, batch_status="failed")
    spec = write_spec(env, server.base_url, ["a", "b"])
    stats = cli.json("run", spec)
    assert stats["rows_rejected"] == 2
    assert stats["stages"][0]["dropped_by_reason"] == {"llm batch_failed": 2}
    server.configure(batch_status="expired")
    stats = cli.json("run", spec, "--fresh")
    assert stats["stages"][0]["dropped_by_reason"] == {"llm batch_expired": 2}


def test_batch_mode_needs_an_openai_backend_and_an_llm_stage(env, cli):
    write_jsonl(env / "in.jsonl", [{"text": "x"}])
    (env / "spec.yaml").write_text(
        """version: 1
name: bad
input: {path: in.jsonl}
output: {path: out.jsonl}
backends: {default: {provider: fake}}
stages:
  - {name: a, op: prompted_generator, mode: batch, params: {template: "{{ text }}"}, outputs: {text: b}}
  - {name: n, op: text_normalize_refiner, mode: batch}
"""
    )
    err = cli("validate", env / "spec.yaml", expect=2).stderr
    assert "stages[0].mode: `mode: batch` needs an `openai` backend" in err
    assert "stages[1].mode: `mode: batch` needs an LLM operator" in err


@pytest.mark.slow
def test_killed_after_submission_resumes_the_job_without_resubmitting(openai_server_factory, env):
    server = openai_server_factory(batch_seconds=60)  # the job stays in progress until released
    topics = [f"topic {i}" for i in range(5)]
    spec = write_spec(env, server.base_url, topics)
    command = [sys.executable, "-m", "dataflow_cli", "run", str(spec), "--quiet", "--json"]
    jobs_dir = env / ".dataflow" / "runs" / "batch_e2e" / "batches"
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(jobs_dir.glob("*.json")) or not server.batch_api_requests("GET"):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the job was never recorded and polled"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    (record,) = jobs_dir.glob("*.json")
    batch_id = json.loads(record.read_text())["batch_id"]
    assert not (env / "out" / "answers.jsonl").exists()

    server.configure(batch_seconds=0)  # the provider finishes the job while nobody watches
    done = subprocess.run(command, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert len(server.batch_api_requests("POST", "/v1/batches")) == 1  # resumed, not resubmitted
    assert len(server.batch_api_requests("POST", "/v1/files")) == 1
    assert server.batch_api_requests("GET", f"/v1/batches/{batch_id}")
    rows = read_jsonl(env / "out" / "answers.jsonl")
    assert [r["answer"] for r in rows] == [f"echo: Tell me about {t}" for t in topics]
    assert json.loads(record.read_text())["status"] == "completed"


def test_a_request_cap_splits_the_job_and_a_higher_cap_finishes_it(openai_server_factory, env, cli):
    server = openai_server_factory(batch_seconds=0.05)
    topics = [f"topic {i}" for i in range(10)]
    spec = write_spec(env, server.base_url, topics)
    spec.write_text(spec.read_text().replace("batch_size: 6", "batch_size: 10"))
    stats = json.loads(cli("run", spec, "--json", "--max-requests", "4", expect=3).stdout)
    assert stats["stopped_by"]["cap"] == "max_requests" and stats["budget"]["spent"]["requests"] == 4
    (job,) = server.batches.values()
    assert job["request_counts"]["total"] == 4  # only what the cap let through was submitted
    stats = cli.json("run", spec, "--max-requests", "10")
    assert stats["status"] == "complete" and stats["rows_written"] == 10
    submitted = [
        json.loads(x)["custom_id"]
        for f in server.files.values()
        if f["purpose"] == "batch"
        for x in f["content"].splitlines()
    ]
    assert len(submitted) == 10 and len(set(submitted)) == 10  # the first job's answers were reused


def test_a_recorded_job_the_provider_no_longer_knows_is_submitted_again(openai_server_factory, env, cli):
    server = openai_server_factory(batch_seconds=0.05)
    topics = [f"topic {i}" for i in range(4)]
    spec = write_spec(env, server.base_url, topics)
    cli.json("run", spec)
    (record,) = (env / ".dataflow" / "runs" / "batch_e2e" / "batches").glob("*.json")
    job = json.loads(record.read_text())
    record.write_text(json.dumps({**job, "status": "in_progress"}))  # as a killed run leaves it
    server.batches.clear()  # the provider deleted the job
    for path in (env / "cache").iterdir():
        path.unlink()
    stats = cli.json("run", spec, "--fresh")
    assert stats["rows_written"] == 4 and len(server.batch_api_requests("POST", "/v1/batches")) == 2
    assert json.loads(record.read_text())["status"] == "lost"
