"""A real OpenAI-compatible HTTP server for tests and benchmarks.

It speaks the chat-completions protocol over loopback TCP (aiohttp), so a client under test goes
through real sockets, HTTP/1.1 keep-alive, JSON and SSE parsing, timeouts and connection errors.

Two ways to run it:

* In-process, on a background thread with its own event loop (synchronous tests can use it)::

      with OpenAIServer(latency=0.05) as server:
          client = SomeClient(base_url=server.base_url)   # http://127.0.0.1:PORT/v1
          ...
          assert server.max_in_flight <= 16

* As a separate process (a benchmark can put it on another core)::

      python -m tests.support.openai_server --port 0 --latency 0.05 --cpu 1
      # prints: READY http://127.0.0.1:PORT/v1

  or from Python with `OpenAIServerProcess(latency=0.05, cpu=1)`; it is controlled through
  `POST /control` and observed through `GET /control`.

Endpoints: `POST /v1/chat/completions` (JSON, or SSE with `"stream": true`), `GET /v1/models`,
`GET|POST /control` (knobs and counters), `GET /control/requests` (the recording), and the Batch
API: `POST /v1/files` (multipart, `purpose=batch`), `GET /v1/files/{id}`, `GET /v1/files/{id}/content`,
`POST /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`.

Batches: a job is `validating` for its first 10% of `batch_seconds`, then `in_progress`, then
`completed` (the status is worked out at each GET, so `configure(batch_seconds=...)` speeds up or
holds back jobs already submitted). On completion every input line is answered like a chat request
(responder, content `rules`, `max_tokens`); a 200 goes to the output file, any other status to the
error file, both as `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`.
A line that is not a valid request gets `"error": {"code", "message"}`. An input file with a
duplicate `custom_id` or a line for another endpoint makes the job `failed` with `errors.data`.
`batch_status` forces a terminal status (`failed`, `expired`, `cancelled`) on every job.

The reply is deterministic: `"echo: " + <last user message>`, or, when the request asks for
`response_format` `json_schema`, a minimal JSON document satisfying the schema (see
`example_from_schema`). A `responder(request_json) -> str` callable replaces this; it may raise
`Fault(kind)` to fail one request.

Faults (kinds in `FAULT_KINDS`) are chosen for each chat request, first match wins:

1. `require_api_key` set and the `Authorization: Bearer <key>` header missing or wrong -> 401;
2. `max_concurrency` reached: 429 with Retry-After (`overflow="reject"`) or wait (`"queue"`);
3. `rules`: the last message's content contains a substring -> that kind
   (defaults: `DEFAULT_RULES`, e.g. "FAIL500" -> 500, "AUTH" -> 401);
4. `schedule`: {n: kind} for the n-th chat request (0-based) since the schedule was set;
5. `fail_first_n`: {kind: n}, the next n requests get that kind (kinds in the given order);
6. `fail_rate`: with this probability (seeded RNG), a kind drawn from the `fail_kinds` weights.

Besides the kinds in `FAULT_KINDS`, `http_<code>` (or just `"<code>"`) answers with any 4xx/5xx
status and an OpenAI-style error body (e.g. `http_403`, `http_422`, `http_503`); codes with a kind
of their own map to it (`http_429` is `rate_limit`, `http_500` is `server_error`).

`rate_limit`, `auth`, `bad_request` and `http_<code>` answer at once (a gateway rejects before the
model runs); `server_error`, `malformed` and `reset` answer after `latency`; `timeout` sleeps
`timeout_delay` then answers normally; `slow_stream` sends the answer in chunks
`slow_stream_delay` apart. With `echo_key=True` every error body quotes the request's
`Authorization` header back (as some proxies do), so tests can check that clients redact it.

`max_tokens` (or `max_completion_tokens`) is honoured like a real server: a longer reply is cut
to that many tokens (see `count_tokens`) and answered with `finish_reason: "length"`.

Every request to /v1 is recorded (`RecordedRequest`, including the Authorization header, so tests
can check a key was sent) unless `record=False`. Status 0 in the recording and counters means the
connection was reset without a response; 499 means the client went away first.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import inspect
import json
import math
import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "DEFAULT_RULES",
    "FAULT_KINDS",
    "Fault",
    "OpenAIServer",
    "OpenAIServerProcess",
    "RecordedRequest",
    "ServerConfig",
    "count_tokens",
    "default_responder",
    "example_from_schema",
]

REPO = Path(__file__).resolve().parents[2]

FAULT_KINDS = (
    "rate_limit",  # 429 + Retry-After
    "server_error",  # 500
    "timeout",  # no answer for `timeout_delay` seconds, then a normal answer
    "malformed",  # 200 with a truncated JSON body (or a broken SSE chunk)
    "reset",  # the connection is reset without a response
    "slow_stream",  # the answer arrives in chunks `slow_stream_delay` apart
    "auth",  # 401 invalid_request_error
    "bad_request",  # 400 invalid_request_error
)
_ALIASES = {
    "429": "rate_limit",
    "500": "server_error",
    "401": "auth",
    "400": "bad_request",
    "malformed_json": "malformed",
    "connection_reset": "reset",
    "slow": "slow_stream",
}
_IMMEDIATE = frozenset({"rate_limit", "auth", "bad_request"})

DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("FAIL500", "server_error"),
    ("FAIL429", "rate_limit"),
    ("FAIL400", "bad_request"),
    ("FAILTIMEOUT", "timeout"),
    ("FAILMALFORMED", "malformed"),
    ("FAILRESET", "reset"),
    ("FAILSLOW", "slow_stream"),
    ("AUTH", "auth"),
)

Responder = Callable[[dict], Any]  # returns str, or an awaitable of str


class Fault(Exception):
    """Raise from a responder to answer this request with a fault kind (e.g. `Fault("server_error")`)."""

    def __init__(self, kind: str):
        self.kind = _fault_kind(kind)
        super().__init__(self.kind)


def _fault_kind(kind: Any) -> str:
    name = _ALIASES.get(str(kind), str(kind))
    if name in FAULT_KINDS:
        return name
    status = re.fullmatch(r"(?:http_)?([45]\d\d)", name)
    if status:
        return _ALIASES.get(status.group(1), f"http_{status.group(1)}")
    raise ValueError(
        f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)} or http_<4xx/5xx code>"
    )


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """The knobs. Immutable: `OpenAIServer.configure` swaps in a new one atomically."""

    model: str = "test-model"
    latency: float = 0.0
    latency_jitter: float = 0.0
    max_concurrency: int | None = None
    overflow: str = "reject"
    retry_after: float = 1.0
    fail_rate: float = 0.0
    fail_kinds: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"rate_limit": 1.0, "server_error": 1.0, "reset": 1.0}
    )
    fail_first_n: dict[str, int] = dataclasses.field(default_factory=dict)
    schedule: dict[int, str] = dataclasses.field(default_factory=dict)
    rules: tuple[tuple[str, str], ...] = DEFAULT_RULES
    require_api_key: str | None = None
    echo_key: bool = False
    timeout_delay: float = 10.0
    slow_stream_delay: float = 0.2
    stream_chunk_delay: float = 0.0
    seed: int = 0
    record: bool = True
    responder: Responder | None = None
    batch_seconds: float = 0.2  # time from a batch's creation to its completion
    batch_status: str | None = None  # force a terminal status: failed, expired or cancelled

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "responder"}
        out["rules"] = [list(r) for r in self.rules]
        out["schedule"] = {str(k): v for k, v in self.schedule.items()}
        out["responder"] = None if self.responder is None else getattr(self.responder, "__name__", "custom")
        return out


KNOBS = frozenset(f.name for f in dataclasses.fields(ServerConfig))
_SECONDS = (
    "latency",
    "latency_jitter",
    "retry_after",
    "timeout_delay",
    "slow_stream_delay",
    "stream_chunk_delay",
    "batch_seconds",
)


def _pairs(value: Any, what: str) -> list[tuple[str, str]]:
    """`{"a": 1}`, `[("a", 1)]`, `["a", ...]` or `"a=1,b=2"` -> [(key, value-or-None)]."""
    if value is None:
        return []
    if isinstance(value, str):
        items: Iterable[Any] = [p for p in value.split(",") if p.strip()]
        out = []
        for part in items:
            key, sep, val = part.partition("=")
            out.append((key.strip(), val.strip() if sep else None))
        return out
    if isinstance(value, Mapping):
        return list(value.items())
    out = []
    for item in value:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((item[0], item[1]))
        else:
            raise ValueError(f"{what}: cannot read {item!r}")
    return out


def _coerce(name: str, value: Any) -> Any:
    if name in _SECONDS:
        v = float(value)
        if v < 0:
            raise ValueError(f"{name} must be >= 0")
        return v
    if name == "fail_rate":
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError("fail_rate must be within [0, 1]")
        return v
    if name == "max_concurrency":
        if value is None:
            return None
        v = int(value)
        if v < 1:
            raise ValueError("max_concurrency must be >= 1 (or None for no cap)")
        return v
    if name == "overflow":
        if value not in ("reject", "queue"):
            raise ValueError("overflow must be 'reject' or 'queue'")
        return value
    if name == "fail_kinds":
        kinds = {_fault_kind(k): 1.0 if w is None else float(w) for k, w in _pairs(value, name)}
        if not kinds or any(w < 0 for w in kinds.values()) or sum(kinds.values()) <= 0:
            raise ValueError("fail_kinds needs at least one kind with a positive weight")
        return kinds
    if name == "fail_first_n":
        out: dict[str, int] = {}
        for k, n in _pairs(value, name):
            if n is None or int(n) < 0:
                raise ValueError("fail_first_n needs kind=n with n >= 0")
            out[_fault_kind(k)] = int(n)
        return out
    if name == "schedule":
        if value is None:
            return {}
        if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, str) for v in value):
            return {i: _fault_kind(k) for i, k in enumerate(value) if k}
        return {int(i): _fault_kind(k) for i, k in _pairs(value, name) if k}
    if name == "rules":
        if value is None:
            return DEFAULT_RULES
        return tuple((str(needle), _fault_kind(kind)) for needle, kind in _pairs(value, name))
    if name == "require_api_key":
        return None if value in (None, "") else str(value)
    if name == "seed":
        return int(value)
    if name in ("record", "echo_key"):
        return bool(value)
    if name == "model":
        return str(value)
    if name == "batch_status":
        if value not in (None, "failed", "expired", "cancelled"):
            raise ValueError("batch_status must be failed, expired, cancelled or None")
        return value
    if name == "responder":
        if value is not None and not callable(value):
            raise ValueError("responder must be callable")
        return value
    raise TypeError(f"unknown knob {name!r}; known: {', '.join(sorted(KNOBS))}")


def _normalize(knobs: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _coerce(name, value) for name, value in knobs.items()}


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


def _text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _last_content(messages: Any, role: str | None = None) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and (role is None or message.get("role") == role):
                return _text(message.get("content"))
    return ""


def count_tokens(text: str) -> int:
    """The server's token count: whitespace-separated words."""
    return len(text.split())


def default_responder(request: dict) -> str:
    """`"echo: " + last user message`, or a minimal JSON document for `response_format` requests."""
    fmt = request.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            return json.dumps(
                example_from_schema(schema if isinstance(schema, dict) else {}), ensure_ascii=False
            )
        if fmt.get("type") == "json_object":
            return json.dumps({"echo": _last_content(request.get("messages"), "user")}, ensure_ascii=False)
    return "echo: " + _last_content(request.get("messages"), "user")


_STRING_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def example_from_schema(schema: Any, _root: Any = None, _depth: int = 0) -> Any:
    """A small deterministic value valid against a simple JSON schema.

    Handles objects (every declared property), strings (min/maxLength, common formats), numbers
    and integers (minimum/maximum, exclusive bounds, multipleOf), booleans, null, arrays
    (minItems, items, prefixItems), enum, const, local `$ref`s, anyOf/oneOf (first branch) and
    allOf (merged). Patterns and other exotic keywords are not honoured.
    """
    root = schema if _root is None else _root
    if not isinstance(schema, dict) or _depth > 40:
        return None
    if "$ref" in schema:
        return example_from_schema(_resolve(schema["$ref"], root), root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return example_from_schema((non_null or options)[0], root, _depth + 1)
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if isinstance(part, dict) and "$ref" in part:
                part = _resolve(part["$ref"], root)
            if isinstance(part, dict):
                for k, v in part.items():
                    if k == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **v}
                    elif k == "required":
                        merged["required"] = [*merged.get("required", []), *v]
                    else:
                        merged.setdefault(k, v)
        return example_from_schema(merged, root, _depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), "null")
    if kind is None:
        if "properties" in schema or "required" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        else:
            return None
    if kind == "object":
        props = schema.get("properties") or {}
        out = {name: example_from_schema(sub, root, _depth + 1) for name, sub in props.items()}
        for name in schema.get("required") or []:
            out.setdefault(name, None)
        return out
    if kind == "array":
        prefix = [example_from_schema(s, root, _depth + 1) for s in schema.get("prefixItems") or []]
        need = max(int(schema.get("minItems", 0)) - len(prefix), 0)
        items = schema.get("items")
        if need and isinstance(items, dict):
            prefix += [example_from_schema(items, root, _depth + 1) for _ in range(need)]
        return prefix
    if kind == "string":
        value = _STRING_FORMATS.get(schema.get("format", ""), "")
        value = value.ljust(int(schema.get("minLength", 0)), "x")
        if "maxLength" in schema:
            value = value[: int(schema["maxLength"])]
        return value
    if kind in ("number", "integer"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return False
    return None


def _resolve(ref: Any, root: Any) -> Any:
    """A local JSON pointer (`#/$defs/Name`) inside `root`; {} when it leads nowhere."""
    target = root
    for part in str(ref).lstrip("#").split("/"):
        if part:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part, {}) if isinstance(target, dict) else {}
    return target


def _number(schema: dict, integer: bool) -> int | float:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = schema.get("multipleOf")
    value: float = 0
    if lo is not None and value < lo:
        value = lo
    if xlo is not None and value <= xlo:
        value = math.floor(xlo) + 1 if integer else xlo + 1
    if step:
        value = math.ceil(value / step) * step
    if hi is not None and value > hi:
        value = math.floor(hi / step) * step if step else hi
    if xhi is not None and value >= xhi:
        low = xlo if xlo is not None else lo
        value = (math.ceil(xhi) - 1) if integer else ((low + xhi) / 2 if low is not None else xhi - 1)
    if integer or float(value).is_integer():
        return int(value)
    return value


def _model(body: dict, cfg: ServerConfig) -> str:
    model = body.get("model") or cfg.model
    return model if isinstance(model, str) else str(model)


def _pieces(text: str) -> list[str]:
    """Stream pieces: each word with the whitespace before it; they concatenate to `text`."""
    pieces = re.findall(r"\s*\S+", text)
    rest = text[sum(len(p) for p in pieces) :]
    if rest:
        pieces.append(rest)
    return pieces


# --------------------------------------------------------------------------------------------
# Pre-built bodies
# --------------------------------------------------------------------------------------------


def _error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


_BODY_429 = _error_body(
    "Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"
)
_BODY_429_CAP = _error_body(
    "Too many concurrent requests. Please try again later.", "requests", "rate_limit_exceeded"
)
_BODY_500 = _error_body(
    "The server had an error while processing your request. Sorry about that!", "server_error"
)
_BODY_401 = _error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key")
_BODY_401_MISSING = _error_body(
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    "invalid_request_error",
)
_BODY_400 = _error_body("Invalid request (injected fault).", "invalid_request_error")
_ERROR_TYPES = {
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    429: "requests",
}


def _status_body(status: int) -> bytes:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return _error_body(f"Simulated HTTP {status} (injected fault).", kind, str(status))


def _echo_key(body: bytes, request: web.BaseRequest) -> bytes:
    """The error body with the request's Authorization header quoted in its message."""
    payload = json.loads(body)
    sent = request.headers.get("Authorization", "")
    payload["error"]["message"] += f" (received Authorization: {sent})"
    return json.dumps(payload).encode()


def _limit_tokens(reply: str, body: dict) -> tuple[str, str]:
    """The reply cut to the request's max_tokens, and its finish reason."""
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and count_tokens(reply) > max(limit, 0):
        return "".join(_pieces(reply)[: max(limit, 0)]), "length"
    return reply, "stop"


_MALFORMED = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "trunc'
_MALFORMED_SSE = b'data: {"id": "chatcmpl-malformed", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "trunc\n\n'
_DONE = b"data: [DONE]\n\n"
# Replies are %-formatted into fixed JSON text (strings through the C string encoder) rather
# than built as dicts and dumped: the hot path stays a few microseconds.
_jstr = json.encoder.encode_basestring  # str -> JSON string literal, like json.dumps(ensure_ascii=False)
_COMPLETION = (
    '{"id": "chatcmpl-%08d", "object": "chat.completion", "created": %d, "model": %s, '
    '"choices": [{"index": 0, "message": {"role": "assistant", "content": %s}, "finish_reason": %s}], '
    '"usage": {"prompt_tokens": %d, "completion_tokens": %d, "total_tokens": %d}}'
)
_CHUNK_HEAD = (
    'data: {"id": "chatcmpl-%08d", "object": "chat.completion.chunk", "created": %d, "model": %s, '
    '"choices": [{"index": 0, "delta": '
)
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_LINGER_RESET = struct.pack("ii", 1, 0)
_NO_HEADERS = CIMultiDictProxy(CIMultiDict())  # the headers of unrecorded requests
_MAX_BODY = 256 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RecordedRequest:
    """One request as the server saw it. `status` 0 = reset without answer, 499 = client left."""

    seq: int  # arrival order among all /v1 requests since the last reset()
    method: str
    path: str
    headers: CIMultiDictProxy  # case-insensitive, read-only; includes Authorization as sent
    body: Any  # parsed JSON, or the raw text when it was not JSON
    arrival: float  # time.time()
    status: int | None = None
    fault: str | None = None
    finished: float | None = None
    chat_seq: int = -1  # arrival order among chat requests (what `schedule` counts), -1 for others

    @property
    def messages(self) -> list:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    @property
    def last_content(self) -> str:
        return _last_content(self.messages)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": self.body,
            "arrival": self.arrival,
            "status": self.status,
            "fault": self.fault,
            "finished": self.finished,
            "chat_seq": self.chat_seq,
        }


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class OpenAIServer:
    """An OpenAI-compatible server on `host`:`port` (0 = a free port). Knobs: see `ServerConfig`.

    `start()`/`stop()` run it on a background thread; `start_async()`/`stop_async()` run it on
    the caller's event loop. Counters and the recording are safe to read from any thread.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
        **knobs: Any,
    ):
        self.host = host
        self._requested_port = port
        self._cfg = ServerConfig(**_normalize({**knobs, "responder": responder}))
        self._lock = threading.Lock()
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.BaseRunner | None = None
        self._thread: threading.Thread | None = None
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._active = 0
        self._queued = 0
        self._in_flight = 0
        self.files: dict[str, dict[str, Any]] = {}  # Batch API state (kept across reset())
        self.batches: dict[str, dict[str, Any]] = {}
        self._reset_locked()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        """Serve on a background thread; returns once the port is listening."""
        if self._thread is not None or self._runner is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run_loop, args=(loop,), name="openai-test-server", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start_async(), loop).result(timeout=30)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            raise
        self._thread = thread
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests are cut off after a short grace period). Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.stop_async(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        self._thread = None

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def start_async(self) -> OpenAIServer:
        """Serve on the running event loop."""
        if self._runner is not None:
            return self
        self._loop = asyncio.get_running_loop()
        # The low-level server (no router, no middlewares) keeps per-request CPU small.
        self._routes = {
            ("POST", "/v1/chat/completions"): self._handle_chat,
            ("GET", "/v1/models"): self._handle_models,
            ("GET", "/control"): self._handle_control,
            ("POST", "/control"): self._handle_control,
            ("GET", "/control/requests"): self._handle_control_requests,
            ("POST", "/v1/files"): self._handle_file_upload,
            ("POST", "/v1/batches"): self._handle_batch_create,
        }
        server = web.Server(
            self._dispatch,
            request_factory=self._make_request,
            handler_cancellation=True,
            access_log=None,
        )
        runner = web.ServerRunner(server, shutdown_timeout=0.25)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            site = web.SockSite(runner, sock, backlog=2048)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        self._runner = runner
        return self

    def _make_request(
        self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        loop = self._loop
        assert loop is not None
        return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=_MAX_BODY)

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        handler = self._routes.get((request.method, request.path))
        if handler is not None:
            return await handler(request)
        if request.path.startswith(("/v1/files/", "/v1/batches/")):
            return await self._handle_batch_api(request)
        if any(path == request.path for _, path in self._routes):
            return web.Response(status=405, text="405: Method Not Allowed")
        return web.Response(status=404, text="404: Not Found")

    async def stop_async(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        while self._waiters:
            self._waiters.popleft().cancel()
        await runner.cleanup()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> OpenAIServer:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (no path)."""
        if self.port is None:
            raise RuntimeError("the server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as base URL: `http://127.0.0.1:PORT/v1`."""
        return self.url + "/v1"

    @property
    def control_url(self) -> str:
        return self.url + "/control"

    # ---- knobs -------------------------------------------------------------------------------

    @property
    def config(self) -> ServerConfig:
        return self._cfg

    def configure(self, **knobs: Any) -> ServerConfig:
        """Change knobs at runtime (thread-safe). Setting `schedule`, `fail_first_n` or `seed`
        restarts that fault sequence from the next request."""
        values = _normalize(knobs)
        with self._lock:
            self._cfg = dataclasses.replace(self._cfg, **values)
            if "schedule" in values:
                self._schedule_base = self._chat_seq
            if "fail_first_n" in values:
                self._first_left = dict(self._cfg.fail_first_n)
            if "seed" in values:
                self._rng = random.Random(self._cfg.seed)
                self._jitter_rng = random.Random(self._cfg.seed + 1)
        if "max_concurrency" in values or "overflow" in values:
            self._call_in_loop(self._pump)
        return self._cfg

    def reset(self) -> None:
        """Forget the recording and counters; restart schedule, fail_first_n and the RNG."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        cfg = self._cfg
        self._records: list[RecordedRequest] = []
        self._seq = 0
        self._chat_seq = 0
        self._schedule_base = 0
        self._first_left = dict(cfg.fail_first_n)
        self._rng = random.Random(cfg.seed)
        self._jitter_rng = random.Random(cfg.seed + 1)
        self._max_in_flight = self._in_flight
        self._max_active = self._active
        self._status_counts: dict[int, int] = {}
        self._fault_counts: dict[str, int] = {}

    def _call_in_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

    # ---- observation -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Recorded requests, in arrival order (a copy)."""
        with self._lock:
            return list(self._records)

    def batch_api_requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded Batch API requests (`/v1/files...`, `/v1/batches...`), optionally of one
        method and path (e.g. `("POST", "/v1/batches")`)."""
        return [
            r
            for r in self.requests
            if r.path.startswith(("/v1/files", "/v1/batches"))
            and (method is None or r.method == method)
            and (path is None or r.path == path)
        ]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def total_requests(self) -> int:
        """Requests to /v1 since the last reset()."""
        with self._lock:
            return self._seq

    @property
    def in_flight(self) -> int:
        """Requests inside the server now (including queued ones)."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def active(self) -> int:
        """Requests admitted past `max_concurrency` and being served now."""
        with self._lock:
            return self._active

    @property
    def max_active(self) -> int:
        with self._lock:
            return self._max_active

    @property
    def queued(self) -> int:
        with self._lock:
            return self._queued

    @property
    def status_counts(self) -> dict[int, int]:
        with self._lock:
            return dict(self._status_counts)

    @property
    def fault_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._fault_counts)

    def stats(self) -> dict[str, Any]:
        """All counters at one instant."""
        with self._lock:
            return {
                "total_requests": self._seq,
                "chat_requests": self._chat_seq,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "active": self._active,
                "max_active": self._max_active,
                "queued": self._queued,
                "status_counts": dict(self._status_counts),
                "fault_counts": dict(self._fault_counts),
            }

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `n` requests were recorded (TimeoutError otherwise)."""
        return self._wait(lambda: self._seq >= n, timeout, f"{n} requests") or self.requests

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is in flight (TimeoutError otherwise)."""
        self._wait(lambda: self._in_flight == 0, timeout, "idle")

    def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if predicate():
                    return None
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not {what} after {timeout}s: {self.stats()}")
            time.sleep(0.005)

    # ---- request handling ---------------------------------------------------------------------

    def _arrive(self, request: web.BaseRequest, body: Any, cfg: ServerConfig, chat: bool) -> RecordedRequest:
        with self._lock:
            rec = RecordedRequest(self._seq, request.method, request.path, _NO_HEADERS, body, time.time())
            self._seq += 1
            if chat:
                rec.chat_seq = self._chat_seq
                self._chat_seq += 1
            self._in_flight += 1
            if self._in_flight > self._max_in_flight:
                self._max_in_flight = self._in_flight
            if cfg.record:
                rec.headers = request.headers  # immutable: kept without a copy
                self._records.append(rec)
        return rec

    def _depart(self, rec: RecordedRequest) -> None:
        status = rec.status if rec.status is not None else 499
        with self._lock:
            rec.status = status
            rec.finished = time.time()
            self._in_flight -= 1
            self._status_counts[status] = self._status_counts.get(status, 0) + 1
            if rec.fault is not None:
                self._fault_counts[rec.fault] = self._fault_counts.get(rec.fault, 0) + 1

    async def _handle_models(self, request: web.BaseRequest) -> web.StreamResponse:
        cfg = self._cfg
        rec = self._arrive(request, None, cfg, chat=False)
        try:
            if not self._authorized(request, cfg):
                return self._unauthorized(request, rec, cfg)
            rec.status = 200
            body = {
                "object": "list",
                "data": [
                    {"id": cfg.model, "object": "model", "created": 1700000000, "owned_by": "dataflow-tests"}
                ],
            }
            return web.Response(body=json.dumps(body).encode(), content_type="application/json")
        finally:
            self._depart(rec)

    async def _handle_chat(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        cfg = self._cfg
        rec = self._arrive(request, body, cfg, chat=True)
        try:
            return await self._serve_chat(request, body, cfg, rec)
        finally:
            self._depart(rec)

    @staticmethod
    def _authorized(request: web.BaseRequest, cfg: ServerConfig) -> bool:
        return (
            cfg.require_api_key is None
            or request.headers.get("Authorization") == "Bearer " + cfg.require_api_key
        )

    @staticmethod
    def _unauthorized(request: web.BaseRequest, rec: RecordedRequest, cfg: ServerConfig) -> web.Response:
        rec.status = 401
        missing = not request.headers.get("Authorization")
        body = _BODY_401_MISSING if missing else _BODY_401
        if cfg.echo_key:
            body = _echo_key(body, request)
        return web.Response(status=401, body=body, content_type="application/json")

    async def _serve_chat(
        self, request: web.BaseRequest, body: Any, cfg: ServerConfig, rec: RecordedRequest
    ) -> web.StreamResponse:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            rec.status = 400
            return web.Response(
                status=400,
                body=_error_body(
                    "'messages' is a required property (as a JSON list).", "invalid_request_error"
                ),
                content_type="application/json",
            )
        if not self._authorized(request, cfg):
            return self._unauthorized(request, rec, cfg)
        if not await self._admit(cfg):
            rec.status = 429
            rec.fault = "concurrency_limit"
            return self._rate_limited(
                cfg, _echo_key(_BODY_429_CAP, request) if cfg.echo_key else _BODY_429_CAP
            )
        try:
            return await self._serve_admitted(request, body, cfg, rec)
        finally:
            self._release()

    async def _admit(self, cfg: ServerConfig) -> bool:
        cap = cfg.max_concurrency
        if cap is None or (self._active < cap and not self._waiters):
            with self._lock:
                self._active += 1
                if self._active > self._max_active:
                    self._max_active = self._active
            return True
        if cfg.overflow == "reject":
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        with self._lock:
            self._queued += 1
        try:
            await waiter  # _pump hands over a slot before waking us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        finally:
            with self._lock:
                self._queued -= 1
        return True

    def _release(self) -> None:
        with self._lock:
            self._active -= 1
        if self._waiters:
            self._pump()

    def _pump(self) -> None:
        cap = self._cfg.max_concurrency
        while self._waiters and (cap is None or self._active < cap):
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            with self._lock:
                self._active += 1
                if self._active > self._max_active:
                    self._max_active = self._active
            waiter.set_result(None)

    def _pick_fault(self, cfg: ServerConfig, rec: RecordedRequest) -> tuple[str | None, float]:
        """Under the lock: the fault for this request, and its latency."""
        kind = None
        if cfg.rules:
            last = rec.last_content
            for needle, rule_kind in cfg.rules:
                if needle in last:
                    kind = rule_kind
                    break
        if kind is None and cfg.schedule:
            kind = cfg.schedule.get(rec.chat_seq - self._schedule_base)
        if kind is None and self._first_left:
            for first_kind, left in self._first_left.items():
                if left > 0:
                    self._first_left[first_kind] = left - 1
                    kind = first_kind
                    break
        if kind is None and cfg.fail_rate > 0 and self._rng.random() < cfg.fail_rate:
            kinds = list(cfg.fail_kinds)
            kind = self._rng.choices(kinds, weights=[cfg.fail_kinds[k] for k in kinds])[0]
        latency = cfg.latency
        if cfg.latency_jitter:
            latency += self._jitter_rng.random() * cfg.latency_jitter
        return kind, latency

    async def _serve_admitted(
        self, request: web.BaseRequest, body: dict, cfg: ServerConfig, rec: RecordedRequest
    ) -> web.StreamResponse:
        with self._lock:
            kind, latency = self._pick_fault(cfg, rec)
        rec.fault = kind
        reply: str | None = None
        if kind is None or kind in ("timeout", "slow_stream"):
            try:
                reply = await self._reply(body, cfg)
            except Fault as fault:
                kind = rec.fault = fault.kind

        if kind is not None and (kind in _IMMEDIATE or kind.startswith("http_")):
            return self._immediate(kind, cfg, rec, request)
        delay = cfg.timeout_delay if kind == "timeout" else latency
        if delay > 0:
            await asyncio.sleep(delay)
        stream = body.get("stream") is True
        if kind == "server_error":
            rec.status = 500
            body_500 = _echo_key(_BODY_500, request) if cfg.echo_key else _BODY_500
            return web.Response(status=500, body=body_500, content_type="application/json")
        if kind == "malformed":
            return await self._malformed(request, stream, rec)
        if kind == "reset":
            return self._reset_connection(request, rec)
        if reply is None:
            reply = default_responder(body)
        reply, finish = _limit_tokens(reply, body)
        chunk_delay = cfg.slow_stream_delay if kind == "slow_stream" else cfg.stream_chunk_delay
        if stream:
            return await self._stream(request, body, cfg, rec, reply, chunk_delay, finish)
        data = self._completion(body, cfg, rec, reply, finish)
        if kind == "slow_stream" and chunk_delay > 0:
            return await self._send_slowly(request, data, chunk_delay, rec)
        rec.status = 200
        return web.Response(body=data, content_type="application/json")

    async def _reply(self, body: dict, cfg: ServerConfig) -> str:
        if cfg.responder is None:
            return default_responder(body)
        result = cfg.responder(body)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)

    def _immediate(
        self, kind: str, cfg: ServerConfig, rec: RecordedRequest, request: web.BaseRequest
    ) -> web.Response:
        if kind == "rate_limit":
            status, body = 429, _BODY_429
        elif kind == "auth":
            status, body = 401, _BODY_401
        elif kind == "bad_request":
            status, body = 400, _BODY_400
        else:
            status = int(kind.removeprefix("http_"))
            body = _status_body(status)
        if cfg.echo_key:
            body = _echo_key(body, request)
        rec.status = status
        if status == 429:
            return self._rate_limited(cfg, body)
        return web.Response(status=status, body=body, content_type="application/json")

    @staticmethod
    def _rate_limited(cfg: ServerConfig, body: bytes) -> web.Response:
        return web.Response(
            status=429,
            body=body,
            content_type="application/json",
            headers={"Retry-After": f"{cfg.retry_after:g}"},
        )

    @staticmethod
    def _usage(body: dict, reply: str) -> dict[str, int]:
        prompt = sum(count_tokens(_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
        completion = count_tokens(reply)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(
        self, body: dict, cfg: ServerConfig, rec: RecordedRequest, reply: str, finish: str = "stop"
    ) -> bytes:
        usage = self._usage(body, reply)
        return (
            _COMPLETION
            % (
                rec.chat_seq,
                int(rec.arrival),
                _jstr(_model(body, cfg)),
                _jstr(reply),
                _jstr(finish),
                usage["prompt_tokens"],
                usage["completion_tokens"],
                usage["total_tokens"],
            )
        ).encode()

    async def _stream(
        self,
        request: web.BaseRequest,
        body: dict,
        cfg: ServerConfig,
        rec: RecordedRequest,
        reply: str,
        delay: float,
        finish: str = "stop",
    ) -> web.StreamResponse:
        options = body.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        head = _CHUNK_HEAD % (rec.chat_seq, int(rec.arrival), _jstr(_model(body, cfg)))
        tail = ', "finish_reason": null}]' + (', "usage": null}\n\n' if with_usage else "}\n\n")
        texts = [head + '{"role": "assistant", "content": ""}' + tail]
        texts += [head + '{"content": ' + _jstr(piece) + "}" + tail for piece in _pieces(reply)]
        texts.append(
            head
            + '{}, "finish_reason": '
            + _jstr(finish)
            + "}]"
            + (', "usage": null}\n\n' if with_usage else "}\n\n")
        )
        if with_usage:
            usage = json.dumps(self._usage(body, reply))
            texts.append(head.split(', "choices": ', 1)[0] + ', "choices": [], "usage": ' + usage + "}\n\n")
        events = [t.encode() for t in texts]
        events.append(_DONE)

        response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
        rec.status = 200
        await response.prepare(request)
        if delay > 0:
            for i, data in enumerate(events):
                if i:
                    await asyncio.sleep(delay)
                await response.write(data)
        else:
            await response.write(b"".join(events))
        await response.write_eof()
        return response

    async def _send_slowly(
        self, request: web.BaseRequest, data: bytes, delay: float, rec: RecordedRequest
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        rec.status = 200
        await response.prepare(request)
        step = max(1, -(-len(data) // 4))
        for i in range(0, len(data), step):
            if i:
                await asyncio.sleep(delay)
            await response.write(data[i : i + step])
        await response.write_eof()
        return response

    async def _malformed(
        self, request: web.BaseRequest, stream: bool, rec: RecordedRequest
    ) -> web.StreamResponse:
        rec.status = 200
        if not stream:
            return web.Response(body=_MALFORMED, content_type="application/json")
        response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
        await response.prepare(request)
        await response.write(_MALFORMED_SSE + _DONE)
        await response.write_eof()
        return response

    @staticmethod
    def _reset_connection(request: web.BaseRequest, rec: RecordedRequest) -> web.Response:
        rec.status = 0
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            transport.abort()
        return web.Response(status=200)  # never sent: aiohttp drops it quietly

    # ---- Batch API ----------------------------------------------------------------------------

    async def _handle_file_upload(self, request: web.BaseRequest) -> web.StreamResponse:
        cfg = self._cfg
        rec = self._arrive(request, None, cfg, chat=False)
        try:
            if not self._authorized(request, cfg):
                return self._unauthorized(request, rec, cfg)
            form = await request.post()
            upload = form.get("file")
            if form.get("purpose") != "batch" or not hasattr(upload, "file"):
                return self._batch_error(rec, 400, "a multipart `file` with `purpose=batch` is required")
            content = upload.file.read()
            rec.body = {"purpose": "batch", "filename": upload.filename, "bytes": len(content)}
            file = self._new_file(content, upload.filename or "upload.jsonl", "batch")
            rec.status = 200
            return web.json_response(self._file_object(file))
        finally:
            self._depart(rec)

    async def _handle_batch_create(self, request: web.BaseRequest) -> web.StreamResponse:
        cfg = self._cfg
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        rec = self._arrive(request, body, cfg, chat=False)
        try:
            if not self._authorized(request, cfg):
                return self._unauthorized(request, rec, cfg)
            if not isinstance(body, dict):
                return self._batch_error(rec, 400, "expected a JSON object")
            file = self.files.get(str(body.get("input_file_id")))
            if file is None or file["purpose"] != "batch":
                return self._batch_error(rec, 400, f"no batch input file `{body.get('input_file_id')}`")
            if body.get("endpoint") != "/v1/chat/completions":
                return self._batch_error(rec, 400, "only endpoint /v1/chat/completions is supported")
            if body.get("completion_window") != "24h":
                return self._batch_error(rec, 400, "completion_window must be 24h")
            now = time.time()
            batch_id = f"batch_{len(self.batches):06d}{random.getrandbits(32):08x}"
            lines = file["content"].decode("utf-8", "replace").splitlines()
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "errors": None,
                "input_file_id": file["id"],
                "completion_window": "24h",
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(now),
                "in_progress_at": None,
                "expires_at": int(now) + 86400,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": sum(1 for x in lines if x.strip()), "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
                "_created": now,
            }
            rec.status = 200
            return web.json_response(self._batch_object(self.batches[batch_id]))
        finally:
            self._depart(rec)

    async def _handle_batch_api(self, request: web.BaseRequest) -> web.StreamResponse:
        cfg = self._cfg
        rec = self._arrive(request, None, cfg, chat=False)
        try:
            if not self._authorized(request, cfg):
                return self._unauthorized(request, rec, cfg)
            parts = request.path.strip("/").split("/")  # v1, files|batches, id[, content|cancel]
            kind, ident, action = parts[1], parts[2] if len(parts) > 2 else "", "/".join(parts[3:])
            if kind == "files" and request.method == "GET" and ident in self.files:
                file = self.files[ident]
                rec.status = 200
                if action == "content":
                    return web.Response(body=file["content"], content_type="application/octet-stream")
                if not action:
                    return web.json_response(self._file_object(file))
            if kind == "batches" and ident in self.batches:
                batch = self.batches[ident]
                if request.method == "POST" and action == "cancel":
                    batch["_cancel"] = True
                if request.method == "GET" and not action or request.method == "POST" and action == "cancel":
                    await self._advance_batch(batch, cfg)
                    rec.status = 200
                    return web.json_response(self._batch_object(batch))
            return self._batch_error(
                rec, 404, f"no such object: {request.method} {request.path}", "not_found"
            )
        finally:
            self._depart(rec)

    async def _advance_batch(self, batch: dict[str, Any], cfg: ServerConfig) -> None:
        """Move a job along by the time passed since its creation (terminal states stay)."""
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return
        now = time.time()
        elapsed = now - batch["_created"]
        if batch.pop("_cancel", False) or cfg.batch_status == "cancelled":
            batch.update(status="cancelled", cancelling_at=int(now), cancelled_at=int(now))
            return
        problems = self._validate_batch(batch)
        if problems or cfg.batch_status == "failed":
            problems = problems or [
                {"code": "injected", "message": "batch failed (batch_status knob)", "line": None}
            ]
            batch.update(status="failed", failed_at=int(now), errors={"object": "list", "data": problems})
            return
        if elapsed < 0.1 * cfg.batch_seconds:
            return
        batch["in_progress_at"] = batch["in_progress_at"] or int(now)
        if elapsed < cfg.batch_seconds:
            batch["status"] = "in_progress"
            return
        if cfg.batch_status == "expired":
            batch.update(status="expired", expired_at=int(now))
            return
        await self._complete_batch(batch, cfg)

    def _validate_batch(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        content = self.files[batch["input_file_id"]]["content"].decode("utf-8", "replace")
        seen: set[str] = set()
        problems = []
        for number, line in enumerate(content.splitlines(), 1):
            try:
                item = json.loads(line)
            except ValueError:
                continue  # answered with a per-line error
            if not isinstance(item, dict):
                continue
            custom_id = item.get("custom_id")
            if custom_id in seen:
                problems.append(
                    {
                        "code": "duplicate_custom_id",
                        "message": f"duplicate custom_id {custom_id!r}",
                        "line": number,
                    }
                )
            seen.add(custom_id)
            if item.get("url") not in (None, batch["endpoint"]):
                problems.append(
                    {
                        "code": "mismatched_url",
                        "message": f"line url {item.get('url')!r} is not the batch endpoint",
                        "line": number,
                    }
                )
        return problems

    async def _complete_batch(self, batch: dict[str, Any], cfg: ServerConfig) -> None:
        content = self.files[batch["input_file_id"]]["content"].decode("utf-8", "replace")
        outputs: list[str] = []
        errors: list[str] = []
        for number, line in enumerate(content.splitlines()):
            if not line.strip():
                continue
            status, answer, error, custom_id = 200, None, None, None
            try:
                item = json.loads(line)
                custom_id = item.get("custom_id")
                body = item["body"]
                if (
                    not isinstance(custom_id, str)
                    or not isinstance(body, dict)
                    or not isinstance(body.get("messages"), list)
                ):
                    raise ValueError("each line needs a string `custom_id` and a `body` with `messages`")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                error = {"code": "invalid_request", "message": str(exc)}
                body = {}
            if error is None:
                status, answer = await self._batch_line(body, cfg, number)
            out = {
                "id": f"batch_req_{batch['id']}_{number}",
                "custom_id": custom_id,
                "response": None
                if error
                else {"status_code": status, "request_id": f"req_{number}", "body": answer},
                "error": error,
            }
            (outputs if status == 200 and error is None else errors).append(
                json.dumps(out, ensure_ascii=False) + "\n"
            )
        now = int(time.time())
        if outputs:
            batch["output_file_id"] = self._new_file(
                "".join(outputs).encode(), "output.jsonl", "batch_output"
            )["id"]
        if errors:
            batch["error_file_id"] = self._new_file("".join(errors).encode(), "errors.jsonl", "batch_output")[
                "id"
            ]
        batch["request_counts"] = {
            "total": len(outputs) + len(errors),
            "completed": len(outputs),
            "failed": len(errors),
        }
        batch.update(status="completed", finalizing_at=now, completed_at=now)

    async def _batch_line(self, body: dict, cfg: ServerConfig, number: int) -> tuple[int, Any]:
        """One input line answered like a chat request: (status, response body)."""
        kind = None
        last = _last_content(body.get("messages"))
        for needle, rule_kind in cfg.rules:
            if needle in last:
                kind = rule_kind
                break
        reply = None
        if kind is None:
            try:
                reply = await self._reply(body, cfg)
            except Fault as fault:
                kind = fault.kind
        if kind is not None:
            status = {"rate_limit": 429, "auth": 401, "bad_request": 400}.get(kind)
            if status is None:
                status = int(kind.removeprefix("http_")) if kind.startswith("http_") else 500
            return status, {
                "error": {
                    "message": f"injected {kind}",
                    "type": "server_error" if status >= 500 else "invalid_request_error",
                }
            }
        reply, finish = _limit_tokens(reply, body)
        rec = RecordedRequest(
            number, "POST", "/v1/chat/completions", _NO_HEADERS, body, time.time(), chat_seq=number
        )
        return 200, json.loads(self._completion(body, cfg, rec, reply, finish))

    def _new_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{len(self.files):06d}{random.getrandbits(32):08x}"
        self.files[file_id] = {
            "id": file_id,
            "content": content,
            "filename": filename,
            "purpose": purpose,
            "created_at": int(time.time()),
        }
        return self.files[file_id]

    @staticmethod
    def _file_object(file: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": file["id"],
            "object": "file",
            "bytes": len(file["content"]),
            "created_at": file["created_at"],
            "filename": file["filename"],
            "purpose": file["purpose"],
        }

    @staticmethod
    def _batch_object(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    @staticmethod
    def _batch_error(
        rec: RecordedRequest, status: int, message: str, code: str | None = None
    ) -> web.Response:
        rec.status = status
        return web.Response(
            status=status,
            body=_error_body(message, "invalid_request_error", code),
            content_type="application/json",
        )

    # ---- control endpoint ---------------------------------------------------------------------

    async def _handle_control(self, request: web.BaseRequest) -> web.Response:
        if request.method == "POST":
            try:
                knobs = await request.json() if request.can_read_body else {}
                if not isinstance(knobs, dict):
                    raise ValueError("expected a JSON object of knobs")
                knobs = dict(knobs)
                reset = bool(knobs.pop("reset", False))
                if "responder" in knobs:
                    raise ValueError("responder cannot be set over HTTP")
                if knobs:
                    self.configure(**knobs)
                if reset:
                    self.reset()
            except (TypeError, ValueError) as exc:
                return web.json_response(
                    {"error": {"message": str(exc), "type": "invalid_request_error"}}, status=400
                )
        return web.json_response({"config": self._cfg.to_json(), "stats": self.stats()})

    async def _handle_control_requests(self, request: web.BaseRequest) -> web.Response:
        return web.json_response([r.to_json() for r in self.requests])


# --------------------------------------------------------------------------------------------
# Separate process
# --------------------------------------------------------------------------------------------


class OpenAIServerProcess:
    """The server in a child process (`python -m tests.support.openai_server`), e.g. on its own core.

    Knobs are those of `OpenAIServer` except `responder`; `cpu` pins the child to that CPU.
    The child exits when this object is stopped or when the parent dies (its stdin closes).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cpu: int | None = None,
        python: str = sys.executable,
        startup_timeout: float = 30.0,
        **knobs: Any,
    ):
        if "responder" in knobs:
            raise TypeError("a responder cannot cross a process boundary; use OpenAIServer")
        _normalize(knobs)  # fail early on bad knobs
        self.host, self.port, self.cpu = host, port, cpu
        self.python, self.startup_timeout = python, startup_timeout
        self.knobs = knobs
        self.base_url = ""
        self.proc: subprocess.Popen | None = None

    def start(self) -> OpenAIServerProcess:
        if self.proc is not None:
            return self
        cmd = [
            self.python,
            "-m",
            "tests.support.openai_server",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        cmd += ["--config-json", json.dumps(self.knobs), "--exit-on-stdin-eof"]
        if self.cpu is not None:
            cmd += ["--cpu", str(self.cpu)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        try:
            line = _read_ready(self.proc, self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.base_url = line.split()[1]
        self.port = int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        return proc.returncode

    def __enter__(self) -> OpenAIServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def url(self) -> str:
        return self.base_url[: -len("/v1")]

    def _control(self, path: str = "/control", payload: dict | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs in the child; returns its config as JSON."""
        return self._control(payload=knobs)["config"]

    def reset(self) -> None:
        self._control(payload={"reset": True})

    def stats(self) -> dict[str, Any]:
        """The child's counters (status_counts keys are strings: JSON)."""
        return self._control()["stats"]

    def requests(self) -> list[dict[str, Any]]:
        return self._control("/control/requests")


def _read_ready(proc: subprocess.Popen, timeout: float) -> str:
    """The child's `READY <url>` line, or RuntimeError if it dies or stays silent."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"server process printed no READY line in {timeout}s")
            if sel.select(left):
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"server process exited ({proc.wait()}) before READY")
                buf += chunk
    line = buf.split(b"\n", 1)[0].decode()
    if not line.startswith("READY "):
        raise RuntimeError(f"unexpected first line from server process: {line!r}")
    return line


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.support.openai_server",
        description="OpenAI-compatible test server. Prints 'READY <base_url>' once listening.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--model")
    p.add_argument("--latency", type=float, help="seconds per request")
    p.add_argument("--latency-jitter", type=float, help="extra random seconds, uniform in [0, x)")
    p.add_argument("--max-concurrency", type=int)
    p.add_argument("--overflow", choices=["reject", "queue"])
    p.add_argument("--retry-after", type=float)
    p.add_argument("--fail-rate", type=float)
    p.add_argument("--fail-kinds", help="e.g. rate_limit=2,server_error=1,reset")
    p.add_argument("--fail-first-n", help="e.g. rate_limit=2,server_error=1")
    p.add_argument("--schedule", help="e.g. 0=rate_limit,3=reset")
    p.add_argument("--no-default-rules", action="store_true", help="no content rules (FAIL500, AUTH, ...)")
    p.add_argument("--require-api-key")
    p.add_argument("--echo-key", action="store_true", help="error bodies quote the Authorization header")
    p.add_argument("--timeout-delay", type=float)
    p.add_argument("--slow-stream-delay", type=float)
    p.add_argument("--stream-chunk-delay", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--no-record", action="store_true", help="keep counters only (long benchmarks)")
    p.add_argument("--config-json", help="knobs as a JSON object (applied before the flags)")
    p.add_argument("--cpu", type=int, help="pin the process to this CPU")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes")
    return p.parse_args(argv)


def _knobs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    knobs: dict[str, Any] = json.loads(args.config_json) if args.config_json else {}
    for name in (
        "model",
        "latency",
        "latency_jitter",
        "max_concurrency",
        "overflow",
        "retry_after",
        "fail_rate",
        "fail_kinds",
        "fail_first_n",
        "schedule",
        "require_api_key",
        "timeout_delay",
        "slow_stream_delay",
        "stream_chunk_delay",
        "seed",
    ):
        value = getattr(args, name)
        if value is not None:
            knobs[name] = value
    if args.no_default_rules:
        knobs["rules"] = []
    if args.no_record:
        knobs["record"] = False
    if args.echo_key:
        knobs["echo_key"] = True
    return knobs


async def _serve_main(args: argparse.Namespace) -> None:
    server = OpenAIServer(host=args.host, port=args.port, **_knobs_from_args(args))
    await server.start_async()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)
    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            with contextlib.suppress(OSError, ValueError):
                while os.read(sys.stdin.fileno(), 4096):
                    pass
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    print(f"READY {server.base_url}", flush=True)
    await done.wait()
    await server.stop_async()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(_serve_main(args))


if __name__ == "__main__":
    main()
