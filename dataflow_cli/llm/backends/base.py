"""The backend contract.

A backend turns `Request`s into `Completion`s. API backends implement `complete` (one request;
the engine supplies concurrency, rate limits, retries and caching around it). In-process
engines that are fastest on whole batches (vllm, local llama.cpp) set `batched = True` and
implement `complete_batch`, returning a Completion or an LLMError per request, in order.

A backend raises or returns `LLMError` with a kind (see `types.py`), never a bare exception,
and never puts secrets (API keys) into messages. A key it reads is registered with
`dataflow_cli.redact`, so a server quoting it back is masked wherever the text ends up.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli import redact
from dataflow_cli.cost.prices import Price
from dataflow_cli.llm.types import Completion, LLMError, Request


class BackendConfig(BaseModel):
    """Settings every backend accepts under `backends.<name>` in a spec.

    Provider-specific settings are declared by each backend's own `Config` subclass.
    """

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(description="Backend type: litellm, openai, vllm, local or fake.")
    model: str = Field("", description="Model name as the provider knows it.")
    max_concurrency: int = Field(16, ge=1, le=4096, description="Requests in flight at once.")
    rpm: float | None = Field(
        None, gt=0, description="Requests per minute (shared by every stage on this backend)."
    )
    tpm: float | None = Field(None, gt=0, description="Tokens per minute (prompt + completion).")
    timeout: float = Field(60.0, gt=0, description="Seconds before one request times out.")
    max_retries: int = Field(
        6, ge=0, le=100, description="Retries of a transient failure (429, 5xx, timeout)."
    )
    backoff: float = Field(
        0.5, ge=0, description="First retry delay in seconds; doubles each retry, with jitter."
    )
    max_backoff: float = Field(30.0, ge=0, description="Longest delay between retries.")
    cache: bool = Field(True, description="Store completions in the request cache and reuse them.")
    price: Price | None = Field(
        None,
        description="USD per million tokens, e.g. {input_per_mtok: 0.15, output_per_mtok: 0.6}; "
        "wins over litellm's price map (used for budgets, stats and `dataflow estimate`).",
    )


class Backend:
    """Base class of backends. Subclasses set `provider`, maybe `Config`, and implement one method."""

    provider: ClassVar[str] = ""
    batched: ClassVar[bool] = False
    Config: ClassVar[type[BackendConfig]] = BackendConfig

    def __init__(self, config: BackendConfig):
        if not isinstance(config, self.Config):  # e.g. a plain BackendConfig built in Python
            config = self.Config.model_validate(config.model_dump(exclude_unset=True))
        self.config = config
        # The spec's price, or one the executor looks up in litellm's map (`cost.prices`).
        self.price: Price | None = config.price
        redact.add_config(config)  # whatever a server echoes back is masked where people see it

    def identity(self) -> str:
        """What the cache key and stage fingerprint use to tell models apart."""
        return f"{self.provider}:{self.config.model}"

    async def complete(self, request: Request) -> Completion:
        raise NotImplementedError

    async def complete_batch(self, requests: list[Request]) -> list[Completion | LLMError]:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections, processes or models."""

    def cost(self, completion: Completion) -> float | None:
        """USD for one answer, None when the price is unknown (never a made-up 0)."""
        if self.price is None:
            return None
        return self.price.cost(completion.prompt_tokens, completion.completion_tokens)


class InProcessBackend(Backend):
    """A model running in this process (llama.cpp, vLLM): fastest on whole batches, and not safe
    to call from several threads. Subclasses implement `_run(requests)`, which executes in a
    worker thread, one batch at a time, and returns a Completion or LLMError per request."""

    batched = True

    def _run(self, requests: list[Request]) -> list[Completion | LLMError]:
        raise NotImplementedError

    async def complete_batch(self, requests: list[Request]) -> list[Completion | LLMError]:
        import asyncio

        if not requests:
            return []
        return await asyncio.to_thread(self._run, list(requests))

    async def complete(self, request: Request) -> Completion:
        (result,) = await self.complete_batch([request])
        if isinstance(result, LLMError):
            raise result
        return result


def config_fields(config: BackendConfig) -> dict[str, Any]:
    """The config without secrets, for fingerprints and the run directory."""
    return {k: v for k, v in config.model_dump().items() if "key" not in k.lower()}
