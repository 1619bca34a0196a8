"""`openai`: a lean async client for any OpenAI-compatible chat-completions server
(OpenAI, `vllm serve`, SGLang, llama.cpp's server, ...).

It exists beside `litellm` because per-request client CPU decides throughput on fast local
servers: this path is one HTTP/1.1 POST on a kept-alive connection (`http1`) and one JSON parse
per request.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from pydantic import Field, field_validator

from dataflow_cli import redact
from dataflow_cli.llm.backends.base import Backend, BackendConfig
from dataflow_cli.llm.backends.http1 import HTTPError, Origin, header_problem, url_problem
from dataflow_cli.llm.types import Completion, LLMError, Request, chat_completion, parse_retry_after


class OpenAIConfig(BackendConfig):
    api_base: str = Field("https://api.openai.com/v1", description="Base URL, up to and including `/v1`.")
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key (never the key itself)."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Extra fields merged into each request."
    )
    json_mode: str = Field(
        "json_schema",
        description="How to ask for JSON when a stage declares a schema: json_schema, json_object or none.",
    )

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, api_base: str) -> str:
        problem = url_problem(api_base)
        if problem is not None:
            raise ValueError(problem)
        return api_base

    @field_validator("headers")
    @classmethod
    def _sendable(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            problem = header_problem(name, value)
            if problem is not None:
                raise ValueError(problem)
        return headers


class OpenAIBackend(Backend):
    provider = "openai"
    Config = OpenAIConfig

    def __init__(self, config: OpenAIConfig):
        super().__init__(config)
        self.config: OpenAIConfig  # coerced by Backend.__init__
        self._url = config.api_base.rstrip("/") + "/chat/completions"
        self._origin: Origin | None = None  # connections of the event loop below
        self._loop: asyncio.AbstractEventLoop | None = None
        self._headers_for: tuple[str | None, dict[str, str]] | None = None  # (key, headers)
        # The body's JSON after the messages, per sampling (a stage has one), when no field of
        # `extra_body` replaces the model or the messages.
        self._tails: dict[str, bytes] = {}
        self._plain = not {"model", "messages"} & set(config.extra_body)
        self._model_json = ('{"model":' + json.dumps(config.model) + ',"messages":').encode()

    def identity(self) -> str:
        return f"openai:{self.config.api_base.rstrip('/')}:{self.config.model}"

    def _headers(self) -> dict[str, str]:
        # The key is read at call time (it may change while a run goes on); the headers are
        # built again only when it does.
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if self._headers_for is not None and self._headers_for[0] == key:
            return self._headers_for[1]
        headers = {"Content-Type": "application/json", **self.config.headers}
        if self.config.api_key_env:
            if not key:
                raise LLMError("auth", f"environment variable `{self.config.api_key_env}` is not set")
            redact.add(key)
            if header_problem("Authorization", key) is not None:
                raise LLMError("auth", f"the key in `{self.config.api_key_env}` contains a line break")
            headers["Authorization"] = f"Bearer {key}"
        self._headers_for = (key, headers)
        return headers

    def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.config.model, "messages": list(request.messages)}
        body.update(request.sampling.as_dict())
        if request.json_schema is not None and self.config.json_mode != "none":
            if self.config.json_mode == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": request.json_schema, "strict": True},
                }
            else:
                body["response_format"] = {"type": "json_object"}
        body.update(self.config.extra_body)
        return body

    def encode(self, request: Request) -> bytes:
        """The request body: the JSON of `_body(request)` (the fields in another order)."""
        if request.json_schema is not None or not self._plain:
            return json.dumps(self._body(request)).encode()
        sampling = request.sampling._parts()[1]  # its JSON: tells 0 from 0.0, unlike equality
        tail = self._tails.get(sampling)
        if tail is None:
            rest = {**request.sampling.as_dict(), **self.config.extra_body}
            tail = self._tails[sampling] = ("," + json.dumps(rest)[1:] if rest else "}").encode()
        return self._model_json + json.dumps(list(request.messages)).encode() + tail

    async def complete(self, request: Request) -> Completion:
        body = self.encode(request)
        headers = self._headers()
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._origin is None:  # connections belong to one loop
            self._origin, self._loop = Origin(self._url, self.config.timeout), loop
        try:
            response = await self._origin.post(body, headers)
        except HTTPError as exc:
            # A malformed answer is a server hiccup: retried like a 5xx.
            raise LLMError("server" if exc.kind == "protocol" else exc.kind, exc.message) from None
        if response.status != 200:
            raise LLMError.from_status(
                response.status,
                error_message(response.body, response.status),
                parse_retry_after(response.retry_after),
            )
        return parse_completion(response.body)

    async def aclose(self) -> None:
        if self._origin is not None:
            self._origin.close()
        self._origin = self._loop = None


def error_message(raw: bytes, status: int) -> str:
    try:
        error = json.loads(raw).get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}"


def parse_completion(raw: bytes) -> Completion:
    try:
        payload = json.loads(raw)
    except ValueError:
        # A truncated or garbled body is a server hiccup: retry it like a 5xx.
        raise LLMError("server", f"malformed response body: {raw[:120]!r}") from None
    answer = chat_completion(payload)
    if isinstance(answer, LLMError):
        raise answer
    return answer
