"""LiteLLMBackend against a real local HTTP server speaking the OpenAI chat-completions protocol."""

from __future__ import annotations

import asyncio
import json
import traceback

import pytest

from dataflow_cli.errors import DataflowError
from dataflow_cli.llm.backends.base import BackendConfig
from dataflow_cli.llm.types import LLMError, Request, Sampling
from tests.support.openai_server import OpenAIServer

pytest.importorskip("litellm")

from dataflow_cli.llm.backends.litellm import LiteLLMBackend, LiteLLMConfig, strict_compatible  # noqa: E402

KEY_ENV = "DATAFLOW_TEST_LITELLM_KEY"
SECRET = "sk-test-SECRET-4f9c2a7d"
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["answer", "score"],
    "additionalProperties": False,
}


# A request whose text holds `status-<code>` is answered with that HTTP status (error bodies
# quote the Authorization header back, as some providers do); `slow` never answers in time.
STATUSES = (400, 401, 403, 404, 422, 429, 500, 502, 503)
RULES = [(f"status-{code}", f"http_{code}") for code in STATUSES] + [("slow", "timeout")]


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(rules=RULES, echo_key=True, retry_after=7, timeout_delay=3) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


def backend(server, **extra) -> LiteLLMBackend:
    config = LiteLLMConfig(
        provider="litellm",
        model="openai/mini",
        api_base=server.base_url,
        api_key_env=KEY_ENV,
        **({"timeout": 1.0} | extra),
    )
    return LiteLLMBackend(config)


def request(text: str = "hello world", **kw) -> Request:
    return Request(messages=({"role": "user", "content": text},), **kw)


def fail(server, text: str, **extra) -> LLMError:
    with pytest.raises(LLMError) as info:
        asyncio.run(backend(server, **extra).complete(request(text)))
    err = info.value
    rendered = "".join(traceback.format_exception(err))
    assert SECRET not in rendered and SECRET not in err.message and SECRET not in err.reason()
    return err


def test_success_with_usage_and_sampling(server):
    server.reset()
    sampling = Sampling(temperature=0.3, max_tokens=17, top_p=0.9, seed=5, stop=("\n\n",))
    done = asyncio.run(backend(server).complete(request("hello world", sampling=sampling)))
    assert done.text == "echo: hello world"
    assert done.prompt_tokens == 2 and done.completion_tokens == 3  # the server counts words
    assert done.finish_reason == "stop"
    assert done.cost is None  # a local model has no price
    sent = server.requests[-1]
    body = sent.body
    assert body["model"] == "mini"
    assert body["messages"] == [{"role": "user", "content": "hello world"}]
    assert (body["temperature"], body["max_tokens"], body["top_p"], body["seed"]) == (0.3, 17, 0.9, 5)
    assert body["stop"] == ["\n\n"]
    assert "response_format" not in body
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"


def test_an_answer_cut_off_by_max_tokens_finishes_with_length(server):
    sampling = Sampling(max_tokens=2)
    done = asyncio.run(backend(server).complete(request("one two three", sampling=sampling)))
    assert (done.text, done.finish_reason) == ("echo: one", "length")


def test_json_schema_falls_back_to_json_object_for_unknown_models(server):
    server.reset()
    done = asyncio.run(backend(server).complete(request(json_schema=SCHEMA)))
    assert json.loads(done.text) == {"echo": "hello world"}  # the server's JSON-mode answer
    assert server.requests[-1].body["response_format"] == {"type": "json_object"}


def test_json_schema_native_when_asked(server):
    server.reset()
    done = asyncio.run(backend(server, structured_output="json_schema").complete(request(json_schema=SCHEMA)))
    assert json.loads(done.text) == {"answer": "", "score": 0}  # a minimal document of the schema
    assert server.requests[-1].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }


def test_strict_only_for_closed_schemas():
    assert strict_compatible(SCHEMA)
    assert not strict_compatible({"type": "object", "properties": {"a": {"type": "string"}}})
    assert not strict_compatible(SCHEMA | {"required": ["answer"]})
    nested = SCHEMA | {
        "properties": {"answer": {"type": "object", "properties": {}}, "score": {"type": "integer"}}
    }
    assert not strict_compatible(nested)


def test_extra_is_passed_through(server):
    server.reset()
    extra = {"frequency_penalty": 0.5, "extra_body": {"top_k": 5}}
    asyncio.run(backend(server, extra=extra).complete(request()))
    body = server.requests[-1].body
    assert body["frequency_penalty"] == 0.5 and body["top_k"] == 5


def test_rate_limit_with_retry_after(server):
    server.reset()
    err = fail(server, "status-429")
    assert err.kind == "rate_limit" and err.status == 429 and err.retry_after == 7.0
    assert err.retryable
    assert server.total_requests == 1  # litellm's own retries are off; the engine retries


def test_unauthorized_is_auth_and_redacts_the_echoed_key(server):
    err = fail(server, "status-401")
    assert err.kind == "auth" and err.status == 401
    assert "received Authorization: Bearer ***" in err.message  # the server echoed the key


def test_forbidden_is_auth(server):
    assert fail(server, "status-403").kind == "auth"


def test_bad_request(server):
    err = fail(server, "status-400")
    assert err.kind == "bad_request" and err.status == 400 and not err.retryable


def test_unprocessable_is_bad_request(server):
    assert fail(server, "status-422").kind == "bad_request"


def test_not_found(server):
    assert fail(server, "status-404").kind == "not_found"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(server, status):
    err = fail(server, f"status-{status}")
    assert err.kind == "server" and err.retryable


def test_timeout(server):
    err = fail(server, "slow", timeout=0.3)
    assert err.kind == "timeout" and err.retryable


def test_connection_refused(server):
    with OpenAIServer() as other:
        dead = other.base_url
    config = LiteLLMConfig(
        provider="litellm", model="openai/mini", api_base=dead, api_key_env=KEY_ENV, timeout=2
    )
    with pytest.raises(LLMError) as info:
        asyncio.run(LiteLLMBackend(config).complete(request()))
    assert info.value.kind == "connection" and info.value.retryable


def test_missing_key_env_names_the_variable(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    server.reset()
    err = fail(server, "hello")
    assert err.kind == "auth"
    assert KEY_ENV in err.message
    assert server.total_requests == 0  # nothing was sent


def test_no_key_needed_for_local_servers(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = LiteLLMConfig(provider="litellm", model="openai/mini", api_base=server.base_url)
    assert asyncio.run(LiteLLMBackend(config).complete(request("hi"))).text == "echo: hi"


def test_concurrent_requests(server):
    async def main():
        be = backend(server)
        return await asyncio.gather(*(be.complete(request(f"n{i}")) for i in range(20)))

    done = asyncio.run(main())
    assert [c.text for c in done] == [f"echo: n{i}" for i in range(20)]


def test_config_is_strict_and_accepts_base_config():
    with pytest.raises(ValueError):
        LiteLLMConfig(provider="litellm", model="x", api_kee_env="X")
    be = LiteLLMBackend(BackendConfig(provider="litellm", model="openai/x"))
    assert isinstance(be.config, LiteLLMConfig) and be.identity() == "litellm:openai/x"


def test_missing_package_is_a_dataflow_error(monkeypatch):
    import dataflow_cli.llm.backends.litellm as mod

    monkeypatch.setattr(mod, "_LITELLM", None)
    monkeypatch.setattr(mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataflowError) as info:
        LiteLLMBackend(LiteLLMConfig(provider="litellm", model="openai/x"))
    assert "dataflow-cli[litellm]" in (info.value.hint or "")
