"""The HTTP calls of an `openai` backend, in this process or in processes of their own.

At high concurrency against a fast server the client's CPU decides throughput, and one Python
process runs on one core at a time (the GIL): the engine's own work per row (prompts, cache,
checkpoints) would come out of the time left for HTTP. So a busy backend hands its calls to
child processes that do nothing else: the parent sends request bodies ready to post, a child
posts them with aiohttp and sends back each answer read into a few plain values. Everything
else (cache, retries, rate limits, budgets, stats) stays in the parent, which gets the same
`Completion` or `LLMError` per call as a call made in the parent gives (`post` is the one
code path for both).

One child is spawned; once it has imported aiohttp (~0.25 s of CPU) it forks the others, so
the imports are paid once (a fork of a one-thread process is safe). Until they are ready, the
parent makes the calls itself, so a run never waits for them. A child exits as soon as its
socket closes (the parent closed the backend, or died); the spawned one first reaps its forks,
so that the CPU time of all of them shows in the parent's `RUSAGE_CHILDREN`. If a child dies
while the parent uses it, the calls in flight and every later one fail as
`LLMError("worker")`, which stops the run (answers received so far are cached: a rerun sends
none of them again).

Wire format over a socketpair, both ways: frames of a 4-byte length and a `marshal`ed list of
tuples (both ends run the same interpreter). Parent to child: `(call id, body)` posts a body,
`(-1, headers)` sets the headers of later posts. Child to parent: `(-1, "ready")` once, then
`(call id, 0, text, prompt tokens, completion tokens, finish reason)` per answer or
`(call id, 1, kind, message, status, retry after)` per failed call. The messages of one event
loop step share a frame.

This module imports nothing heavy at top level: it is also the child's program
(`python -m dataflow_cli.llm.backends.http_process FD[,FD...] URL LIMIT TIMEOUT`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import marshal
import os
import signal
import struct
import subprocess
import sys
from typing import Any

from dataflow_cli.llm.types import Completion, LLMError, parse_retry_after

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("!I")
_CONTROL = -1  # call id of control messages (ready, headers)


async def post(session: Any, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Completion:
    """One chat completion: the answer, or the LLMError the call failed with (raised)."""
    import aiohttp

    try:
        async with session.post(url, data=body, headers=headers) as response:
            raw = await response.read()
            if response.status != 200:
                raise LLMError.from_status(
                    response.status,
                    error_message(raw, response.status),
                    parse_retry_after(response.headers.get("Retry-After")),
                )
    except LLMError:
        raise
    except asyncio.TimeoutError:
        raise LLMError("timeout", f"no answer within {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise LLMError("connection", f"{type(exc).__name__}: {exc}") from None
    return parse_completion(raw)


def make_session(limit: int, timeout: float) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=timeout),  # one object, not one per call
    )


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


class _Frames(asyncio.Protocol):
    """Length-prefixed marshal frames; each decoded list goes to `on_messages`, and writes of
    one loop step share a frame."""

    def __init__(self, on_messages, on_lost):
        self.on_messages = on_messages
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.outbox: list[tuple] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:
            (length,) = _LENGTH.unpack_from(buffer, start)
            if len(buffer) - start - 4 < length:
                break
            messages = marshal.loads(memoryview(buffer)[start + 4 : start + 4 + length])
            start += 4 + length
            self.on_messages(messages)
        if start:
            del buffer[:start]

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.on_lost()

    def send(self, message: tuple) -> None:
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self.outbox.append(message)

    def _flush(self) -> None:
        outbox, self.outbox = self.outbox, []
        if self.transport is not None and outbox:
            blob = marshal.dumps(outbox)
            self.transport.write(_LENGTH.pack(len(blob)) + blob)


class HTTPProcess:
    """The parent's end: a child process posting bodies to one URL (use on one event loop)."""

    def __init__(self, url: str, limit: int, timeout: float, on_ready=None):
        self.on_ready = on_ready  # called with this object once the child answers calls
        self.url = url
        self.limit = limit
        self.timeout = timeout
        self.ready = False  # the child has answered the ready message
        self.dead: str | None = None  # why the child is gone, once it is
        self._proc: subprocess.Popen | None = None
        self._frames: _Frames | None = None
        self._calls: dict[int, asyncio.Future] = {}
        self._next = 0
        self._headers: dict[str, str] | None = None

    @classmethod
    async def start(
        cls, count: int, url: str, limit: int, timeout: float, on_ready=None
    ) -> list[HTTPProcess]:
        """`count` processes, each allowed `limit` calls at once. One child is spawned; once it
        has imported aiohttp it forks the others (a fork of a one-thread process is safe, and
        the imports, ~0.25 s of CPU, are paid once)."""
        import socket

        pairs = [socket.socketpair() for _ in range(count)]
        fds = [child.fileno() for _, child in pairs]
        # The child imports this module the way the parent found it, whatever the working directory.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        path = os.environ.get("PYTHONPATH")
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + path if path else root)
        argv = [",".join(map(str, fds)), url, str(limit), str(timeout)]
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", __name__, *argv], pass_fds=fds, stdin=subprocess.DEVNULL, env=env
            )
        except OSError:
            for parent, _ in pairs:
                parent.close()
            raise
        finally:
            for _, child in pairs:
                child.close()
        loop = asyncio.get_running_loop()
        processes: list[HTTPProcess] = []
        for parent, _ in pairs:
            process = cls(url, limit, timeout, on_ready)
            process._proc = proc if not processes else None  # the spawned one; the others are its forks

            def frames(process: HTTPProcess = process) -> _Frames:
                return _Frames(process._received, process._lost)

            _, process._frames = await loop.create_connection(frames, sock=parent)
            processes.append(process)
        return processes

    def load(self) -> int:
        """Calls in flight."""
        return len(self._calls)

    async def post(self, body: bytes, headers: dict[str, str]) -> Completion:
        if self.dead is not None:
            raise LLMError("worker", self.dead)
        assert self._frames is not None
        if headers is not self._headers:  # the backend builds a new dict only when they change
            self._headers = headers
            self._frames.send((_CONTROL, headers))
        self._next += 1
        call = self._next
        future = self._calls[call] = asyncio.get_running_loop().create_future()
        self._frames.send((call, body))
        return await future

    def _received(self, messages: list[tuple]) -> None:
        calls = self._calls
        for message in messages:
            future = calls.pop(message[0], None)
            if future is None:
                if message[0] == _CONTROL:
                    self.ready = True
                    if self.on_ready is not None:
                        self.on_ready(self)
                continue
            if future.done():  # its caller was cancelled
                continue
            if message[1] == 0:
                future.set_result(Completion(message[2], message[3], message[4], message[5]))
            else:
                future.set_exception(
                    LLMError(message[2], message[3], status=message[4], retry_after=message[5])
                )

    def _lost(self) -> None:
        proc = self._proc
        code = proc.poll() if proc is not None else None
        if self.dead is None:
            self.dead = "an HTTP process exited" + (f" with code {code}" if code is not None else "")
            if not self.ready:
                log.warning("%s before it was ready; calls stay in this process", self.dead)
        for future in self._calls.values():
            if not future.done():
                future.set_exception(LLMError("worker", self.dead))
                future.exception()  # seen: a cancelled caller must not log it as never retrieved
        self._calls.clear()

    def close(self) -> None:
        """Close the socket: the child sees the end and exits."""
        if self.dead is None:
            self.dead = "the HTTP process was closed"
        if self._frames is not None and self._frames.transport is not None:
            self._frames.transport.close()

    async def wait(self) -> None:
        """Reap the spawned child (after closing every socket: it waits for its forks), so the
        CPU time of all of them counts in this process's `RUSAGE_CHILDREN`."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---- the child ---------------------------------------------------------------------------------


async def _serve(fd: int, url: str, limit: int, timeout: float) -> None:
    import socket

    loop = asyncio.get_running_loop()
    session = make_session(limit, timeout)
    closed = loop.create_future()
    headers: dict[str, str] = {}
    tasks: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones

    async def call(call_id: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            c = await post(session, url, body, headers, timeout)
            frames.send((call_id, 0, c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason))
        except LLMError as exc:
            frames.send((call_id, 1, exc.kind, exc.message, exc.status, exc.retry_after))
        except Exception as exc:  # a bug here must come back as a failed call, not a hang
            frames.send((call_id, 1, "backend", f"{type(exc).__name__}: {exc}", None, None))

    def received(messages: list[tuple]) -> None:
        nonlocal headers
        for call_id, value in messages:
            if call_id == _CONTROL:
                headers = value
            else:
                task = loop.create_task(call(call_id, value, headers))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    def lost() -> None:
        if not closed.done():
            closed.set_result(None)

    _, frames = await loop.create_connection(lambda: _Frames(received, lost), sock=socket.socket(fileno=fd))
    frames.send((_CONTROL, "ready"))
    # Until the parent closed its end or died. Calls in flight then are of no use: the process
    # exits at once (the parent waits for it), and the kernel closes its connections.
    await closed


def _main(argv: list[str]) -> None:
    # Ctrl-C reaches the whole process group: the parent decides, the child ends with its socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fds, url, limit, timeout = [int(fd) for fd in argv[0].split(",")], argv[1], int(argv[2]), float(argv[3])
    import aiohttp  # noqa: F401 - before the forks, so that they share it

    mine, forks = fds[0], list[int]()
    for fd in fds[1:]:
        pid = os.fork()
        if pid == 0:  # a fork serves one socket
            mine, forks = fd, []
            break
        forks.append(pid)
    for fd in fds:
        if fd != mine:
            os.close(fd)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_serve(mine, url, limit, timeout))
    for pid in forks:  # their CPU time then counts in ours, and so in the parent's RUSAGE_CHILDREN
        os.waitpid(pid, 0)
    os._exit(0)


if __name__ == "__main__":
    _main(sys.argv[1:])
