"""VLLMBackend on the real vLLM engine with a small model (SmolLM2-135M by default).

Run through `make test-vllm`; the model directory comes from DATAFLOW_VLLM_MODEL (safetensors:
vLLM cannot read GGUF). The model is tiny: assert shape and schema, never correctness.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from dataflow_cli.llm.types import Completion, Request, Sampling

pytest.importorskip("vllm")

from dataflow_cli.llm.backends.vllm import VLLMBackend, VLLMConfig  # noqa: E402

MODEL = os.environ.get("DATAFLOW_VLLM_MODEL") or str(
    Path(__file__).resolve().parents[2] / ".cache/smollm2-safetensors"
)
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
    if not Path(MODEL).exists():
        pytest.skip(f"no model at {MODEL} (scripts/setup_vllm_cpu.sh converts SmolLM2)")
    be = VLLMBackend(
        VLLMConfig(
            provider="vllm",
            model=MODEL,
            enforce_eager=True,
            max_model_len=1024,
            dtype=os.environ.get("DATAFLOW_VLLM_DTYPE", "auto"),
            seed=0,
        )
    )
    yield be
    asyncio.run(be.aclose())


def ask(text: str, **kw) -> Request:
    return Request(messages=({"role": "user", "content": text},), sampling=kw.pop("sampling", FAST), **kw)


def test_plain_chat_answer(backend):
    (done,) = asyncio.run(backend.complete_batch([ask("Say hello in one short sentence.")]))
    assert isinstance(done, Completion), done
    assert done.text.strip()
    assert done.prompt_tokens > 0 and 0 < done.completion_tokens <= 24
    assert done.finish_reason in ("stop", "length")


def test_json_schema_answer_is_valid_json(backend):
    import jsonschema

    request = ask(
        "Classify the sentiment of: 'What a lovely day, said nobody ever.' Answer in JSON.",
        json_schema=SCHEMA,
        sampling=Sampling(temperature=0.0, max_tokens=48, seed=7),
    )
    (done,) = asyncio.run(backend.complete_batch([request]))
    assert isinstance(done, Completion), done
    jsonschema.validate(json.loads(done.text), SCHEMA)


def test_batch_of_three_in_order(backend):
    requests = [ask(f"Write the number {n} in words.") for n in (1, 2, 3)]
    results = asyncio.run(backend.complete_batch(requests))
    assert len(results) == 3 and all(isinstance(r, Completion) and r.text.strip() for r in results), results
    (alone,) = asyncio.run(backend.complete_batch([requests[1]]))
    assert alone.text == results[1].text  # greedy: the same request gives the same answer in any batch
