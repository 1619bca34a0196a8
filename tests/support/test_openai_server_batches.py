"""The test server's Batch API: files, batches moving validating -> in_progress -> completed,
output and error files matched by custom_id, validation failures, forced terminal states."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from tests.support.openai_server import OpenAIServer


def call(server: OpenAIServer, method: str, path: str, body: Any = None, *, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = None
    if isinstance(body, bytes):  # a JSONL upload
        boundary = uuid.uuid4().hex
        data = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n\r\n'
            ).encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(server.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if path.split("/")[-1] != "content" else raw.decode())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def line(custom_id: str, content: str, **extra: Any) -> dict:
    body = {"model": "test-model", "messages": [{"role": "user", "content": content}], **extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def submit(server: OpenAIServer, lines: list[Any]) -> dict:
    payload = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()
    status, file = call(server, "POST", "/files", payload)
    assert status == 200 and file["object"] == "file" and file["purpose"] == "batch"
    assert file["bytes"] == len(payload)
    body = {"input_file_id": file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    status, batch = call(server, "POST", "/batches", body)
    assert status == 200 and batch["object"] == "batch" and batch["input_file_id"] == file["id"]
    return batch


def wait(server: OpenAIServer, batch_id: str, seen: list[str] | None = None) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, batch = call(server, "GET", f"/batches/{batch_id}")
        assert status == 200
        if seen is not None and (not seen or seen[-1] != batch["status"]):
            seen.append(batch["status"])
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.01)
    raise AssertionError("batch never finished")


def jsonl(server: OpenAIServer, file_id: str) -> dict[str, dict]:
    status, text = call(server, "GET", f"/files/{file_id}/content")
    assert status == 200
    return {item["custom_id"]: item for item in map(json.loads, text.splitlines())}


def test_batch_moves_through_its_states_and_answers_by_custom_id():
    with OpenAIServer(batch_seconds=1.0) as server:
        batch = submit(
            server,
            [
                line("b", "second", max_tokens=1),
                line("a", "first"),
                line("c", "boom FAIL500"),
                line("d", "nope FAIL400"),
                '{"custom_id": "e", "body": {}}',
            ],
        )
        assert batch["status"] == "validating" and batch["request_counts"]["total"] == 5
        seen: list[str] = []
        done = wait(server, batch["id"], seen)
        assert seen[-2:] == ["in_progress", "completed"] and seen[0] in ("validating", "in_progress")
        assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 3}
        assert done["completed_at"] and done["in_progress_at"]
        output = jsonl(server, done["output_file_id"])
        assert set(output) == {"a", "b"}
        first = output["a"]["response"]
        assert (
            first["status_code"] == 200 and first["body"]["choices"][0]["message"]["content"] == "echo: first"
        )
        assert first["body"]["usage"]["prompt_tokens"] == 1 and output["a"]["error"] is None
        cut = output["b"]["response"]["body"]["choices"][0]
        assert cut["message"]["content"] == "echo:" and cut["finish_reason"] == "length"  # max_tokens 1
        errors = jsonl(server, done["error_file_id"])
        assert errors["c"]["response"]["status_code"] == 500 and errors["d"]["response"]["status_code"] == 400
        assert errors["e"]["response"] is None and errors["e"]["error"]["code"] == "invalid_request"
        assert [r.path for r in server.batch_api_requests("POST")] == ["/v1/files", "/v1/batches"]
        assert server.chat_requests == []


def test_invalid_input_fails_the_batch_and_bad_requests_are_refused():
    with OpenAIServer(batch_seconds=0.05) as server:
        batch = submit(server, [line("x", "a"), line("x", "b")])
        failed = wait(server, batch["id"])
        assert failed["status"] == "failed" and failed["output_file_id"] is None
        assert failed["errors"]["data"][0]["code"] == "duplicate_custom_id"
        assert (
            call(
                server,
                "POST",
                "/batches",
                {
                    "input_file_id": "file-nope",
                    "endpoint": "/v1/chat/completions",
                    "completion_window": "24h",
                },
            )[0]
            == 400
        )
        assert call(server, "GET", "/batches/batch_nope")[0] == 404
        assert call(server, "GET", "/files/file-nope/content")[0] == 404


@pytest.mark.parametrize("forced", ["expired", "cancelled"])
def test_forced_terminal_states_and_cancel(forced):
    with OpenAIServer(batch_seconds=0.05, batch_status=forced) as server:
        done = wait(server, submit(server, [line("a", "x")])["id"])
        assert done["status"] == forced and done["output_file_id"] is None
    with OpenAIServer(batch_seconds=60) as server:
        batch = submit(server, [line("a", "x")])
        status, cancelled = call(server, "POST", f"/batches/{batch['id']}/cancel")
        assert status == 200 and cancelled["status"] == "cancelled"


def test_batch_endpoints_require_the_key():
    with OpenAIServer(require_api_key="k1") as server:
        assert call(server, "POST", "/files", b"{}\n")[0] == 401
        assert call(server, "GET", "/batches/x")[0] == 401
        status, file = call(server, "POST", "/files", b"{}\n", key="k1")
        assert status == 200 and call(server, "GET", f"/files/{file['id']}", key="k1")[1]["bytes"] == 3
