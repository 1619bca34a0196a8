"""The `openai` backend's HTTP/1.1 client (`http1`): the same answers and failures as aiohttp
against the real test server, and every way a server may frame, compress, cut short, stall or
abuse an answer, against scripted raw TCP servers."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
import zlib
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from pydantic import ValidationError

from dataflow_cli.llm.backends.http1 import HTTPError, Origin, Response
from dataflow_cli.llm.backends.openai import OpenAIBackend, OpenAIConfig
from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy
from dataflow_cli.llm.types import Completion, LLMError, Request

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def req(text: str) -> Request:
    return Request(({"role": "user", "content": text},))


def body(text: str) -> bytes:
    return json.dumps({"model": "test-model", "messages": [{"role": "user", "content": text}]}).encode()


def completion(text: str) -> bytes:
    return json.dumps(
        {
            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
    ).encode()


class RawServer:
    """A TCP server on its own thread and loop; `handler` speaks (or breaks) HTTP per connection."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []  # the head of every request read with `read_request`
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _start(self):
        async def serve(reader, writer):
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        return await asyncio.start_server(serve, "127.0.0.1", 0)

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request (head and Content-Length body); b"" at the end of the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return b""
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        self.requests.append(head)
        return head

    def close(self) -> None:
        async def stop():
            self.server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:  # e.g. one still dripping bytes at a client that gave up
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture
def raw_server():
    servers: list[RawServer] = []

    def make(handler: Handler) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def calls(url: str, count: int = 1, timeout: float = 5.0, **origin) -> list[Response | HTTPError]:
    """`count` POSTs one after another on one Origin: each answer or error."""

    async def run():
        client = Origin(url, timeout, **origin)
        out: list[Response | HTTPError] = []
        for i in range(count):
            try:
                out.append(await client.post(body(f"q{i}"), {"Content-Type": "application/json"}))
            except HTTPError as exc:
                out.append(exc)
        client.close()
        return out

    return asyncio.run(run())


def keep_alive(payload: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(payload), extra, payload)


# ---- the real server: what aiohttp gets, this gets ------------------------------------------------


PROMPTS = ["hello", "FAIL500", "FAIL429", "FAIL400", "FAILMALFORMED", "AUTH"]


def test_statuses_bodies_and_retry_after_are_what_aiohttp_gets(openai_server_factory):
    server = openai_server_factory(latency=0.005, retry_after=0.7)
    url = server.base_url + "/chat/completions"
    headers = {"Content-Type": "application/json"}

    def content(raw: bytes):
        """The body, without what differs from one answer to the next (id, timestamp)."""
        try:
            payload = json.loads(raw)
        except ValueError:
            return raw
        return (
            {k: v for k, v in payload.items() if k not in ("id", "created")}
            if isinstance(payload, dict)
            else payload
        )

    async def both():
        ours, theirs = [], []
        client = Origin(url, 5.0)
        async with aiohttp.ClientSession() as session:
            for text in PROMPTS:
                got = await client.post(body(text), headers)
                ours.append((got.status, content(got.body), got.retry_after))
                async with session.post(url, data=body(text), headers=headers) as response:
                    raw = await response.read()
                    theirs.append((response.status, content(raw), response.headers.get("Retry-After")))
        client.close()
        return ours, theirs

    ours, theirs = asyncio.run(both())
    assert ours == theirs
    assert [o[0] for o in ours] == [200, 500, 429, 400, 200, 401]
    assert ours[2][2] == "0.7"


def backend_for(url: str, **config) -> OpenAIBackend:
    base = url.removesuffix("/chat/completions")
    return OpenAIBackend(OpenAIConfig(provider="openai", model="test-model", api_base=base, **config))


def outcome(result: Completion | LLMError) -> tuple:
    if isinstance(result, LLMError):
        return ("error", result.kind, result.status, result.retry_after)
    return ("ok", result.text, result.prompt_tokens, result.completion_tokens, result.finish_reason)


def test_the_backend_classifies_every_failure_of_the_real_server(openai_server_factory):
    server = openai_server_factory(latency=0.005, retry_after=0.7, timeout_delay=3.0)
    backend = backend_for(server.base_url + "/chat/completions", timeout=0.5)

    async def run():
        out = []
        for text in [*PROMPTS, "FAILRESET", "FAILTIMEOUT"]:
            try:
                out.append(outcome(await backend.complete(req(text))))
            except LLMError as exc:
                out.append(outcome(exc))
        await backend.aclose()
        return out

    started = time.monotonic()
    results = asyncio.run(run())
    assert time.monotonic() - started < 2.5  # the 0.5 s limit cut the 3 s stall short
    assert results[0] == ("ok", "echo: hello", *results[0][2:4], "stop")
    kinds = [r[1] if r[0] == "error" else "ok" for r in results]
    assert kinds == ["ok", "server", "rate_limit", "bad_request", "server", "auth", "connection", "timeout"]
    assert results[2][3] == 0.7


def test_the_engine_answers_retries_and_shares_calls_through_it(openai_server_factory):
    server = openai_server_factory(latency=0.02, retry_after=0.05, fail_first_n={"rate_limit": 5})
    backend = backend_for(server.base_url + "/chat/completions", max_concurrency=100, backoff=0.01)
    engine = LLMEngine({"default": backend}, None)
    requests = [req(f"q{i % 150}") for i in range(300)]  # duplicates share one call
    try:
        stats = LLMStats()
        results = engine.complete("default", requests, stats, Policy(), "stage")
    finally:
        engine.close()
    assert [r.text for r in results] == [f"echo: q{i % 150}" for i in range(300)]
    assert (stats.calls, stats.retries, stats.shared) == (155, 5, 150)
    assert server.max_in_flight > 50  # the calls ran side by side


# ---- connections --------------------------------------------------------------------------------


def test_one_connection_serves_calls_one_after_another(raw_server):
    async def handler(reader, writer):
        while await server.read_request(reader):
            writer.write(keep_alive(completion("ok")))

    server = raw_server(handler)
    results = calls(server.url, 20)
    assert all(isinstance(r, Response) and r.status == 200 for r in results)
    assert server.connections == 1 and len(server.requests) == 20


def test_the_request_head_names_host_path_query_and_headers(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(keep_alive(completion("ok")))

    server = raw_server(handler)
    url = f"http://user:secret@127.0.0.1:{server.port}/openai/deployments/x/chat/completions?api-version=2024-06-01"

    async def run():
        client = Origin(url, 5.0)
        await client.post(b'{"a": 1}', {"Authorization": "Bearer k", "X-Extra": "v\twith tab"})
        client.close()

    asyncio.run(run())
    head = server.requests[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "POST /openai/deployments/x/chat/completions?api-version=2024-06-01 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines and "secret" not in head
    assert "Authorization: Bearer k" in lines and "X-Extra: v\twith tab" in lines
    assert "Content-Length: 8" in lines


def test_connection_close_opens_a_new_connection_for_the_next_call(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(keep_alive(completion("ok"), b"Connection: close\r\n"))

    server = raw_server(handler)
    results = calls(server.url, 3)
    assert [r.status for r in results] == [200, 200, 200]  # type: ignore[union-attr]
    assert server.connections == 3


def test_a_connection_closed_while_idle_is_replaced_without_the_call_failing(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(keep_alive(completion("ok")))  # says keep-alive, then closes anyway
        await writer.drain()

    server = raw_server(handler)

    async def run():
        client = Origin(server.url, 5.0)
        first = await client.post(body("a"), {})
        await asyncio.sleep(0.1)  # the server's close arrives while the connection is idle
        second = await client.post(body("b"), {})
        client.close()
        return first, second

    first, second = asyncio.run(run())
    assert first.status == second.status == 200
    assert len(server.requests) == 2 and server.connections == 2


def test_a_reused_connection_closed_without_an_answer_fails_and_is_not_sent_again(raw_server):
    """The server read the call, then closed: it may have acted on it, so the client does not
    send it again by itself (the engine retries it, counted)."""

    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(keep_alive(completion("ok")))
        await writer.drain()
        await server.read_request(reader)  # the second call arrives; drop it unanswered

    server = raw_server(handler)
    first, second = calls(server.url, 2)
    assert isinstance(first, Response) and first.status == 200
    assert isinstance(second, HTTPError) and second.kind == "connection"
    assert len(server.requests) == 2 and server.connections == 1


def test_a_new_connection_closed_without_an_answer_fails_and_is_not_sent_again(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)

    server = raw_server(handler)
    (result,) = calls(server.url)
    assert isinstance(result, HTTPError) and result.kind == "connection"
    assert len(server.requests) == 1


def test_an_answer_cut_short_fails_as_a_connection_error(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"choices":')

    server = raw_server(handler)
    (result,) = calls(server.url)
    assert isinstance(result, HTTPError) and result.kind == "connection"
    assert len(server.requests) == 1  # not sent again: the server had answered in part


def test_an_unsolicited_answer_on_an_idle_connection_retires_it(raw_server):
    async def handler(reader, writer):
        if server.connections == 1:
            await server.read_request(reader)
            writer.write(keep_alive(completion("ok")))
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")  # then hangs on
            await asyncio.sleep(5)
            return
        while await server.read_request(reader):
            writer.write(keep_alive(completion("fresh")))

    server = raw_server(handler)

    async def run():
        client = Origin(server.url, 5.0)
        await client.post(body("a"), {})
        await asyncio.sleep(0.2)
        started = time.monotonic()
        second = await client.post(body("b"), {})
        client.close()
        return second, time.monotonic() - started

    second, seconds = asyncio.run(run())
    assert second.status == 200 and b"fresh" in second.body
    assert seconds < 1.0  # not sent on the retired connection, where nothing would answer


def test_bytes_after_an_answer_retire_the_connection(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        # One packet: the answer, then the start of another nobody asked for.
        writer.write(keep_alive(completion("ok")) + b"HTTP/1.1 200 OK\r\nContent-Le")
        await asyncio.sleep(5)

    server = raw_server(handler)
    results = calls(server.url, 2)
    assert [r.status for r in results] == [200, 200]  # type: ignore[union-attr]
    assert server.connections == 2  # the second call did not inherit half an answer


def test_a_host_name_is_looked_up_once_for_a_burst_of_connections(raw_server, monkeypatch):
    async def handler(reader, writer):
        while await server.read_request(reader):
            await asyncio.sleep(0.05)
            writer.write(keep_alive(completion("ok")))

    server = raw_server(handler)
    lookups = []
    real = asyncio.BaseEventLoop.getaddrinfo

    async def getaddrinfo(self, host, *args, **kwargs):
        lookups.append(host)
        return await real(self, host, *args, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)

    async def run():
        client = Origin(f"http://localhost:{server.port}/v1/chat/completions", 5.0)
        answers = await asyncio.gather(*(client.post(body(f"q{i}"), {}) for i in range(20)))
        client.close()
        return answers

    answers = asyncio.run(run())
    assert [a.status for a in answers] == [200] * 20
    assert server.connections == 20 and lookups == ["localhost"]


def test_a_refused_connection_is_a_connection_error():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    (result,) = calls(f"http://127.0.0.1:{port}/v1/chat/completions")
    assert isinstance(result, HTTPError) and result.kind == "connection" and str(port) in result.message


def test_a_cancelled_call_closes_its_connection(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        await asyncio.sleep(0.3)
        writer.write(keep_alive(completion("late")))
        await server.read_request(reader)  # until the client closes
        server.closed_by_client = True

    server = raw_server(handler)
    server.closed_by_client = False

    async def run():
        client = Origin(server.url, 5.0)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.post(body("a"), {}), 0.05)
        again = await client.post(body("b"), {})
        client.close()
        return again

    asyncio.run(run())
    time.sleep(0.5)
    assert server.closed_by_client and server.connections == 2


# ---- framing and encodings ----------------------------------------------------------------------


def test_a_chunked_answer_in_many_pieces(raw_server):
    payload = completion("chunked " * 200)

    async def handler(reader, writer):
        while await server.read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in range(0, len(payload), 97):
                piece = payload[start : start + 97]
                writer.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0)
            writer.write(b"0\r\nX-Trailer: t\r\n\r\n")

    server = raw_server(handler)
    results = calls(server.url, 2)
    assert [r.body for r in results] == [payload, payload]  # type: ignore[union-attr]
    assert server.connections == 1  # a chunked answer keeps the connection


def test_an_answer_that_ends_with_the_connection(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + completion("till the end"))

    server = raw_server(handler)
    results = calls(server.url, 2)
    assert [r.body for r in results] == [completion("till the end")] * 2  # type: ignore[union-attr]
    assert server.connections == 2


@pytest.mark.parametrize(
    "encoding, encode",
    [
        (b"gzip", gzip.compress),
        (b"deflate", zlib.compress),
        (b"deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
    ],
)
def test_compressed_answers_are_decoded(raw_server, encoding, encode):
    payload = completion("squeezed " * 100)

    async def handler(reader, writer):
        while await server.read_request(reader):
            writer.write(keep_alive(encode(payload), b"Content-Encoding: %s\r\n" % encoding))

    server = raw_server(handler)
    assert [r.body for r in calls(server.url, 2)] == [payload, payload]  # type: ignore[union-attr]


def test_an_unknown_encoding_is_a_protocol_error(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(keep_alive(b"\x1b\x00", b"Content-Encoding: br\r\n"))

    server = raw_server(handler)
    (result,) = calls(server.url)
    assert isinstance(result, HTTPError) and result.kind == "protocol" and "'br'" in result.message


def test_an_interim_answer_is_skipped(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + keep_alive(completion("final")))

    server = raw_server(handler)
    (result,) = calls(server.url)
    assert isinstance(result, Response) and result.status == 200 and b"final" in result.body


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTX/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n",
    ],
)
def test_a_malformed_answer_is_a_protocol_error(raw_server, garbage):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(garbage)
        await asyncio.sleep(1)

    server = raw_server(handler)
    (result,) = calls(server.url)
    assert isinstance(result, HTTPError) and result.kind == "protocol"


# ---- limits: time and size ----------------------------------------------------------------------


def test_a_silent_server_times_out_on_time_and_the_connection_is_dropped(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        server.eof = await reader.read() == b""  # until the client gives up

    server = raw_server(handler)
    server.eof = False
    started = time.monotonic()
    (result,) = calls(server.url, timeout=0.3)
    assert isinstance(result, HTTPError) and result.kind == "timeout"
    assert 0.25 < time.monotonic() - started < 1.5
    time.sleep(0.2)
    assert server.eof


def test_a_server_dripping_bytes_forever_is_cut_off_at_the_time_limit(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"1\r\n \r\n")
            await writer.drain()
            await asyncio.sleep(0.02)

    server = raw_server(handler)
    started = time.monotonic()
    (result,) = calls(server.url, timeout=0.4)
    assert isinstance(result, HTTPError) and result.kind == "timeout"
    assert time.monotonic() - started < 2.0


def test_an_endless_answer_stops_at_the_size_cap(raw_server):
    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        block = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
        while True:
            writer.write(block)
            await writer.drain()

    server = raw_server(handler)
    (result,) = calls(server.url, timeout=20, max_body=1 << 20)
    assert isinstance(result, HTTPError) and result.kind == "protocol" and "larger than" in result.message


def test_a_compression_bomb_stops_at_the_size_cap(raw_server):
    bomb = gzip.compress(b"\0" * (50 << 20))  # ~50 KB that would become 50 MB

    async def handler(reader, writer):
        await server.read_request(reader)
        writer.write(keep_alive(bomb, b"Content-Encoding: gzip\r\n"))

    server = raw_server(handler)
    (result,) = calls(server.url, max_body=1 << 20)
    assert (
        isinstance(result, HTTPError)
        and result.kind == "protocol"
        and "decoded answer is larger" in result.message
    )


# ---- headers and TLS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("X-Evil", "a\r\nX-Injected: 1"),
        ("X-Evil", "a\nb"),
        ("Bad Name", "v"),
        ("X-Nul", "a\x00b"),
        ("Host", "other"),
    ],
)
def test_headers_that_would_break_the_request_are_refused_at_validation(name, value):
    with pytest.raises(ValidationError):
        OpenAIConfig(provider="openai", model="m", headers={name: value})
    with pytest.raises(ValueError):
        asyncio.run(Origin("http://127.0.0.1:9/v1/chat/completions", 1.0).post(b"{}", {name: value}))


def test_a_key_with_a_line_break_is_an_auth_error(monkeypatch):
    monkeypatch.setenv("BROKEN_KEY", "sk-abc\r\nX-Injected: 1")
    backend = OpenAIBackend(
        OpenAIConfig(provider="openai", model="m", api_base="http://127.0.0.1:9/v1", api_key_env="BROKEN_KEY")
    )
    with pytest.raises(LLMError) as caught:
        asyncio.run(backend.complete(req("x")))
    assert caught.value.kind == "auth" and "line break" in caught.value.message
    assert "sk-abc" not in caught.value.message


def test_only_http_and_https_urls():
    for url in ("ftp://host/v1", "unix:///tmp/socket", "http:///no-host", "localhost:8000/v1"):
        with pytest.raises(ValueError):
            Origin(url, 1.0)
        with pytest.raises(ValidationError, match="not an http"):  # `dataflow validate` says so
            OpenAIConfig(provider="openai", model="m", api_base=url)


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server with a certificate for 127.0.0.1 from a test CA; yields (url, CA file)."""
    import ssl

    trustme = pytest.importorskip("trustme")  # a dev dependency: always there in CI
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def handler(reader, writer):
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                writer.write(keep_alive(completion("secure")))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def start():
        return await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result()
    port = server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}/v1/chat/completions", ca_file
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_tls_with_a_trusted_certificate(tls_server, monkeypatch):
    url, ca_file = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # the default context's CA list
    results = calls(url, 2)
    assert [r.body for r in results] == [completion("secure")] * 2  # type: ignore[union-attr]


def test_tls_refuses_a_certificate_it_cannot_verify(tls_server):
    url, _ = tls_server
    (result,) = calls(url)
    assert isinstance(result, HTTPError) and result.kind == "connection"
    assert "certificate" in result.message.lower()
