"""`fake`: a deterministic, scriptable backend for tests, offline demos and dry runs.

In a spec:

    backends:
      default:
        provider: fake
        replies: ["first answer", "second answer"]   # cycled; or:
        reply_template: "echo: {{ prompt }}"          # Jinja over the last user message
        failures: [{match: "FAIL", kind: server, status: 500, times: 2}]

With a JSON schema on the request and no scripted reply, it answers with a minimal object that
satisfies the schema. In Python, `FakeBackend.scripted(fn)` answers with `fn(request)` (a str,
a Completion or an LLMError to raise). Every request is recorded in `history`.

Tokens are whitespace-separated words. Like a real model, a reply longer than the request's
`max_tokens` is cut there and finishes with `length` (so `max_tokens: 2` on a stage scripts a
truncated answer); other replies finish with `stop`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.llm.backends.base import Backend, BackendConfig
from dataflow_cli.llm.types import Completion, LLMError, Request


class FakeFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str = Field("", description="Fail requests whose last user message contains this text.")
    kind: str = Field("server", description="LLMError kind to raise.")
    status: int | None = Field(None, description="HTTP status to report.")
    times: int | None = Field(
        None, description="Fail only this many times per distinct prompt (None = always)."
    )
    retry_after: float | None = Field(None, description="Retry-After seconds to report.")


class FakeConfig(BackendConfig):
    model: str = Field("fake", description="Model name (only used in cache keys).")
    replies: list[str] = Field(default_factory=list, description="Replies, cycled in request order.")
    reply_template: str | None = Field(None, description="Jinja template over `prompt` (last user message).")
    failures: list[FakeFailure] = Field(default_factory=list, description="Injected failures.")
    latency: float = Field(0.0, ge=0, description="Seconds to wait per request.")


class FakeBackend(Backend):
    provider = "fake"
    Config = FakeConfig

    def __init__(self, config: FakeConfig | None = None, script: Callable[[Request], Any] | None = None):
        super().__init__(config or FakeConfig(provider="fake"))
        self.config: FakeConfig
        self.script = script
        self.history: list[Request] = []
        self._lock = threading.Lock()
        self._count = 0
        self._failed: dict[tuple[int, str], int] = {}

    def identity(self) -> str:
        # Differently scripted fakes answer differently: they must not share cache entries.
        digest = hashlib.sha256(self.config.model_dump_json().encode()).hexdigest()[:12]
        script = f":{id(self.script)}" if self.script is not None else ""
        return f"fake:{self.config.model}:{digest}{script}"

    @classmethod
    def scripted(cls, fn: Callable[[Request], Any], **config: Any) -> FakeBackend:
        return cls(FakeConfig(provider="fake", **config), script=fn)

    async def complete(self, request: Request) -> Completion:
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        with self._lock:
            self.history.append(request)
            index = self._count
            self._count += 1
        prompt = _last_user(request)
        self._maybe_fail(prompt)
        if self.script is not None:
            answer = self.script(request)
            if isinstance(answer, LLMError):
                raise answer
            completion = answer if isinstance(answer, Completion) else Completion(str(answer))
        elif self.config.replies:
            completion = Completion(self.config.replies[index % len(self.config.replies)])
        elif self.config.reply_template is not None:
            from dataflow_cli.prompts import compile_template

            completion = Completion(
                compile_template(self.config.reply_template).render(prompt=prompt, index=index)
            )
        elif request.json_schema is not None:
            completion = Completion(json.dumps(example_for_schema(request.json_schema)))
        else:
            completion = Completion(f"fake reply to: {prompt}")
        if completion.finish_reason is None:
            completion.text, completion.finish_reason = _limit_tokens(
                completion.text, request.sampling.max_tokens
            )
        completion.prompt_tokens = completion.prompt_tokens or sum(
            len((m.get("content") or "").split()) for m in request.messages
        )
        completion.completion_tokens = completion.completion_tokens or len(completion.text.split())
        return completion

    def _maybe_fail(self, prompt: str) -> None:
        for number, failure in enumerate(self.config.failures):
            if failure.match not in prompt:
                continue
            with self._lock:
                seen = self._failed.get((number, prompt), 0)
                if failure.times is not None and seen >= failure.times:
                    continue
                self._failed[(number, prompt)] = seen + 1
            raise LLMError(
                failure.kind,
                f"injected {failure.kind}",
                status=failure.status,
                retry_after=failure.retry_after,
            )


def _limit_tokens(text: str, max_tokens: int | None) -> tuple[str, str]:
    """The text cut to `max_tokens` words, and its finish reason."""
    if max_tokens is None:
        return text, "stop"
    words = re.findall(r"\s*\S+", text)
    if len(words) <= max_tokens:
        return text, "stop"
    return "".join(words[:max_tokens]), "length"


def _last_user(request: Request) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return message.get("content") or ""
    return ""


def example_for_schema(schema: dict[str, Any]) -> Any:
    """A small value satisfying simple JSON Schemas (objects, arrays, enums, scalars)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: example_for_schema(sub) for name, sub in props.items()}
    if kind == "array":
        return [example_for_schema(schema.get("items", {}))] * max(1, schema.get("minItems", 1))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x" * max(1, schema.get("minLength", 1))
