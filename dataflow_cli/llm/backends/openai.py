"""`openai`: a lean async client for any OpenAI-compatible chat-completions server
(OpenAI, `vllm serve`, SGLang, llama.cpp's server, ...).

It exists beside `litellm` because per-request client CPU decides throughput on fast local
servers: this path is one aiohttp POST and one JSON parse per request. At high concurrency the
calls run in a process of their own (see `http_process`), on a core the engine does not use.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from pydantic import Field

from dataflow_cli import redact
from dataflow_cli.llm.backends.base import Backend, BackendConfig
from dataflow_cli.llm.backends.http_process import HTTPProcess, make_session, post
from dataflow_cli.llm.types import Completion, LLMError, Request

log = logging.getLogger(__name__)

# Separate HTTP processes pay off when the client's CPU can limit throughput: many calls in
# flight at once (at 50 ms a call, 64 of them are ~1,300 calls/s, a quarter of a core in
# aiohttp). A Ray actor keeps at most 64 in flight, so it makes its calls itself.
PROCESS_CONCURRENCY = 64  # calls in flight per HTTP process
STARTUP_CONCURRENCY = 128  # calls in flight in this process while the HTTP processes start


def http_processes(max_concurrency: int) -> int:
    """How many processes make a backend's calls (0: this one): one per 64 calls in flight
    beyond 64, at most one per core. `DATAFLOW_HTTP_PROCESS=N` sets the number (0 keeps the
    calls in this process)."""
    setting = os.environ.get("DATAFLOW_HTTP_PROCESS", "")
    if setting.isdigit():
        return int(setting)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if cores < 2 or max_concurrency <= PROCESS_CONCURRENCY:
        return 0
    return min(cores, -(-max_concurrency // PROCESS_CONCURRENCY))


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
        self._startup_session = None
        self._url = config.api_base.rstrip("/") + "/chat/completions"
        self._headers_for: tuple[str | None, dict[str, str]] | None = None  # (key, headers)
        self._process_count = http_processes(config.max_concurrency)
        self._processes: list[HTTPProcess] | None = None  # started at the first call
        self._ready: list[HTTPProcess] = []  # those that answer calls
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
            headers["Authorization"] = f"Bearer {key}"
        self._headers_for = (key, headers)
        return headers

    def _session_for_loop(self):
        if self._processes and any(process.dead is None for process in self._processes):
            # Only until the HTTP processes are ready (a few hundred ms): opening hundreds of
            # connections here would take the CPU they need to start.
            if self._startup_session is None:
                limit = min(self.config.max_concurrency, STARTUP_CONCURRENCY)
                self._startup_session = make_session(limit, self.config.timeout)
            return self._startup_session
        if self._session is None or self._session.closed:
            self._session = make_session(self.config.max_concurrency, self.config.timeout)
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

    async def _start_processes(self) -> None:
        """Start the HTTP processes (a run answered from the cache never needs them)."""
        self._processes = []
        count = self._process_count
        if not count:
            return
        limit = -(-self.config.max_concurrency // count)
        try:
            self._processes = await HTTPProcess.start(
                count, self._url, limit, self.config.timeout, on_ready=self._ready.append
            )
        except OSError as exc:
            log.warning("cannot start HTTP processes (%s); calls stay in this process", exc)

    async def complete(self, request: Request) -> Completion:
        body = self.encode(request)
        headers = self._headers()
        if self._processes is None:
            await self._start_processes()
        ready = self._ready
        if ready:
            # The process with the fewest calls in flight. A dead one raises: the run stops.
            process = ready[0] if len(ready) == 1 else min(ready, key=HTTPProcess.load)
            return await process.post(body, headers)
        # In this process: no HTTP process wanted, or none is ready yet.
        return await post(self._session_for_loop(), self._url, body, headers, self.config.timeout)

    async def aclose(self) -> None:
        processes, self._processes, self._ready = self._processes or [], None, []
        for process in processes:
            process.close()
        for process in processes:
            await process.wait()
        for session in (self._session, self._startup_session):
            if session is not None and not session.closed:
                await session.close()
        self._session = self._startup_session = None
