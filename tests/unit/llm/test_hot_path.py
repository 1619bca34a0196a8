"""The LLM engine's hot path keeps its guarantees: cache keys, grouped cache commits, the
worker slots, shutdown with queued requests, fast prompt rendering and cached headers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time

import pytest

from dataflow_cli import redact
from dataflow_cli.llm.backends.fake import FakeBackend, FakeConfig
from dataflow_cli.llm.backends.openai import OpenAIBackend, OpenAIConfig
from dataflow_cli.llm.cache import ROWS_PER_INSERT, RequestCache
from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy
from dataflow_cli.llm.types import Completion, LLMError, Request, Sampling
from dataflow_cli.prompts import compile_template, render


def req(text: str, **kw) -> Request:
    return Request(({"role": "user", "content": text},), **kw)


# ---- cache keys ----------------------------------------------------------------------------------


def reference_key(request: Request, model: str) -> str:
    """The key as first defined: sha256 of the sorted, compact JSON of the whole request."""
    sampling = {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in dataclasses.asdict(request.sampling).items()
        if v is not None
    }
    payload = {
        "model": model,
        "messages": list(request.messages),
        "sampling": sampling,
        "json_schema": request.json_schema,
        "sample": request.sample_index,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "request_",
    [
        req('héllo "quoted" \n\t \u2028 😀 \\'),
        req("x", sampling=Sampling(temperature=0.0, max_tokens=5, top_p=0.9, seed=3, stop=("\n", "END"))),
        req("x", sampling=Sampling(temperature=1), sample_index=3),
        req("x", json_schema={"type": "object", "required": ["b", "a"], "properties": {"b": {}, "a": {}}}),
        Request(({"role": "system", "content": "s"}, {"role": "user", "content": "u", "name": "n"})),
    ],
)
def test_cache_keys_stay_those_of_earlier_runs(request_):
    # A cache filled by an earlier version must still answer: the key is the same bytes.
    for model in ("openai:http://127.0.0.1:8000/v1:m", "fake:é"):
        assert request_.cache_key(model) == reference_key(request_, model)
        assert request_.cache_key(model) == reference_key(request_, model)  # memoized parts too


def test_equal_samplings_that_serialize_differently_get_different_keys():
    # 0 == 0.0 in Python, but they are different requests to a server (and were different keys).
    assert req("x", sampling=Sampling(temperature=0)).cache_key("m") == reference_key(
        req("x", sampling=Sampling(temperature=0)), "m"
    )
    assert req("x", sampling=Sampling(temperature=0)).cache_key("m") != req(
        "x", sampling=Sampling(temperature=0.0)
    ).cache_key("m")


def test_sampling_dict_is_a_copy():
    sampling = Sampling(max_tokens=4, stop=("a",))
    first = sampling.as_dict()
    first["model"] = "changed"
    first["stop"].append("b")
    assert sampling.as_dict() == {"max_tokens": 4, "stop": ["a"]}
    assert sampling == Sampling(max_tokens=4, stop=("a",))


# ---- the cache ---------------------------------------------------------------------------------


def test_put_many_stores_more_rows_than_one_insert_holds(tmp_path):
    cache = RequestCache(tmp_path / "cache.sqlite")
    n = 2 * ROWS_PER_INSERT + 7
    items = [
        (
            f"k{i}",
            "m",
            Completion(f"answer {i} é😀\x00tail", i, 2 * i, None if i % 2 else "stop", i / 7 or None),
        )
        for i in range(n)
    ]
    cache.put_many(items)
    found = cache.get_many([key for key, _, _ in items])
    assert len(found) == n
    for key, _, completion in items:
        got = found[key]
        assert (got.text, got.prompt_tokens, got.completion_tokens, got.finish_reason, got.cost) == (
            completion.text,
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.finish_reason,
            completion.cost,
        )
    cache.put_many([("k0", "m", Completion("replaced"))])
    assert cache.get("k0").text == "replaced" and cache.stats()["entries"] == n


def test_a_failed_put_leaves_no_transaction_open(tmp_path):
    cache = RequestCache(tmp_path / "cache.sqlite")
    good = [(f"k{i}", "m", Completion("ok")) for i in range(ROWS_PER_INSERT + 5)]
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate cannot be stored as UTF-8
        cache.put_many(good + [("bad", "m", Completion("\udc80"))])
    assert cache.get_many([key for key, _, _ in good]) == {}  # all or nothing
    cache.put_many(good)
    assert len(cache.get_many([key for key, _, _ in good])) == len(good)


# ---- grouped commits and worker slots ------------------------------------------------------------


def test_answers_are_committed_together_and_before_anyone_sees_them(tmp_path):
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=8))
    engine = LLMEngine({"default": backend}, RequestCache(tmp_path / "cache.sqlite"))
    state = engine._backends["default"]
    groups = []
    put_many = engine.cache.put_many

    def recording(items):
        # Called on the loop: every answer in the group still holds its slot and is unpublished.
        groups.append(len(items))
        assert state.workers <= 8 and len(items) <= 8
        assert all(key in state.pending and not state.pending[key].done() for key, _, _ in items)
        put_many(items)

    engine.cache.put_many = recording
    try:
        requests = [req(f"q{i}") for i in range(100)]
        results = engine.complete("default", requests, LLMStats(), Policy(), "stage")
        keys = [r.cache_key(state.identity) for r in requests]
        cached = engine.cache.get_many(keys)
        assert [cached[k].text for k in keys] == [r.text for r in results]
        assert sum(groups) == 100 and max(groups) > 1  # several answers share a commit
        assert state.workers == 0 and not state.queue and not state.pending
    finally:
        engine.close()


def test_at_most_max_concurrency_answers_are_uncommitted_at_any_time(tmp_path):
    # The crash guarantee: requests in flight plus answers not yet in the cache never exceed
    # max_concurrency, so a killed run re-sends at most that many.
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=5, latency=0.002))
    engine = LLMEngine({"default": backend}, RequestCache(tmp_path / "cache.sqlite"))
    state = engine._backends["default"]
    worst = 0
    original = backend.complete

    async def tracking(request):
        nonlocal worst
        worst = max(worst, state.in_flight + engine.uncommitted)
        return await original(request)

    backend.complete = tracking
    try:
        engine.complete("default", [req(f"q{i}") for i in range(60)], LLMStats(), Policy(), "stage")
    finally:
        engine.close()
    assert 1 < worst <= 5


def test_closing_the_engine_fails_queued_requests_instead_of_hanging():
    backend = FakeBackend(FakeConfig(provider="fake", max_concurrency=1, latency=0.05))
    engine = LLMEngine({"default": backend}, None)
    outcome: list = []

    def batch():
        try:
            engine.complete("default", [req(f"q{i}") for i in range(50)], LLMStats(), Policy(), "stage")
            outcome.append("finished")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=batch)
    thread.start()
    time.sleep(0.12)  # a few answered, the rest queued behind the one slot
    engine.close()
    thread.join(5)
    assert not thread.is_alive()
    assert isinstance(outcome[0], RuntimeError) and "closed" in str(outcome[0])
    assert len(backend.history) < 50


def test_a_retry_waits_without_holding_a_slot():
    # One slot: while `slow` waits 0.3 s to retry, the other requests go through it.
    seen: dict[str, int] = {}

    def script(r):
        text = r.messages[-1]["content"]
        seen[text] = seen.get(text, 0) + 1
        if text == "slow" and seen[text] == 1:
            return LLMError("rate_limit", "later", status=429, retry_after=0.3)
        return f"ok {text}"

    backend = FakeBackend.scripted(script, max_concurrency=1)
    engine = LLMEngine({"default": backend}, None)
    try:
        results = engine.complete(
            "default", [req("slow")] + [req(f"q{i}") for i in range(5)], LLMStats(), Policy(), "stage"
        )
    finally:
        engine.close()
    order = [r.messages[-1]["content"] for r in backend.history]
    assert order == ["slow", "q0", "q1", "q2", "q3", "q4", "slow"]
    assert [r.text for r in results] == ["ok slow"] + [f"ok q{i}" for i in range(5)]


# ---- prompt rendering and headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "row"),
    [
        ("Write about {{ topic }}.", {"topic": "x"}),
        (
            "{% for i in range(n) %}{{ i }},{% endfor %}{{ d | tojson }} {{ namespace(a=1).a }}",
            {"n": 3, "d": {"k": 1}},
        ),
        ("{{ range }}", {"range": "a column named like a global wins"}),
    ],
)
def test_fast_rendering_matches_jinja(template, row):
    assert render(template, row) == compile_template(template).render(**row)


def test_fast_rendering_raises_like_jinja():
    import jinja2

    with pytest.raises(jinja2.UndefinedError, match="'missing' is undefined"):
        render("{{ missing }}", {})
    with pytest.raises(jinja2.exceptions.SecurityError):  # still the sandbox
        render("{{ x.__class__.__mro__ }}", {"x": 1})


def test_openai_headers_follow_the_key_in_the_environment(monkeypatch):
    backend = OpenAIBackend(OpenAIConfig(provider="openai", model="m", api_key_env="HOT_PATH_TEST_KEY"))
    monkeypatch.setenv("HOT_PATH_TEST_KEY", "sk-first-0123456789")
    assert backend._headers()["Authorization"] == "Bearer sk-first-0123456789"
    assert backend._headers() is backend._headers()  # built once per key
    monkeypatch.setenv("HOT_PATH_TEST_KEY", "sk-second-0123456789")
    assert backend._headers()["Authorization"] == "Bearer sk-second-0123456789"
    assert redact.redact("key sk-second-0123456789") == "key ***"
    monkeypatch.delenv("HOT_PATH_TEST_KEY")
    with pytest.raises(LLMError, match="HOT_PATH_TEST_KEY"):
        backend._headers()
