"""HTTP/1.1 POSTs to one origin over keep-alive connections: the `openai` backend's transport.

Why not aiohttp: against a fast server at high concurrency the client's CPU per request decides
throughput, and an OpenAI-compatible API needs little of HTTP (POST a JSON body, read a JSON
answer, keep the connection). aiohttp's `ClientSession.post` costs ~0.19 ms of CPU per call
(per-call request/response objects, multidict headers, cookies, tracing hooks), this ~0.05 ms
(`bench/llm_throughput.py`, 500 in flight), so one process keeps 500 calls in flight with CPU
to spare for the engine's own work.

What it does:
- connections are kept alive and reused, newest first; a call takes an idle one or opens a new
  one (how many calls run at once is the caller's to bound: the engine's `max_concurrency`);
- TLS for `https://` (the system's CAs, and certifi's when installed), with SNI and hostname
  checks;
- answers with a Content-Length, chunked, or ending with the connection; `gzip` and `deflate`
  bodies are decoded; an answer larger than `max_body` fails (a broken or hostile server cannot
  fill memory);
- a time limit per call that really interrupts: at the deadline the connection is closed;
- a kept-alive connection the server closed while it sat idle is not used again. A call is
  never sent twice: when the connection ends without an answer, the server may have read the
  request (a reset fault, or the rare race with an idle close), so the call fails as a
  connection error and the engine retries it, counted and backed off.

What it does not: redirects (a 3xx comes back as a status), proxies, HTTP/2, 100-continue.
Responses are parsed by httptools (llhttp, the HTTP parser of Node.js).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import zlib
from typing import NamedTuple
from urllib.parse import urlsplit

import httptools

from dataflow_cli import __version__

MAX_BODY = 64 << 20  # bytes of one answer, raw or decoded
DNS_TTL = 300.0  # seconds a host's addresses are used before they are looked up again
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field names
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters (tab is allowed)


class HTTPError(Exception):
    """A call that got no answer: `kind` is connection, timeout or protocol (a malformed answer)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class Response(NamedTuple):
    status: int
    body: bytes
    retry_after: str | None  # the Retry-After header, as sent


def header_problem(name: str, value: str) -> str | None:
    """Why a caller's header cannot be sent as is (a line break would smuggle in headers of its
    own; framing headers are the client's), or None."""
    if not _TOKEN.fullmatch(name):
        return f"header name {name!r} is not a valid HTTP field name"
    if _BAD_VALUE.search(value):
        return f"the value of header `{name}` contains a line break or another control character"
    if name.lower() in ("host", "content-length", "transfer-encoding"):
        return f"header `{name}` is set by the HTTP client; remove it"
    return None


def url_problem(url: str) -> str | None:
    """Why `url` is not one this client can call, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL (e.g. http://localhost:8000/v1)"
    return None


class Origin:
    """Calls to one `http(s)://host:port/path` URL. Use on one event loop."""

    def __init__(self, url: str, timeout: float, max_body: int = MAX_BODY):
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        parts = urlsplit(url)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self.timeout = timeout
        self.max_body = max_body
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]  # never send user:password@ as the Host
        self._start = (
            f"POST {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: dataflow/{__version__}\r\n"
            "Accept: application/json\r\nAccept-Encoding: identity\r\n"
        ).encode("latin-1")
        self._head = b""
        self._headers: dict[str, str] | None = None  # those `_head` was built from
        self._idle: list[_Connection] = []
        self._ssl: ssl.SSLContext | None = None
        self._addresses: list[str] = []
        self._resolved_until = float("-inf")
        self._resolving = asyncio.Lock()

    async def post(self, body: bytes, headers: dict[str, str]) -> Response:
        """POST `body`: the answer whatever its status, or HTTPError. `headers` must not carry
        Host, Content-Length or Transfer-Encoding (this sets them)."""
        if headers is not self._headers:  # callers build a new dict only when headers change
            self._head = self._start + _header_block(headers)
            self._headers = headers
        message = b"%sContent-Length: %d\r\n\r\n%s" % (self._head, len(body), body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        idle = self._idle
        connection = None
        while idle and connection is None:
            connection = idle.pop()
            if connection.closed:  # by the server, while it sat idle
                connection = None
        if connection is None:
            connection = await self._connect(loop, deadline)
        status, raw, retry_after, keep = await connection.exchange(message, loop, deadline, self.timeout)
        if keep and not connection.closed:
            idle.append(connection)
        else:
            connection.close()
        return Response(status, raw, retry_after)

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        where = f"{self.host}:{self.port}"
        try:
            return await asyncio.wait_for(self._open(loop), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise HTTPError("timeout", f"no connection to {where} within {self.timeout:g} s") from None
        except OSError as exc:  # refused, unreachable, unknown host, certificate (ssl.SSLError)
            raise HTTPError("connection", f"cannot connect to {where}: {exc}") from None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        """A new connection to the first address that takes it."""
        # The host is looked up once per DNS_TTL, not once per connection: hundreds of
        # connections open at once when a run starts.
        async with self._resolving:
            if loop.time() >= self._resolved_until:
                infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                self._addresses = [str(info[4][0]) for info in infos]
                self._resolved_until = loop.time() + DNS_TTL
        addresses = self._addresses
        error: OSError | None = None
        for address in list(addresses):
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(self.max_body),
                    address,
                    self.port,
                    ssl=self._ssl_context() if self.tls else None,
                    server_hostname=self.host if self.tls else None,
                )
            except OSError as exc:
                error = exc
                continue
            if address != addresses[0]:  # e.g. ::1 refused, 127.0.0.1 took it: first from now on
                addresses.remove(address)
                addresses.insert(0, address)
            return connection
        raise error or OSError(f"no address for {self.host}")

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = ssl.create_default_context()
            try:
                import certifi

                context.load_verify_locations(certifi.where())
            except (ImportError, OSError):
                pass
            self._ssl = context
        return self._ssl

    def close(self) -> None:
        """Close the idle connections (calls in flight close theirs when they end)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _header_block(headers: dict[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise ValueError(problem)
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("utf-8")


class _Connection(asyncio.Protocol):
    """One connection; one call on it at a time. The parser calls the `on_*` methods."""

    def __init__(self, max_body: int):
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.waiter: asyncio.Future | None = None
        self.received = 0
        self._begin()

    def _begin(self) -> None:
        """Ready for an answer (after an interim one, the bytes received still count)."""
        self.body: list[bytes] = []
        self.retry_after: str | None = None
        self.encoding = b""
        self.framed = False  # Content-Length or chunked; else the body ends with the connection
        self.headers_done = False

    async def exchange(
        self, message: bytes, loop: asyncio.AbstractEventLoop, deadline: float, timeout: float
    ):
        """Send one request; (status, body, Retry-After, keep-alive) of its answer."""
        self._begin()
        self.received = 0  # bytes of this call's answer
        self.waiter = waiter = loop.create_future()
        assert self.transport is not None
        self.transport.write(message)
        timer = loop.call_at(deadline, self._expire, timeout)
        try:
            return await waiter
        except BaseException:  # the state of the connection is unknown: never reuse it
            self.close()
            raise
        finally:
            timer.cancel()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # at once: nothing is left to send

    def _fail(self, error: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _expire(self, timeout: float) -> None:
        self._fail(HTTPError("timeout", f"no answer within {timeout:g} s"))

    # ---- asyncio ----
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing was asked (e.g. a server's 408 on an idle connection)
            self.close()
            return
        self.received += len(data)
        if self.received > self.max_body + 65536:  # the body and room for the status and headers
            self._fail(HTTPError("protocol", f"the answer is larger than {self.max_body} bytes"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HTTPError("protocol", f"malformed HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and not self.framed:
            self.on_message_complete()  # the body ended with the connection
        elif not self.received:
            self._fail(HTTPError("connection", "the server closed the connection without answering"))
        else:
            self._fail(
                HTTPError("connection", "the server closed the connection in the middle of its answer")
            )

    # ---- httptools ----
    def on_message_begin(self) -> None:
        if self.waiter is None:  # bytes after the answer, in the same packet: never reuse
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"retry-after":
            self.retry_after = value.decode("latin-1").strip()
        elif name == b"content-encoding":
            self.encoding = value.strip().lower()
        elif name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (e.g. 103 Early Hints): the real one follows
            self._begin()
            return
        try:
            body = _decoded(b"".join(self.body), self.encoding, self.max_body)
        except HTTPError as exc:
            self._fail(exc)
            return
        self.waiter = None
        waiter.set_result(
            (status, body, self.retry_after, self.parser.should_keep_alive() and not self.closed)
        )


def _decoded(body: bytes, encoding: bytes, limit: int) -> bytes:
    if not encoding or encoding == b"identity":
        return body
    if encoding in (b"gzip", b"x-gzip", b"deflate"):
        # gzip: a gzip header; deflate: a zlib stream (RFC 9110), raw deflate from some servers.
        wbits = (
            16 + zlib.MAX_WBITS
            if encoding != b"deflate"
            else (zlib.MAX_WBITS if body[:1] == b"x" else -zlib.MAX_WBITS)
        )
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(body, limit + 1)
        except zlib.error as exc:
            raise HTTPError("protocol", f"cannot decode the {encoding.decode()} answer: {exc}") from None
        if len(out) > limit:
            raise HTTPError("protocol", f"the decoded answer is larger than {limit} bytes")
        return out
    raise HTTPError(
        "protocol", f"the answer uses Content-Encoding {encoding.decode('latin-1')!r}, which is not supported"
    )
