"""Pytest fixtures for the OpenAI-compatible test server (`tests.support.openai_server`).

Load them with `pytest_plugins = ["tests.support.fixtures"]` (in the root conftest.py or a test module).

* `openai_server`: a started `OpenAIServer` (latency 0, default knobs), stopped after the test.
* `openai_server_factory`: `factory(**knobs) -> OpenAIServer`, started; all are stopped after the test.
* `openai_server_process_factory`: `factory(**knobs) -> OpenAIServerProcess`, the server in a child
  process (e.g. `cpu=1` to pin it); all are stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.openai_server import OpenAIServer, OpenAIServerProcess


@pytest.fixture
def openai_server_factory() -> Iterator[Callable[..., OpenAIServer]]:
    servers: list[OpenAIServer] = []

    def start(**knobs: Any) -> OpenAIServer:
        server = OpenAIServer(**knobs)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def openai_server(openai_server_factory: Callable[..., OpenAIServer]) -> OpenAIServer:
    return openai_server_factory(latency=0.0)


@pytest.fixture
def openai_server_process_factory() -> Iterator[Callable[..., OpenAIServerProcess]]:
    procs: list[OpenAIServerProcess] = []

    def start(**knobs: Any) -> OpenAIServerProcess:
        proc = OpenAIServerProcess(**knobs)
        procs.append(proc)
        return proc.start()

    yield start
    for proc in reversed(procs):
        proc.stop()
