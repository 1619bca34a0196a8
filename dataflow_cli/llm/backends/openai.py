"""`openai`: a lean async client for any OpenAI-compatible chat-completions server
(OpenAI, `vllm serve`, SGLang, llama.cpp's server, ...).

It exists beside `litellm` because per-request client CPU decides throughput on fast local
servers: this path is one aiohttp POST and one JSON parse per request.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from pydantic import Field

from dataflow_cli import redact
from dataflow_cli.llm.backends.base import Backend, BackendConfig
from dataflow_cli.llm.types import Completion, LLMError, Request, parse_retry_after


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


class OpenAIBackend(Backend):
    provider = "openai"
    Config = OpenAIConfig

    def __init__(self, config: OpenAIConfig):
        super().__init__(config)
        self.config: OpenAIConfig  # coerced by Backend.__init__
        self._session = None
        self._url = config.api_base.rstrip("/") + "/chat/completions"
        self._headers_for: tuple[str | None, dict[str, str]] | None = None  # (key, headers)

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
            headers["Authorization"] = f"Bearer {key}"
        self._headers_for = (key, headers)
        return headers

    def _session_for_loop(self):
        import aiohttp

        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.config.max_concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                json_serialize=json.dumps,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),  # one object, not one per call
            )
        return self._session

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

    async def complete(self, request: Request) -> Completion:
        import aiohttp

        session = self._session_for_loop()
        try:
            async with session.post(self._url, json=self._body(request), headers=self._headers()) as response:
                raw = await response.read()
                if response.status != 200:
                    raise LLMError.from_status(
                        response.status,
                        _error_message(raw, response.status),
                        parse_retry_after(response.headers.get("Retry-After")),
                    )
        except LLMError:
            raise
        except asyncio.TimeoutError:
            raise LLMError("timeout", f"no answer within {self.config.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise LLMError("connection", f"{type(exc).__name__}: {exc}") from None
        return _parse_completion(raw)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _error_message(raw: bytes, status: int) -> str:
    try:
        error = json.loads(raw).get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}"


def _parse_completion(raw: bytes) -> Completion:
    try:
        payload = json.loads(raw)
        choice = payload["choices"][0]
        text = choice["message"]["content"]
        usage = payload.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        # A truncated or garbled body is a server hiccup: retry it like a 5xx.
        raise LLMError("server", f"malformed response body: {raw[:120]!r}") from None
    if text is None:
        raise LLMError("server", "response has no message content")
    return Completion(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
    )
