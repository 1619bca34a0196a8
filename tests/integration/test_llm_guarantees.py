"""What an LLM run promises, checked with `dataflow run` against the real OpenAI-protocol test
server: secrets never shown, one call per distinct request and a rerun that agrees with the run,
a prompt stop on bad credentials, and answers cut off by max_tokens rejected, not passed on."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

from tests.conftest import read_jsonl, write_jsonl

SECRET = "sk-test-SECRET-9f8e7d6c5b4a3210"
KEY_ENV = "DATAFLOW_GUARANTEES_KEY"
SCHEMA = "{type: object, properties: {score: {type: integer}}, required: [score]}"


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def write_spec(
    tmp_path: Path,
    base_url: str,
    topics: list[str],
    stage: str,
    *,
    concurrency: int = 16,
    batch_size: int = 64,
    max_retries: int = 1,
) -> Path:
    write_jsonl(tmp_path / "topics.jsonl", [{"topic": t} for t in topics])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: guarantees
input: {{path: topics.jsonl, batch_size: {batch_size}}}
output: {{path: out/answers.jsonl}}
backends:
  default:
    provider: openai
    model: test-model
    api_base: {base_url}
    api_key_env: {KEY_ENV}
    max_concurrency: {concurrency}
    max_retries: {max_retries}
    backoff: 0.01
    timeout: 5
stages:
{stage}
"""
    )
    return spec


ANSWER = """  - name: answer
    op: prompted_generator
    params: {template: "{{ topic }}"}
    outputs: {text: answer}
"""
JUDGE = f"""  - name: judge
    op: json_generator
    params: {{template: "Rate {{{{ topic }}}}", json_schema: {SCHEMA}}}
    outputs: {{score: score}}
"""


def assert_no_secret(result, root: Path) -> None:
    """The key is in no output of the run: stdout, stderr, and no file anywhere under `root`."""
    assert SECRET not in result.stdout + result.stderr
    for path in root.rglob("*"):
        if path.is_file() and path.name != "topics.jsonl":
            assert SECRET.encode() not in path.read_bytes(), path


# ---- 1. secrets ---------------------------------------------------------------------------------


def test_a_key_echoed_in_a_401_body_is_masked_on_stderr_and_in_the_log(openai_server_factory, env, cli):
    # The proxy rejects the key and quotes the whole Authorization header back.
    server = openai_server_factory(require_api_key="sk-the-right-one", echo_key=True)
    spec = write_spec(env, server.base_url, [f"topic {i}" for i in range(20)], ANSWER)
    result = cli("run", spec, expect=1)
    assert "HTTP 401" in result.stderr
    assert "received Authorization: Bearer ***" in result.stderr  # the message itself still shows
    log = (env / ".dataflow/runs/guarantees/run.log").read_text()
    assert "Bearer ***" in log
    assert_no_secret(result, env)


def test_a_key_echoed_in_400_500_bodies_or_answers_is_masked_everywhere(openai_server_factory, env, cli):
    # Rows 3 and 5 fail with 400 and 500 bodies that quote the key; row 4's answer quotes it
    # (a proxy that echoes headers into content), is not JSON, and is rejected with its raw text.
    def responder(body: dict) -> str:
        if "topic 4" in body["messages"][-1]["content"]:
            return f"no JSON here; you sent Bearer {SECRET}"
        return '{"score": 7}'

    server = openai_server_factory(
        echo_key=True, responder=responder, rules=[("topic 3", "bad_request"), ("topic 5", "server_error")]
    )
    spec = write_spec(env, server.base_url, [f"topic {i}" for i in range(10)], JUDGE)
    result = cli("run", spec, "--json")
    stats = json.loads(result.stdout)
    rejects = {r["topic"]: r for r in read_jsonl(Path(stats["rejects"]))}
    assert stats["rows_written"] == 7 and set(rejects) == {"topic 3", "topic 4", "topic 5"}
    assert rejects["topic 4"]["_raw_output"] == "no JSON here; you sent Bearer ***"
    assert_no_secret(result, env)

    # `on_error: fail` stops at the first failure with the server's message: masked too.
    result = cli("run", spec, "--fresh", "--set", "stages.judge.on_error=fail", expect=1)
    assert "request failed" in result.stderr and "received Authorization: Bearer ***" in result.stderr
    log = (env / ".dataflow/runs/guarantees/run.log").read_text()
    assert "received Authorization: Bearer ***" in log
    assert_no_secret(result, env)


def test_a_key_written_into_a_header_stays_out_of_the_run_directory(openai_server, env, cli):
    literal = "hdr-LITERAL-key-55aa"
    spec = write_spec(env, openai_server.base_url, ["topic 1"], ANSWER)
    header = f"    timeout: 5\n    headers: {{X-Api-Key: {literal}}}\n"
    spec.write_text(spec.read_text().replace("    timeout: 5\n", header))
    result = cli("run", spec, "--json")
    assert openai_server.requests[0].headers["X-Api-Key"] == literal  # it was sent
    assert "X-Api-Key: '***'" in (env / ".dataflow/runs/guarantees/spec.resolved.yaml").read_text()
    for path in (env / ".dataflow").rglob("*"):
        if path.is_file():
            assert literal.encode() not in path.read_bytes(), path
    assert literal not in result.stdout + result.stderr


# ---- 2. one call per distinct request; a rerun agrees with the run -------------------------------


def test_identical_requests_share_one_call_and_a_rerun_gives_the_same_output(openai_server_factory, env, cli):
    # 2,000 rows asking 189 distinct prompts, on 8 batches in flight; the server answers every
    # call differently, so any duplicate call would show in the output.
    counter = itertools.count()
    lock = threading.Lock()

    def responder(body: dict) -> str:
        with lock:
            return f"answer #{next(counter)}"

    server = openai_server_factory(latency=0.01, responder=responder)
    topics = [f"topic {i % 189}" for i in range(2000)]
    spec = write_spec(env, server.base_url, topics, ANSWER, concurrency=32, batch_size=50)
    stats = cli.json("run", spec)
    assert server.total_requests == 189
    llm = stats["stages"][0]["llm"]
    assert llm["requests"] == 2000 and llm["calls"] == 189
    assert llm["shared"] + llm["cache_hits"] == 2000 - 189
    first = read_jsonl(env / "out" / "answers.jsonl")
    by_topic: dict[str, set[str]] = {}
    for row in first:
        by_topic.setdefault(row["topic"], set()).add(row["answer"])
    assert len(by_topic) == 189 and all(len(answers) == 1 for answers in by_topic.values())

    # A rerun that ignores the checkpoints answers from the cache: no call, the same output.
    stats = cli.json("run", spec, "--fresh")
    assert server.total_requests == 189 and stats["stages"][0]["llm"]["cache_hits"] == 2000
    assert read_jsonl(env / "out" / "answers.jsonl") == first


# ---- 3. a 401 stops the run before anything else is sent -----------------------------------------


def test_an_auth_failure_sends_no_request_after_the_first_401(openai_server_factory, env, cli):
    server = openai_server_factory(require_api_key="sk-the-right-one", latency=0.01)
    spec = write_spec(env, server.base_url, [f"topic {i}" for i in range(2000)], ANSWER, concurrency=16)
    result = cli("run", spec, expect=1)
    assert "HTTP 401" in result.stderr and "api_key_env" in result.stderr
    server.wait_idle()
    # Only requests already in flight when the first 401 came back: at most max_concurrency.
    assert 1 <= server.total_requests <= 16, server.total_requests
    assert set(server.status_counts) == {401}
    # Nothing half-done is left where the output goes: no directory, no temp file.
    assert not (env / "out").exists()
    assert not [p for p in env.iterdir() if p.name.startswith(".answers")]


def test_an_existing_output_directory_survives_a_failed_run(openai_server_factory, env, cli):
    server = openai_server_factory(require_api_key="sk-the-right-one")
    (env / "out").mkdir()
    (env / "out" / "keep.txt").write_text("mine")
    spec = write_spec(env, server.base_url, [f"topic {i}" for i in range(5)], ANSWER)
    cli("run", spec, expect=1)
    assert [p.name for p in (env / "out").iterdir()] == ["keep.txt"]


# ---- 4. answers cut off by max_tokens ------------------------------------------------------------


def test_truncated_answers_are_rejected_with_their_text_and_counted(openai_server, env, cli):
    topics = ["short", "a topic long enough to be cut off", "tiny", "another one that runs on and on"]
    stage = ANSWER.replace('template: "{{ topic }}"', 'template: "{{ topic }}", max_tokens: 4')
    spec = write_spec(env, openai_server.base_url, topics, stage)
    stats = cli.json("run", spec)
    kept = read_jsonl(env / "out" / "answers.jsonl")
    rejects = read_jsonl(Path(stats["rejects"]))
    assert [r["answer"] for r in kept] == ["echo: short", "echo: tiny"]
    assert [(r["topic"], r["_reason"], r["_raw_output"]) for r in rejects] == [
        (topics[1], "llm truncated (max_tokens)", "echo: a topic long"),
        (topics[3], "llm truncated (max_tokens)", "echo: another one that"),
    ]
    stage_stats = stats["stages"][0]
    assert stage_stats["llm"]["truncated"] == 2
    assert stage_stats["dropped_by_reason"] == {"llm truncated (max_tokens)": 2}

    # `on_truncated: keep` takes the cut-off text as it is; the answers come from the cache.
    requests = openai_server.total_requests
    stats = cli.json("run", spec, "--set", "stages.answer.on_truncated=keep")
    kept = read_jsonl(env / "out" / "answers.jsonl")
    assert [r["answer"] for r in kept] == [
        "echo: short",
        "echo: a topic long",
        "echo: tiny",
        "echo: another one that",
    ]
    assert stats["rows_rejected"] == 0 and stats["stages"][0]["llm"]["truncated"] == 2
    assert openai_server.total_requests == requests


def test_the_fake_backend_scripts_a_truncated_answer(env, cli):
    write_jsonl(env / "topics.jsonl", [{"topic": "a"}, {"topic": "b"}])
    (env / "spec.yaml").write_text(
        """version: 1
name: fake_cut
input: {path: topics.jsonl}
output: {path: out/answers.jsonl}
backends:
  default: {provider: fake, replies: ["fits", "this reply is too long"]}
stages:
  - name: answer
    op: prompted_generator
    params: {template: "{{ topic }}", max_tokens: 3}
    outputs: {text: answer}
"""
    )
    stats = cli.json("run", env / "spec.yaml")
    assert [r["answer"] for r in read_jsonl(env / "out" / "answers.jsonl")] == ["fits"]
    [reject] = read_jsonl(Path(stats["rejects"]))
    assert (reject["_reason"], reject["_raw_output"]) == ("llm truncated (max_tokens)", "this reply is")
