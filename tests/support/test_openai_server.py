"""Tests of the OpenAI-compatible test server itself, through a real aiohttp client."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jsonschema
import pytest

from tests.support.openai_server import (
    FAULT_KINDS,
    REPO,
    Fault,
    OpenAIServer,
    ServerConfig,
    _read_ready,
    count_tokens,
    example_from_schema,
)

CHAT = "/chat/completions"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def body_for(content: str = "hello world", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}


async def apost(
    session: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> Reply:
    async with session.post(url, json=body, headers=headers) as resp:
        return Reply(resp.status, dict(resp.headers), await resp.text())


async def post_many(
    url: str, bodies: list[Any], timeout: float = 10.0, **kw: Any
) -> list[Reply | BaseException]:
    """All bodies at once over one session (connection pool large enough for all)."""
    connector = aiohttp.TCPConnector(limit=max(len(bodies), 1))
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        return await asyncio.gather(*(apost(session, url, b, **kw) for b in bodies), return_exceptions=True)


async def post_seq(
    url: str, bodies: list[Any], timeout: float = 10.0, **kw: Any
) -> list[Reply | BaseException]:
    """One after another: the server sees them in this order."""
    out: list[Reply | BaseException] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for b in bodies:
            try:
                out.append(await apost(session, url, b, **kw))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                out.append(exc)
    return out


def chat(server: OpenAIServer, content: str = "hello world", *, headers=None, timeout=10.0, **extra) -> Reply:
    result = asyncio.run(
        post_seq(server.base_url + CHAT, [body_for(content, **extra)], timeout, headers=headers)
    )[0]
    if isinstance(result, BaseException):
        raise result
    return result


def statuses(server: OpenAIServer, n: int, content: str = "hi") -> list[int]:
    replies = asyncio.run(post_seq(server.base_url + CHAT, [body_for(content) for _ in range(n)]))
    return [r.status if isinstance(r, Reply) else 0 for r in replies]


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


# ---- protocol shape -----------------------------------------------------------------------------


def test_chat_completion_has_the_openai_shape(openai_server):
    before = int(time.time())
    reply = chat(openai_server, "hello  brave\tnew world")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    data = reply.json()
    assert set(data) == {"id", "object", "created", "model", "choices", "usage"}
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int) and before <= data["created"] <= time.time() + 1
    assert data["model"] == "gpt-test"
    [choice] = data["choices"]
    assert set(choice) == {"index", "message", "finish_reason"}
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "echo: hello  brave\tnew world"}
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}


def test_echo_uses_last_user_message_and_usage_counts_all_messages(openai_server):
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "part"}],
            },
        ],
    }
    [reply] = asyncio.run(post_seq(openai_server.base_url + CHAT, [body]))
    data = reply.json()
    assert data["choices"][0]["message"]["content"] == "echo: second part"
    assert data["usage"]["prompt_tokens"] == 2 + 2 + 2 + 2
    assert data["usage"]["completion_tokens"] == 3


def test_model_defaults_to_the_configured_model(openai_server_factory):
    server = openai_server_factory(model="my-model")
    [reply] = asyncio.run(
        post_seq(server.base_url + CHAT, [{"messages": [{"role": "user", "content": "x"}]}])
    )
    assert reply.json()["model"] == "my-model"


def test_models_endpoint(openai_server_factory):
    server = openai_server_factory(model="my-model")

    async def go():
        async with aiohttp.ClientSession() as s, s.get(server.base_url + "/models") as r:
            return r.status, await r.json()

    status, data = asyncio.run(go())
    assert status == 200
    assert data["object"] == "list"
    assert data["data"][0]["id"] == "my-model" and data["data"][0]["object"] == "model"
    assert server.requests[0].path == "/v1/models"


def test_streaming_chunks_concatenate_to_the_full_answer(openai_server):
    full = chat(openai_server, "one two  three").json()["choices"][0]["message"]["content"]
    reply = chat(openai_server, "one two  three", stream=True)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(reply.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == full == "echo: one two  three"
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert len(chunks) >= 4  # role, several content pieces, finish
    assert "usage" not in chunks[-1]


def test_special_characters_survive(openai_server):
    text = 'quote " backslash \\ tab\t newline\n unicode é 中文 \u2028 emoji 🙂'
    data = chat(openai_server, text).json()
    assert data["choices"][0]["message"]["content"] == "echo: " + text
    events = sse_events(chat(openai_server, text, stream=True, model='we"ird').text)
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "echo: " + text
    assert chunks[0]["model"] == 'we"ird'


def test_streaming_usage_chunk_when_asked(openai_server):
    reply = chat(openai_server, "a b c", stream=True, stream_options={"include_usage": True})
    chunks = [json.loads(e) for e in sse_events(reply.text)[:-1]]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert all(c["usage"] is None for c in chunks[:-1])


def test_unknown_routes(openai_server):
    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.get(openai_server.base_url + CHAT) as r:
                wrong_method = r.status
            async with s.post(openai_server.url + "/v2/nothing", json={}) as r:
                return wrong_method, r.status

    assert asyncio.run(go()) == (405, 404)


def test_invalid_body_is_400(openai_server):
    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.post(openai_server.base_url + CHAT, data=b"{not json") as r:
                first = r.status, await r.json()
            async with s.post(openai_server.base_url + CHAT, json={"model": "m"}) as r:
                return first, (r.status, await r.json())

    (s1, e1), (s2, e2) = asyncio.run(go())
    assert s1 == s2 == 400
    assert e1["error"]["type"] == e2["error"]["type"] == "invalid_request_error"
    assert openai_server.requests[0].body == "{not json"


# ---- replies ------------------------------------------------------------------------------------


def test_custom_responder(openai_server_factory):
    seen = []

    def responder(request):
        seen.append(request)
        return json.dumps({"n": len(request["messages"])})

    server = openai_server_factory(responder=responder)
    assert chat(server).json()["choices"][0]["message"]["content"] == '{"n": 1}'
    assert seen[0]["model"] == "gpt-test"
    reply = chat(server, stream=True)
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content", "") for e in sse_events(reply.text)[:-1]
    )
    assert text == '{"n": 1}'


def test_async_responder_and_fault_from_responder(openai_server_factory):
    async def responder(request):
        await asyncio.sleep(0)
        content = request["messages"][-1]["content"]
        if content == "boom":
            raise Fault("500")
        return content.upper()

    server = openai_server_factory(responder=responder)
    assert chat(server, "abc").json()["choices"][0]["message"]["content"] == "ABC"
    assert chat(server, "boom").status == 500
    assert server.fault_counts == {"server_error": 1}


def test_responder_can_be_swapped_at_runtime(openai_server):
    openai_server.configure(responder=lambda request: "fixed")
    assert chat(openai_server).json()["choices"][0]["message"]["content"] == "fixed"
    openai_server.configure(responder=None)
    assert chat(openai_server).json()["choices"][0]["message"]["content"] == "echo: hello world"


SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "score": {"type": "number"},
            "count": {"type": "integer"},
            "ok": {"type": "boolean"},
            "label": {"type": "string", "enum": ["good", "bad"]},
        },
        "required": ["name", "score", "count", "ok", "label"],
        "additionalProperties": False,
    },
    {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 3, "maxLength": 5},
            "when": {"type": "string", "format": "date"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "p": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "even": {"type": "integer", "minimum": 3, "multipleOf": 2},
            "neg": {"type": "number", "maximum": -2.5},
            "maybe": {"type": ["string", "null"]},
            "choice": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 7}]},
            "fixed": {"const": "v1"},
        },
        "required": ["code", "when", "rating", "p", "even", "neg", "maybe", "choice", "fixed"],
    },
    {
        "type": "object",
        "$defs": {
            "Item": {"type": "object", "properties": {"q": {"type": "string"}, "a": {"type": "string"}}}
        },
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
            "tags": {"type": "array", "items": {"type": "string"}},
            "meta": {"allOf": [{"properties": {"x": {"type": "integer"}}, "required": ["x"]}]},
        },
        "required": ["items", "tags", "meta"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_example_from_schema_is_valid(schema):
    value = example_from_schema(schema)
    jsonschema.validate(value, schema)
    assert example_from_schema(schema) == value  # deterministic


def test_example_from_schema_values():
    assert example_from_schema(SCHEMAS[0]) == {
        "name": "",
        "score": 0,
        "count": 0,
        "ok": False,
        "label": "good",
    }
    assert len(example_from_schema(SCHEMAS[2])["items"]) == 2


def test_default_responder_follows_json_schema(openai_server):
    fmt = {"type": "json_schema", "json_schema": {"name": "row", "strict": True, "schema": SCHEMAS[0]}}
    content = chat(openai_server, response_format=fmt).json()["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(content), SCHEMAS[0])
    content = chat(openai_server, "hi", response_format={"type": "json_object"}).json()
    assert json.loads(content["choices"][0]["message"]["content"]) == {"echo": "hi"}


# ---- faults -------------------------------------------------------------------------------------


def test_rate_limit_fault_has_retry_after(openai_server_factory):
    server = openai_server_factory(fail_first_n={"rate_limit": 1}, retry_after=0.25)
    reply = chat(server)
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "0.25"
    assert reply.json()["error"]["code"] == "rate_limit_exceeded"
    assert chat(server).status == 200


def test_server_error_fault(openai_server):
    reply = chat(openai_server, "please FAIL500 now")
    assert reply.status == 500
    assert reply.json()["error"]["type"] == "server_error"


def test_malformed_fault_is_200_with_broken_json(openai_server):
    reply = chat(openai_server, "FAILMALFORMED")
    assert reply.status == 200
    with pytest.raises(json.JSONDecodeError):
        reply.json()
    events = sse_events(chat(openai_server, "FAILMALFORMED", stream=True).text)
    assert events[-1] == "[DONE]"
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[0])


def test_timeout_fault_outlasts_the_client_timeout(openai_server_factory):
    server = openai_server_factory(timeout_delay=5.0)
    start = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        chat(server, "FAILTIMEOUT", timeout=0.3)
    assert time.monotonic() - start < 2.0
    server.wait_idle(5)  # the server noticed the client leaving
    assert server.requests[-1].status == 499 and server.requests[-1].fault == "timeout"


def test_timeout_fault_answers_after_the_delay(openai_server_factory):
    server = openai_server_factory(timeout_delay=0.3)
    start = time.monotonic()
    reply = chat(server, "FAILTIMEOUT please")
    assert time.monotonic() - start >= 0.3
    assert reply.status == 200
    assert reply.json()["choices"][0]["message"]["content"] == "echo: FAILTIMEOUT please"


def test_reset_fault_drops_the_connection(openai_server, caplog):
    with caplog.at_level(logging.DEBUG, logger="aiohttp"), pytest.raises(aiohttp.ClientConnectionError):
        chat(openai_server, "FAILRESET")
    assert chat(openai_server).status == 200  # the server is fine
    openai_server.wait_idle()
    assert openai_server.status_counts == {0: 1, 200: 1}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_slow_stream_fault(openai_server_factory):
    server = openai_server_factory(slow_stream_delay=0.1)
    start = time.monotonic()
    reply = chat(server, "FAILSLOW a b", stream=True)
    elapsed = time.monotonic() - start
    events = sse_events(reply.text)
    assert len(events) == 7  # role, 4 pieces ("echo:", " FAILSLOW", " a", " b"), finish, [DONE]
    assert elapsed >= 0.1 * (len(events) - 1) - 0.05
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == "echo: FAILSLOW a b"

    start = time.monotonic()
    reply = chat(server, "FAILSLOW")  # non-streaming: the JSON body trickles in 4 pieces
    assert time.monotonic() - start >= 0.3 - 0.05
    assert reply.json()["choices"][0]["message"]["content"] == "echo: FAILSLOW"


def test_stream_chunk_delay_applies_to_every_stream(openai_server_factory):
    server = openai_server_factory(stream_chunk_delay=0.05)
    start = time.monotonic()
    events = sse_events(chat(server, "a b c", stream=True).text)
    assert time.monotonic() - start >= 0.05 * (len(events) - 1) - 0.03


def test_auth_rule_and_bad_request(openai_server):
    reply = chat(openai_server, "AUTH please")
    assert reply.status == 401
    assert reply.json()["error"]["message"] == "Incorrect API key provided"
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert chat(openai_server, "FAIL400").status == 400
    assert chat(openai_server, "FAIL429").status == 429


def test_every_fault_kind_is_observable(openai_server_factory):
    server = openai_server_factory(timeout_delay=3.0, slow_stream_delay=0.01, rules=[])
    expected = {
        "rate_limit": 429,
        "server_error": 500,
        "auth": 401,
        "bad_request": 400,
        "malformed": 200,
        "slow_stream": 200,
        "timeout": "timeout",
        "reset": "reset",
    }
    assert set(expected) == set(FAULT_KINDS)
    for kind, want in expected.items():
        server.configure(fail_first_n={kind: 1})
        try:
            got: Any = chat(server, timeout=0.5).status
        except asyncio.TimeoutError:
            got = "timeout"
        except aiohttp.ClientConnectionError:
            got = "reset"
        assert got == want, kind
    server.wait_idle()
    assert server.fault_counts == dict.fromkeys(FAULT_KINDS, 1)


def test_content_rules(openai_server_factory):
    server = openai_server_factory()
    assert [chat(server, "x FAIL500 y").status for _ in range(3)] == [500, 500, 500]
    assert chat(server, "fine").status == 200
    server.configure(rules={"SECRET": "auth", "OOPS": 500})
    assert chat(server, "OOPS").status == 500
    assert chat(server, "SECRET").status == 401
    assert chat(server, "FAIL500").status == 200  # the defaults were replaced
    server.configure(rules=None)  # back to the defaults
    assert chat(server, "FAIL500").status == 500


def test_rules_match_the_last_message(openai_server):
    body = {"messages": [{"role": "user", "content": "FAIL500"}, {"role": "user", "content": "ok"}]}
    [reply] = asyncio.run(post_seq(openai_server.base_url + CHAT, [body]))
    assert reply.status == 200


def test_require_api_key(openai_server_factory):
    server = openai_server_factory(require_api_key="sk-test-123")
    assert chat(server).status == 401
    assert chat(server, headers={"Authorization": "Bearer wrong"}).json()["error"] == {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    assert chat(server, headers={"Authorization": "Bearer sk-test-123"}).status == 200
    assert [r.headers.get("Authorization") for r in server.requests] == [
        None,
        "Bearer wrong",
        "Bearer sk-test-123",
    ]


def test_any_http_status_fault(openai_server_factory):
    codes = (400, 401, 403, 404, 422, 429, 500, 502, 503)
    server = openai_server_factory(rules=[(f"status-{c}", f"http_{c}") for c in codes], retry_after=2)
    for code in codes:
        reply = chat(server, f"status-{code}")
        assert reply.status == code, code
        assert reply.json()["error"]["message"]
    assert chat(server, "status-429").headers["Retry-After"] == "2"
    assert chat(server, "status-403").json()["error"]["type"] == "permission_error"
    assert server.fault_counts["rate_limit"] == 2 and server.fault_counts["http_403"] == 2
    with pytest.raises(ValueError, match="http_<4xx/5xx code>"):
        server.configure(rules=[("x", "http_200")])


def test_echo_key_quotes_the_authorization_header_in_error_bodies(openai_server_factory):
    server = openai_server_factory(echo_key=True, retry_after=0)
    auth = {"Authorization": "Bearer sk-echo-me"}
    for content, status in (("AUTH", 401), ("FAIL400", 400), ("FAIL500", 500), ("FAIL429", 429)):
        reply = chat(server, content, headers=auth)
        assert reply.status == status
        assert reply.json()["error"]["message"].endswith("(received Authorization: Bearer sk-echo-me)")
    assert "sk-echo-me" not in chat(server, "fine", headers=auth).text  # answers stay clean
    server.configure(require_api_key="sk-right")
    assert "Bearer sk-echo-me" in chat(server, headers=auth).json()["error"]["message"]


def test_max_tokens_cuts_the_reply_with_finish_reason_length(openai_server):
    data = chat(openai_server, "one two three four five", max_tokens=3).json()
    assert data["choices"][0]["message"]["content"] == "echo: one two"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3
    data = chat(openai_server, "one two", max_completion_tokens=3).json()
    assert data["choices"][0]["finish_reason"] == "stop"  # it fits
    events = sse_events(chat(openai_server, "one two three", stream=True, max_tokens=2).text)
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "echo: one"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


# ---- deterministic schedules ---------------------------------------------------------------------


def test_fail_first_n_in_order(openai_server_factory):
    server = openai_server_factory(fail_first_n={"rate_limit": 2, "server_error": 1}, retry_after=0)
    assert statuses(server, 5) == [429, 429, 500, 200, 200]
    server.reset()  # restarts the sequence
    assert statuses(server, 4) == [429, 429, 500, 200]


def test_schedule_is_deterministic(openai_server_factory):
    server = openai_server_factory(schedule={1: "server_error", 3: "429"})
    assert statuses(server, 5) == [200, 500, 200, 429, 200]
    server.configure(schedule=[None, None, "bad_request"])  # counts from now
    assert statuses(server, 4) == [200, 200, 400, 200]


def test_fail_rate_is_seeded(openai_server_factory):
    a = openai_server_factory(fail_rate=0.3, seed=7, fail_kinds=["rate_limit", "server_error"], retry_after=0)
    b = openai_server_factory(fail_rate=0.3, seed=7, fail_kinds="rate_limit,server_error", retry_after=0)
    c = openai_server_factory(fail_rate=0.3, seed=8, fail_kinds=["rate_limit", "server_error"], retry_after=0)
    sa, sb, sc = statuses(a, 60), statuses(b, 60), statuses(c, 60)
    assert sa == sb
    assert sa != sc
    assert set(sa) == {200, 429, 500}
    assert 5 <= sum(s != 200 for s in sa) <= 35
    a.reset()
    assert statuses(a, 60) == sa


def test_fail_rate_kind_weights(openai_server_factory):
    server = openai_server_factory(fail_rate=1.0, fail_kinds={"server_error": 1, "rate_limit": 0})
    assert statuses(server, 10) == [500] * 10


def test_fail_rate_applies_under_concurrency(openai_server_factory):
    server = openai_server_factory(fail_rate=0.5, seed=1, latency=0.01)
    replies = asyncio.run(post_many(server.base_url + CHAT, [body_for() for _ in range(60)]))
    server.wait_idle()
    failures = sum(1 for r in replies if not isinstance(r, Reply) or r.status != 200)
    assert failures == sum(server.fault_counts.values())
    assert 10 <= failures <= 50


# ---- concurrency --------------------------------------------------------------------------------


def test_latency_is_concurrent(openai_server_factory):
    server = openai_server_factory(latency=0.3)
    start = time.monotonic()
    replies = asyncio.run(post_many(server.base_url + CHAT, [body_for(str(i)) for i in range(30)]))
    elapsed = time.monotonic() - start
    assert all(r.status == 200 for r in replies)
    assert 0.3 <= elapsed < 1.5
    assert server.max_in_flight == 30
    contents = sorted(r.json()["choices"][0]["message"]["content"] for r in replies)
    assert contents == sorted(f"echo: {i}" for i in range(30))


def test_max_concurrency_rejects_overflow(openai_server_factory):
    server = openai_server_factory(latency=0.3, max_concurrency=3, retry_after=2)
    replies = asyncio.run(post_many(server.base_url + CHAT, [body_for() for _ in range(8)]))
    codes = sorted(r.status for r in replies)
    assert codes == [200] * 3 + [429] * 5
    rejected = [r for r in replies if r.status == 429]
    assert all(r.headers["Retry-After"] == "2" for r in rejected)
    assert server.max_active == 3
    assert server.fault_counts == {"concurrency_limit": 5}


def test_max_concurrency_queues(openai_server_factory):
    server = openai_server_factory(latency=0.1, max_concurrency=2, overflow="queue")
    seen_queue = []

    def watch():
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not seen_queue:
            if server.queued:
                seen_queue.append(server.queued)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.monotonic()
    replies = asyncio.run(post_many(server.base_url + CHAT, [body_for() for _ in range(6)]))
    elapsed = time.monotonic() - start
    watcher.join()
    assert all(r.status == 200 for r in replies)
    assert elapsed >= 0.3 - 0.02  # 3 waves of 2
    assert server.max_active == 2
    assert server.max_in_flight == 6
    assert seen_queue and seen_queue[0] > 0
    assert server.queued == 0 and server.active == 0


def test_raising_the_cap_releases_the_queue(openai_server_factory):
    server = openai_server_factory(latency=0.3, max_concurrency=1, overflow="queue")

    def raise_cap():
        server.wait_for_requests(5)
        server.configure(max_concurrency=None)

    t = threading.Thread(target=raise_cap)
    t.start()
    start = time.monotonic()
    replies = asyncio.run(post_many(server.base_url + CHAT, [body_for() for _ in range(5)]))
    t.join()
    assert all(r.status == 200 for r in replies)
    assert time.monotonic() - start < 1.2  # not 5 x 0.3


# ---- recording and counters ----------------------------------------------------------------------


def test_recording_and_counters(openai_server):
    before = time.time()
    chat(openai_server, "one", headers={"Authorization": "Bearer sk-abc", "X-Trace": "t1"})
    chat(openai_server, "FAIL500")
    with pytest.raises(aiohttp.ClientConnectionError):
        chat(openai_server, "FAILRESET")
    openai_server.wait_idle()
    recs = openai_server.requests
    assert [r.seq for r in recs] == [0, 1, 2]
    assert recs[0].headers["authorization"] == "Bearer sk-abc"  # case-insensitive
    assert recs[0].headers["X-Trace"] == "t1"
    assert recs[0].body == body_for("one")
    assert recs[0].last_content == "one"
    assert [r.status for r in recs] == [200, 500, 0]
    assert [r.fault for r in recs] == [None, "server_error", "reset"]
    assert before <= recs[0].arrival <= recs[1].arrival <= recs[2].arrival
    assert all(r.finished >= r.arrival for r in recs)
    assert openai_server.total_requests == 3
    assert openai_server.in_flight == 0
    assert openai_server.max_in_flight == 1
    assert openai_server.status_counts == {200: 1, 500: 1, 0: 1}
    stats = openai_server.stats()
    assert stats["total_requests"] == stats["chat_requests"] == 3
    json.dumps([r.to_json() for r in recs])  # serializable

    openai_server.reset()
    assert openai_server.requests == [] and openai_server.total_requests == 0
    assert openai_server.status_counts == {}


def test_counters_are_consistent_under_load(openai_server_factory):
    server = openai_server_factory(
        latency=0.02, fail_rate=0.2, seed=3, fail_kinds=["rate_limit", "server_error"]
    )
    replies = asyncio.run(post_many(server.base_url + CHAT, [body_for(str(i)) for i in range(200)]))
    server.wait_idle()
    assert server.total_requests == 200 == len(server.requests)
    assert sum(server.status_counts.values()) == 200
    assert server.status_counts.get(200, 0) == sum(1 for r in replies if r.status == 200)
    assert sorted(r.seq for r in server.requests) == list(range(200))
    assert 1 < server.max_in_flight <= 200


def test_record_false_keeps_counters_only(openai_server_factory):
    server = openai_server_factory(record=False)
    chat(server)
    assert server.requests == []
    assert server.total_requests == 1 and server.status_counts == {200: 1}


def test_wait_for_requests_times_out(openai_server):
    with pytest.raises(TimeoutError):
        openai_server.wait_for_requests(1, timeout=0.05)


# ---- knobs: Python API and control endpoint ---------------------------------------------------


def test_configure_validates(openai_server):
    with pytest.raises(TypeError):
        openai_server.configure(no_such_knob=1)
    with pytest.raises(ValueError):
        openai_server.configure(fail_kinds=["explode"])
    with pytest.raises(ValueError):
        openai_server.configure(fail_rate=2)
    with pytest.raises(ValueError):
        openai_server.configure(overflow="drop")
    with pytest.raises(ValueError):
        OpenAIServer(max_concurrency=0)
    cfg = openai_server.configure(latency="0.01", fail_first_n="rate_limit=1,500=2")
    assert isinstance(cfg, ServerConfig)
    assert cfg.latency == 0.01 and cfg.fail_first_n == {"rate_limit": 1, "server_error": 2}
    assert openai_server.config is cfg


def test_runtime_latency_change(openai_server):
    openai_server.configure(latency=0.25)
    start = time.monotonic()
    chat(openai_server)
    assert time.monotonic() - start >= 0.25
    openai_server.configure(latency=0)
    start = time.monotonic()
    chat(openai_server)
    assert time.monotonic() - start < 0.2


def test_control_endpoint(openai_server):
    url = openai_server.control_url

    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.post(url, json={"fail_first_n": {"server_error": 1}, "latency": 0.01}) as r:
                assert r.status == 200
                config = (await r.json())["config"]
            first = await apost(s, openai_server.base_url + CHAT, body_for())
            second = await apost(s, openai_server.base_url + CHAT, body_for())
            async with s.get(url) as r:
                state = await r.json()
            async with s.get(url + "/requests") as r:
                recorded = await r.json()
            async with s.post(url, json={"bogus": 1}) as r:
                bad = r.status, await r.json()
            async with s.post(url, json={"reset": True}) as r:
                after_reset = (await r.json())["stats"]
            return config, first, second, state, recorded, bad, after_reset

    config, first, second, state, recorded, bad, after_reset = asyncio.run(go())
    assert config["fail_first_n"] == {"server_error": 1} and config["latency"] == 0.01
    assert (first.status, second.status) == (500, 200)
    assert state["stats"]["status_counts"] == {"500": 1, "200": 1}
    assert state["stats"]["total_requests"] == 2
    assert [r["status"] for r in recorded] == [500, 200]
    assert recorded[0]["body"]["messages"][0]["content"] == "hello world"
    assert bad[0] == 400 and "bogus" in bad[1]["error"]["message"]
    assert after_reset["total_requests"] == 0
    assert openai_server.config.latency == 0.01  # the same server object


# ---- lifecycle -----------------------------------------------------------------------------------


def test_context_manager_and_stop_with_a_request_in_flight():
    with OpenAIServer(timeout_delay=30) as server:
        base = server.base_url
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        result: list[Any] = []
        t = threading.Thread(target=lambda: result.append(_try_chat(server, "FAILTIMEOUT", 60)))
        t.start()
        server.wait_for_requests(1)
        start = time.monotonic()
    assert time.monotonic() - start < 3  # stop() cut the 30 s request off
    t.join(10)
    assert isinstance(result[0], aiohttp.ClientError)
    server.stop()  # idempotent
    assert isinstance(_try_chat(server, "x", 2), aiohttp.ClientConnectionError)


def _try_chat(server: OpenAIServer, content: str, timeout: float) -> Any:
    try:
        return chat(server, content, timeout=timeout)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return exc


def test_async_start_on_the_callers_loop():
    async def go():
        async with OpenAIServer() as server:
            async with aiohttp.ClientSession() as s:
                reply = await apost(s, server.base_url + CHAT, body_for("inside"))
        return reply

    assert asyncio.run(go()).json()["choices"][0]["message"]["content"] == "echo: inside"


def test_two_servers_get_different_ports(openai_server_factory):
    a, b = openai_server_factory(), openai_server_factory()
    assert a.port != b.port


def test_count_tokens():
    assert count_tokens("  a b\n c  ") == 3 and count_tokens("") == 0


# ---- separate process ----------------------------------------------------------------------------


@pytest.mark.slow
def test_subprocess_prints_ready_and_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--port", "0", "--latency", "0.05"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    try:
        line = _read_ready(proc, 30)
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        start = time.monotonic()
        [reply] = asyncio.run(post_seq(url + CHAT, [body_for("from afar")]))
        assert time.monotonic() - start >= 0.05
        assert reply.json()["choices"][0]["message"]["content"] == "echo: from afar"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        proc.stdout.close()


@pytest.mark.slow
def test_server_process_helper(openai_server_process_factory):
    proc = openai_server_process_factory(fail_first_n={"rate_limit": 1}, retry_after=0.5, require_api_key="k")
    auth = {"Authorization": "Bearer k"}
    replies = asyncio.run(post_seq(proc.base_url + CHAT, [body_for(), body_for()], headers=auth))
    assert [r.status for r in replies] == [429, 200]
    assert replies[0].headers["Retry-After"] == "0.5"
    proc.configure(schedule={0: "server_error"})
    [reply] = asyncio.run(post_seq(proc.base_url + CHAT, [body_for()], headers=auth))
    assert reply.status == 500
    stats = proc.stats()
    assert stats["total_requests"] == 3 and stats["status_counts"] == {"429": 1, "200": 1, "500": 1}
    assert proc.requests()[0]["headers"]["Authorization"] == "Bearer k"
    proc.reset()
    assert proc.stats()["total_requests"] == 0
    assert proc.stop() == 0
