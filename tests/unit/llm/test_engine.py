"""The request engine with a scripted fake backend: retries, limits, cache, error policy."""

from __future__ import annotations

import time

import pytest

from dataflow_cli.llm.backends.fake import FakeBackend, FakeConfig
from dataflow_cli.llm.cache import RequestCache
from dataflow_cli.llm.engine import FatalLLMError, LLMEngine, LLMStats, Policy, schema_problem
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
