"""A small OpenAI chat-completions server for backend tests.

Behaviour is chosen by the request's model name (after any `provider/` prefix):

    anything else      200 with an answer (JSON when `response_format` asks for it)
    status-<code>      that HTTP status with an OpenAI-style error body; 429 sends Retry-After: 7,
                       401 echoes the bearer token back (as some providers do) so tests can check
                       that clients redact it
    slow-<seconds>     sleeps that long, then answers

Every request is recorded (`server.requests`: list of {"path", "headers", "body"}).

In a test: `with MiniOpenAI() as server: ... server.base_url ...` (the server runs on its own
event loop in a thread, so synchronous tests and `asyncio.run` clients both work). Standalone, for
benchmarks: `python tests/support/mini_openai.py --port 8123` (prints the base URL and serves
until killed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    return web.json_response(body, status=status, headers=headers)


def _answer_text(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_schema", "json_object"):
        return json.dumps({"answer": "ok", "score": 3})
    messages = body.get("messages") or [{}]
    last = messages[-1].get("content") or ""
    return f"echo: {last}"


class MiniOpenAI:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # --- handlers -------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "mini", "object": "model", "owned_by": "test"}]}
        )

    async def _chat(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "body is not JSON")
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        model = str(body.get("model", ""))
        name = model.rsplit("/", 1)[-1]
        if name.startswith("status-"):
            status = int(name.split("-", 1)[1])
            if status == 429:
                return _error(429, "Rate limit reached, slow down", headers={"Retry-After": "7"})
            if status == 401:
                token = request.headers.get("Authorization", "").removeprefix("Bearer ")
                return _error(401, f"Incorrect API key provided: {token}.")
            return _error(status, f"simulated HTTP {status}")
        if name.startswith("slow-"):
            await asyncio.sleep(float(name.split("-", 1)[1]))
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "messages must be a non-empty list")
        text = _answer_text(body)
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"]) + 3
        completion_tokens = len(text.split())
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    # --- lifecycle ------------------------------------------------------------------------------

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> MiniOpenAI:
        self._thread = threading.Thread(target=self._run, name="mini-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("mini OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> MiniOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = MiniOpenAI(args.host, args.port)
    server.requests = _Discard()  # a long benchmark must not grow memory
    server.start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


class _Discard(list):
    def append(self, item: object) -> None:
        pass


if __name__ == "__main__":
    main()
