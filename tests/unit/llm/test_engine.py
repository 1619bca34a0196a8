"""The request engine with a scripted fake backend: retries, limits, cache, error policy."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from dataflow_cli.llm.backends.fake import FakeBackend, FakeConfig
from dataflow_cli.llm.cache import RequestCache
from dataflow_cli.llm.engine import (
    FatalLLMError,
    LLMEngine,
    LLMStats,
    Policy,
    TruncatedAnswer,
    schema_problem,
)
from dataflow_cli.llm.types import Completion, LLMError, Request, Sampling


def req(text: str, **kw) -> Request:
    return Request(({"role": "user", "content": text},), **kw)


@pytest.fixture
def make_engine(tmp_path):
    engines = []

    def make(backend, cache: bool = False, name: str = "default"):
        engine = LLMEngine({name: backend}, RequestCache(tmp_path / "cache.sqlite") if cache else None)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def run(engine, requests, policy=None, stats=None):
    stats = stats or LLMStats()
    return engine.complete("default", requests, stats, policy or Policy(), "stage"), stats


def test_answers_come_back_in_order_with_usage(make_engine):
    backend = FakeBackend.scripted(lambda r: r.messages[-1]["content"].upper())
    results, stats = run(make_engine(backend), [req(f"q{i}") for i in range(20)])
    assert [r.text for r in results] == [f"Q{i}" for i in range(20)]
    assert stats.requests == 20 and stats.calls == 20 and stats.cache_hits == 0
    assert stats.prompt_tokens == 20 and stats.completion_tokens == 20


def test_transient_errors_retry_and_honour_retry_after(make_engine):
    seen: dict[str, int] = {}

    def script(r):
        text = r.messages[-1]["content"]
        seen[text] = seen.get(text, 0) + 1
        if seen[text] <= 2:
            return LLMError("rate_limit", "slow down", status=429, retry_after=0.2)
        return "ok"

    backend = FakeBackend.scripted(script, backoff=0.0)
    start = time.perf_counter()
    results, stats = run(make_engine(backend), [req("a"), req("b")])
    elapsed = time.perf_counter() - start
    assert [r.text for r in results] == ["ok", "ok"]
    assert stats.retries == 4 and stats.calls == 6 and stats.errors == 0
    assert 0.4 <= elapsed < 1.5  # two waits of Retry-After (0.2 s, jittered up to +20%) each


def test_permanent_errors_are_not_retried(make_engine):
    backend = FakeBackend.scripted(lambda r: LLMError("bad_request", "context too long", status=400))
    results, stats = run(make_engine(backend), [req("x")])
    assert isinstance(results[0], LLMError) and results[0].kind == "bad_request"
    assert stats.calls == 1 and stats.retries == 0 and stats.errors_by_kind == {"bad_request": 1}


def test_retries_give_up_after_max_retries(make_engine):
    backend = FakeBackend.scripted(
        lambda r: LLMError("server", "boom", status=500), max_retries=2, backoff=0.0
    )
    results, stats = run(make_engine(backend), [req("x")])
    assert results[0].kind == "server" and stats.calls == 3 and stats.errors == 1


def test_auth_error_stops_the_run(make_engine):
    backend = FakeBackend.scripted(lambda r: LLMError("auth", "Incorrect API key provided", status=401))
    engine = make_engine(backend)
    with pytest.raises(FatalLLMError) as err:
        run(engine, [req(f"q{i}") for i in range(10)])
    assert "HTTP 401" in err.value.reason and "api_key_env" in err.value.hint
    with pytest.raises(FatalLLMError):  # later batches fail at once, without calling the backend
        calls = len(backend.history)
        run(engine, [req("again")])
    assert len(backend.history) == calls


def test_on_error_fail_stops_at_first_failure(make_engine):
    backend = FakeBackend.scripted(lambda r: LLMError("bad_request", "nope", status=400))
    with pytest.raises(FatalLLMError, match="request failed") as err:
        run(make_engine(backend), [req("x")], Policy(on_error="fail"))
    assert "on_error: reject" in err.value.hint


def test_error_rate_threshold_aborts(make_engine):
    backend = FakeBackend.scripted(
        lambda r: LLMError("bad_request", "bad", status=400) if "odd" in r.messages[-1]["content"] else "fine"
    )
    requests = [req(f"{'odd' if i % 2 else 'even'} {i}") for i in range(60)]
    with pytest.raises(FatalLLMError, match="max_error_rate 20%"):
        run(make_engine(backend), requests)
    # Below the minimum number of requests the rate is not judged yet.
    results, stats = run(make_engine(backend), requests[:10], Policy(min_requests=50))
    assert stats.errors == 5


def test_schema_invalid_answers_are_retried_then_rejected_with_raw_text(make_engine):
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    answers = iter(['{"score": "high"}', "not json", '```json\n{"score": 4}\n```'])
    backend = FakeBackend.scripted(lambda r: next(answers))
    results, stats = run(make_engine(backend), [req("rate", json_schema=schema)])
    assert results[0].text.endswith("```") and stats.invalid_outputs == 2
    backend = FakeBackend.scripted(lambda r: '{"score": "high"}')
    results, stats = run(make_engine(backend), [req("rate", json_schema=schema)], Policy(schema_retries=1))
    assert results[0].kind == "invalid_output" and results[0].raw == '{"score": "high"}'
    assert "score: 'high' is not of type 'integer'" in results[0].message


def test_cache_makes_a_rerun_free(make_engine, tmp_path):
    backend = FakeBackend.scripted(lambda r: "answer " + r.messages[-1]["content"])
    engine = make_engine(backend, cache=True)
    first, _ = run(engine, [req(f"q{i}") for i in range(30)])
    engine.close()
    backend2 = FakeBackend(backend.config, script=backend.script)
    engine2 = make_engine(backend2, cache=True)
    second, stats = run(engine2, [req(f"q{i}") for i in range(30)])
    assert [r.text for r in second] == [r.text for r in first]
    assert stats.cache_hits == 30 and stats.calls == 0 and backend2.history == []
    assert all(r.cached for r in second)


def test_cache_key_separates_sampling_and_samples():
    base = req("x")
    assert base.cache_key("m") != req("x", sampling=Sampling(temperature=0.5)).cache_key("m")
    assert base.cache_key("m") != req("x", sample_index=1).cache_key("m")
    assert base.cache_key("m") != base.cache_key("other-model")
    assert base.cache_key("m") == req("x").cache_key("m")


def test_failures_are_not_cached(make_engine):
    backend = FakeBackend.scripted(lambda r: LLMError("bad_request", "no", status=400))
    engine = make_engine(backend, cache=True)
    run(engine, [req("x")])
    assert engine.cache.stats()["entries"] == 0


def test_concurrency_cap(make_engine):
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=4, latency=0.05))
    engine = make_engine(backend)
    peak = 0

    original = backend.complete

    async def tracking(request):
        nonlocal peak
        peak = max(peak, engine.in_flight("default"))
        return await original(request)

    backend.complete = tracking
    start = time.perf_counter()
    run(engine, [req(f"q{i}") for i in range(16)])
    assert peak == 4
    assert time.perf_counter() - start >= 0.2  # 16 requests / 4 at a time * 50 ms


def test_rpm_limit_spaces_requests(make_engine):
    backend = FakeBackend(FakeConfig(provider="fake", rpm=600))  # 10 per second, burst of 10
    start = time.perf_counter()
    _, stats = run(make_engine(backend), [req(f"q{i}") for i in range(20)])
    elapsed = time.perf_counter() - start
    assert 0.8 <= elapsed < 2.5  # the second ten wait for the bucket to refill
    assert stats.rate_limit_wait > 0


def test_schema_problem_accepts_fenced_json():
    schema = {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}
    assert schema_problem(req("x", json_schema=schema), '```json\n{"a": 1}\n```') is None
    assert "not JSON" in schema_problem(req("x", json_schema=schema), "{a: 1}")
    assert schema_problem(req("x"), "anything") is None


def test_completion_defaults():
    c = Completion("hi")
    assert c.cached is False and c.cost is None


def test_a_model_that_cannot_load_stops_the_run(make_engine):
    backend = FakeBackend.scripted(lambda r: LLMError("unavailable", "llama.cpp could not load model.gguf"))
    with pytest.raises(FatalLLMError, match="could not load") as err:
        run(make_engine(backend), [req("x"), req("y")])
    assert "model settings" in err.value.hint


def test_unusable_cache_file_is_a_clear_error(tmp_path):
    from dataflow_cli.errors import DataflowError

    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(DataflowError, match="cannot open the request cache") as err:
        RequestCache(bad)
    assert "DATAFLOW_CACHE_DIR" in err.value.hint


# ---- identical requests share one call ----------------------------------------------------------


def counting_backend(**config):
    """Answers every call differently, so a second call for the same request would show."""
    calls = itertools.count()
    return FakeBackend.scripted(lambda r: f"{r.messages[-1]['content']} #{next(calls)}", **config)


def test_identical_requests_in_a_batch_share_one_call(make_engine):
    backend = counting_backend(latency=0.01)
    results, stats = run(make_engine(backend), [req(f"q{i % 3}") for i in range(12)])
    assert len(backend.history) == 3
    assert [r.text for r in results[:3]] * 4 == [r.text for r in results]
    assert stats.requests == 12 and stats.calls == 3 and stats.shared == 9


def test_identical_requests_in_concurrent_batches_share_one_call(make_engine):
    backend = counting_backend(latency=0.05)
    engine = make_engine(backend, cache=True)
    answers: dict[int, list] = {}

    def batch(k: int) -> None:
        answers[k], _ = run(engine, [req(f"q{i}") for i in range(10)])

    threads = [threading.Thread(target=batch, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(backend.history) == 10
    assert len({tuple(r.text for r in a) for a in answers.values()}) == 1


def test_an_answer_cached_after_the_batch_looked_is_reused(make_engine):
    # The race a batch can lose: it misses in the cache, then an identical call finishes
    # and leaves flight before the batch claims the key. It must find the cached answer.
    backend = counting_backend()
    engine = make_engine(backend, cache=True)
    stores_before = engine._stores
    first, _ = run(engine, [req("x")])
    state = engine._backends["default"]
    stats = LLMStats()
    key = req("x").cache_key(state.identity)
    again = engine._send(state, [req("x")], [key], stats, Policy(), "stage", True, stores_before).result()
    assert again[key].text == first[0].text and len(backend.history) == 1 and stats.cache_hits == 1


def test_a_shared_failure_reaches_every_row_once(make_engine):
    backend = FakeBackend.scripted(lambda r: LLMError("bad_request", "no", status=400), latency=0.01)
    results, stats = run(make_engine(backend), [req("x")] * 5)
    assert len(backend.history) == 1 and all(r.kind == "bad_request" for r in results)
    assert stats.errors == 1


# ---- a fatal error stops new requests -----------------------------------------------------------


def test_no_request_is_sent_after_the_first_auth_error(make_engine):
    backend = FakeBackend.scripted(
        lambda r: LLMError("auth", "Incorrect API key provided", status=401), max_concurrency=4, latency=0.02
    )
    with pytest.raises(FatalLLMError):
        run(make_engine(backend), [req(f"q{i}") for i in range(200)])
    assert len(backend.history) <= 4  # only those already in flight


def test_a_fatal_error_cuts_a_retry_wait_short(make_engine):
    def script(r):
        if r.messages[-1]["content"] == "busy":
            return LLMError("rate_limit", "slow down", status=429, retry_after=30)
        time.sleep(0.05)  # the 401 comes after the 429
        return LLMError("auth", "bad key", status=401)

    backend = FakeBackend.scripted(script)
    engine = make_engine(backend)
    with pytest.raises(FatalLLMError):
        run(engine, [req("busy"), req("denied")])
    deadline = time.monotonic() + 3
    while engine._tasks and time.monotonic() < deadline:  # the waiting retry ends, not after 30 s
        time.sleep(0.01)
    assert not engine._tasks
    assert [r.messages[-1]["content"] for r in backend.history] == ["busy", "denied"]  # no retry


# ---- answers cut off by max_tokens --------------------------------------------------------------


def test_truncated_answers_are_rejected_with_their_text(make_engine):
    backend = FakeBackend(FakeConfig(provider="fake", replies=["one two three four five", "one two"]))
    results, stats = run(
        make_engine(backend),
        [req("a", sampling=Sampling(max_tokens=3)), req("b", sampling=Sampling(max_tokens=3))],
    )
    assert isinstance(results[0], TruncatedAnswer) and results[0].reason() == "llm truncated (max_tokens)"
    assert results[0].raw == "one two three" and results[1].text == "one two"
    assert stats.truncated == 1 and stats.errors == 0


def test_keep_truncated_answers_when_asked(make_engine):
    backend = FakeBackend(FakeConfig(provider="fake", replies=["one two three"]))
    results, stats = run(
        make_engine(backend), [req("a", sampling=Sampling(max_tokens=2))], Policy(on_truncated="keep")
    )
    assert isinstance(results[0], Completion) and results[0].text == "one two"
    assert results[0].finish_reason == "length" and stats.truncated == 1


def test_a_truncated_json_answer_is_not_asked_again(make_engine):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    backend = FakeBackend.scripted(lambda r: Completion('{"answer": "The answe', finish_reason="length"))
    results, stats = run(make_engine(backend), [req("x", json_schema=schema)])
    assert isinstance(results[0], TruncatedAnswer) and results[0].raw == '{"answer": "The answe'
    assert len(backend.history) == 1 and stats.invalid_outputs == 0


def test_a_cached_truncated_answer_is_rejected_again_on_rerun(make_engine):
    backend = FakeBackend(FakeConfig(provider="fake", replies=["one two three"]))
    engine = make_engine(backend, cache=True)
    run(engine, [req("a", sampling=Sampling(max_tokens=2))])
    results, stats = run(engine, [req("a", sampling=Sampling(max_tokens=2))])
    assert stats.cache_hits == 1 and isinstance(results[0], TruncatedAnswer)
    assert results[0].raw == "one two" and len(backend.history) == 1


def test_a_complete_json_answer_padded_to_the_limit_is_not_cut_off(make_engine):
    # llama.cpp's JSON grammar lets a tiny model pad a finished object with whitespace until
    # max_tokens: the finish reason says `length`, but nothing of the answer is missing.
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    backend = FakeBackend.scripted(lambda r: Completion('{"score": 7}\n\n\n\n', finish_reason="length"))
    results, stats = run(make_engine(backend), [req("x", json_schema=schema)])
    assert isinstance(results[0], Completion) and stats.truncated == 0
