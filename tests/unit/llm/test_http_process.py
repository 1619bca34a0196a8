"""The `openai` backend's HTTP processes give the same answers and failures as calls made in the
engine's own process, a dead one stops the run without losing cached answers, and closing the
engine leaves no process behind. Also: requests stream in chunks, plain
templates render without Jinja, and the request cache checkpoints off the commit path."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import threading
import time
from pathlib import Path

import pytest

from dataflow_cli.llm.backends.fake import FakeBackend, FakeConfig
from dataflow_cli.llm.backends.http_process import HTTPProcess, make_session, post
from dataflow_cli.llm.backends.openai import OpenAIBackend, OpenAIConfig, http_processes
from dataflow_cli.llm.cache import CHECKPOINT_ROWS, RequestCache
from dataflow_cli.llm.engine import CHUNK, FatalLLMError, LLMEngine, LLMStats, Policy
from dataflow_cli.llm.operator import plain_template
from dataflow_cli.llm.types import Completion, LLMError, Request
from dataflow_cli.prompts import render
from tests.conftest import read_jsonl, write_jsonl


def req(text: str) -> Request:
    return Request(({"role": "user", "content": text},))


def body(text: str) -> bytes:
    return json.dumps({"model": "test-model", "messages": [{"role": "user", "content": text}]}).encode()


def outcome(result: Completion | LLMError) -> tuple:
    if isinstance(result, LLMError):
        return ("error", result.kind, result.status, result.retry_after, result.message)
    return ("ok", result.text, result.prompt_tokens, result.completion_tokens, result.finish_reason)


def descendants(pid: int) -> set[int]:
    """Live processes below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# ---- the child's answers are the parent's ---------------------------------------------------------


PROMPTS = ["hello", "FAIL500", "FAIL429", "FAIL400", "FAILMALFORMED", "FAILRESET", "FAILTIMEOUT", "AUTH"]


def test_a_call_through_a_process_gives_what_a_call_in_this_process_gives(openai_server_factory):
    server = openai_server_factory(latency=0.01, retry_after=0.7, timeout_delay=2.0)
    url = server.base_url + "/chat/completions"
    headers = {"Content-Type": "application/json"}

    async def both() -> tuple[list, list]:
        session = make_session(8, 0.5)
        here = []
        for text in PROMPTS:
            try:
                here.append(outcome(await post(session, url, body(text), headers, 0.5)))
            except LLMError as exc:
                here.append(outcome(exc))
        await session.close()
        (process,) = await HTTPProcess.start(1, url, 8, 0.5)
        while not process.ready:
            await asyncio.sleep(0.01)
        there = []
        for text in PROMPTS:
            try:
                there.append(outcome(await process.post(body(text), headers)))
            except LLMError as exc:
                there.append(outcome(exc))
        process.close()
        await process.wait()
        return here, there

    here, there = asyncio.run(both())
    assert here == there
    kinds = [o[1] if o[0] == "error" else "ok" for o in here]
    assert kinds == ["ok", "server", "rate_limit", "bad_request", "server", "connection", "timeout", "auth"]
    assert here[2][3] == 0.7  # Retry-After made it through


@pytest.fixture
def processes(monkeypatch):
    monkeypatch.setenv("DATAFLOW_HTTP_PROCESS", "2")


def openai_engine(server, cache: RequestCache | None = None, **config) -> tuple[LLMEngine, OpenAIBackend]:
    settings = {"max_concurrency": 100, "backoff": 0.01, "timeout": 10, **config}
    backend = OpenAIBackend(
        OpenAIConfig(provider="openai", model="test-model", api_base=server.base_url, **settings)
    )
    return LLMEngine({"default": backend}, cache), backend


def started(engine: LLMEngine, backend: OpenAIBackend) -> None:
    """One call starts the HTTP processes; then wait until both answer."""
    engine.complete("default", [req("start")], LLMStats(), Policy(), "stage")
    wait_until(lambda: len(backend._ready) == 2)


def test_the_engine_gets_the_same_answers_retries_and_stats_through_processes(
    openai_server_factory, monkeypatch, tmp_path
):
    server = openai_server_factory(latency=0.02, retry_after=0.05, fail_first_n={"rate_limit": 5})
    requests = [req(f"q{i % 150}") for i in range(300)]  # duplicates share a call either way
    runs = {}
    for count in ("0", "2"):
        monkeypatch.setenv("DATAFLOW_HTTP_PROCESS", count)
        engine, backend = openai_engine(server)
        try:
            if count == "2":
                started(engine, backend)
            server.configure(fail_first_n={"rate_limit": 5})
            stats = LLMStats()
            results = engine.complete("default", requests, stats, Policy(), "stage")
            used = sum(process._next for process in backend._processes or [])
        finally:
            engine.close()
        runs[count] = ([outcome(r) for r in results], stats.calls, stats.retries, stats.shared)
        if count == "2":
            assert used >= 150  # the calls went through the processes
    assert runs["0"] == runs["2"]
    assert runs["2"][1:] == (155, 5, 150)


def test_closing_the_engine_reaps_every_process_and_counts_their_cpu(openai_server, processes):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    engine, backend = openai_engine(openai_server)
    started(engine, backend)
    engine.complete("default", [req(f"q{i}") for i in range(200)], LLMStats(), Policy(), "stage")
    spawned = backend._processes[0]._proc.pid
    family = {spawned} | descendants(spawned)
    assert len(family) == 2  # the spawned one and its fork
    engine.close()
    assert not family & ({os.getpid()} | descendants(os.getpid()))
    with pytest.raises(ChildProcessError):
        os.waitpid(spawned, os.WNOHANG)  # reaped, not a zombie
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert after.ru_utime + after.ru_stime > before.ru_utime + before.ru_stime


def test_a_dead_http_process_stops_the_run_and_a_rerun_sends_only_what_was_not_cached(
    openai_server_factory, processes, monkeypatch, tmp_path
):
    server = openai_server_factory(latency=0.3)
    cache = RequestCache(tmp_path / "cache.sqlite")
    engine, backend = openai_engine(server, cache)
    requests = [req(f"q{i}") for i in range(400)]
    outcome_: list = []

    def batch() -> None:
        try:
            engine.complete("default", requests, LLMStats(), Policy(), "stage")
        except BaseException as exc:
            outcome_.append(exc)

    try:
        started(engine, backend)
        thread = threading.Thread(target=batch)
        thread.start()
        wait_until(lambda: server.total_requests >= 250)
        os.kill(backend._processes[0]._proc.pid, signal.SIGKILL)
        thread.join(30)
        assert not thread.is_alive()
    finally:
        engine.close()
    (error,) = outcome_
    assert isinstance(error, FatalLLMError) and "HTTP process exited" in str(error)
    assert "run again" in error.hint
    identity = backend.identity()
    cached = RequestCache(tmp_path / "cache.sqlite").get_many([r.cache_key(identity) for r in requests])
    assert 0 < len(cached) < len(requests)
    monkeypatch.setenv("DATAFLOW_HTTP_PROCESS", "0")
    engine, _ = openai_engine(server, RequestCache(tmp_path / "cache.sqlite"))
    sent = server.total_requests
    try:
        results = engine.complete("default", requests, LLMStats(), Policy(), "stage")
    finally:
        engine.close()
    assert server.total_requests - sent == len(requests) - len(cached)
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(400)]


def test_how_many_http_processes(monkeypatch):
    monkeypatch.delenv("DATAFLOW_HTTP_PROCESS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert [http_processes(n) for n in (16, 64, 65, 100, 500)] == [0, 0, 2, 2, 2]
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0}, raising=False)
    assert http_processes(500) == 0
    monkeypatch.setenv("DATAFLOW_HTTP_PROCESS", "3")
    assert http_processes(16) == 3


def test_a_run_with_http_processes_writes_what_a_run_without_writes(
    openai_server_factory, tmp_path, cli, monkeypatch
):
    server = openai_server_factory(
        latency=0.005, fail_rate=0.1, retry_after=0.05, fail_kinds={"rate_limit": 1, "server_error": 1}
    )
    write_jsonl(tmp_path / "topics.jsonl", [{"topic": f"topic {i}"} for i in range(300)])
    monkeypatch.chdir(tmp_path)
    outputs = {}
    for count in ("0", "2"):
        monkeypatch.setenv("DATAFLOW_HTTP_PROCESS", count)
        monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / f"cache-{count}"))
        spec = tmp_path / f"spec-{count}.yaml"
        spec.write_text(
            f"""version: 1
name: http_{count}
input: {{path: topics.jsonl, batch_size: 50}}
output: {{path: out-{count}/answers.jsonl}}
backends:
  default: {{provider: openai, model: test-model, api_base: "{server.base_url}", max_concurrency: 100,
            backoff: 0.02, max_retries: 10}}
stages:
  - name: answer
    op: prompted_generator
    params: {{template: "Tell me about {{{{ topic }}}}"}}
"""
        )
        stats = cli.json("run", spec)
        assert stats["rows_written"] == 300 and stats["rows_rejected"] == 0
        assert stats["stages"][0]["llm"]["retries"] > 0
        outputs[count] = read_jsonl(tmp_path / f"out-{count}" / "answers.jsonl")
        sent = server.total_requests
        assert cli.json("run", spec, "--fresh")["stages"][0]["llm"]["cache_hits"] == 300
        assert server.total_requests == sent  # the rerun makes no request
    assert outputs["0"] == outputs["2"]


# ---- chunks and back-pressure ---------------------------------------------------------------------


def test_the_first_calls_leave_before_the_last_prompts_are_built():
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=4))
    engine = LLMEngine({"default": backend}, None)
    answered_when_built = []

    def requests():
        for i in range(3 * CHUNK):
            answered_when_built.append(len(backend.history))
            if i == 2 * CHUNK:
                wait_until(lambda: len(backend.history) >= CHUNK)  # the first chunk was sent and answered
            yield req(f"q{i}")

    try:
        results = engine.complete("default", requests(), LLMStats(), Policy(), "stage")
    finally:
        engine.close()
    assert [r.text for r in results] == [f"fake reply to: q{i}" for i in range(3 * CHUNK)]
    assert answered_when_built[CHUNK - 1] == 0 and len(backend.history) == 3 * CHUNK


def test_a_failing_request_generator_fails_the_batch_without_hanging():
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=4))
    engine = LLMEngine({"default": backend}, None)

    def requests():
        for i in range(250):
            yield req(f"q{i}")
        raise ValueError("a prompt could not be rendered")

    try:
        with pytest.raises(ValueError, match="rendered"):
            engine.complete("default", requests(), LLMStats(), Policy(), "stage")
    finally:
        engine.close()


# ---- plain templates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "Write about {{ topic }}.",
        "{{a}}{{ b }}\r\nand a line\n",
        "no placeholder at all",
        "{# a comment #}{{ a }} {% raw %}{{ not a name }}{% endraw %}",
    ],
)
@pytest.mark.parametrize(
    "row",
    [
        {"topic": "x", "a": "é 😀", "b": 3},
        {"topic": 1.5, "a": [1, "two"], "b": {"k": None}},
        {"topic": True, "a": None, "b": 0.1},
    ],
)
def test_a_plain_template_renders_as_jinja_does(template, row):
    from dataflow_cli.llm.operator import LLMOperator

    op = LLMOperator.__new__(LLMOperator)
    op.prompt = template
    assert plain_template(template) is not None
    assert op.render(row) == render(template, row)


def test_only_text_and_names_make_a_plain_template():
    for template in ["{{ a | upper }}", "{{ a.b }}", "{% if a %}x{% endif %}", "{{ 'lit' }}", "{{ a + 1 }}"]:
        assert plain_template(template) is None


def test_a_name_that_is_no_column_still_goes_to_jinja():
    from jinja2 import UndefinedError

    from dataflow_cli.llm.operator import LLMOperator

    op = LLMOperator.__new__(LLMOperator)
    op.prompt = "{{ range }} and {{ missing }}"
    with pytest.raises(UndefinedError):
        op.render({"range": "r"})
    op.prompt = "{{ a }}{{ range }}"
    assert op.render({"a": "x"}) == render("{{ a }}{{ range }}", {"a": "x"})  # a Jinja global


# ---- checkpoints ----------------------------------------------------------------------------------


def test_commits_leave_checkpoints_to_their_own_thread(tmp_path):
    cache = RequestCache(tmp_path / "cache.sqlite")
    db = tmp_path / "cache.sqlite"
    size = db.stat().st_size
    answer = Completion("an answer of some length " * 4, 10, 20, "stop")
    for start in range(0, 2 * CHECKPOINT_ROWS + 200, 100):
        cache.put_many([(f"{i:064d}", "m", answer) for i in range(start, start + 100)])
        assert cache._checkpointing is None or start >= CHECKPOINT_ROWS - 100
    assert cache._checkpointing is not None
    cache._checkpointing.result()
    assert db.stat().st_size > size + 100 * 1024  # rows moved from the WAL into the database
    assert (
        len(cache.get_many([f"{i:064d}" for i in range(2 * CHECKPOINT_ROWS + 200)]))
        == 2 * CHECKPOINT_ROWS + 200
    )
    cache.close()
