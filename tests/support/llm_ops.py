"""Helpers for testing LLM operators against a real `LLMEngine` over the fake backend.

with bound(op, lambda request: "7") as backend:
    result = op.process(batch(text=["a", "b"]))
assert backend.history == [Request(user("..."), Sampling(), None), ...]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from dataflow_cli.llm.backends.fake import FakeBackend, FakeConfig
from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy
from dataflow_cli.llm.operator import LLMClient, LLMOperator
from dataflow_cli.operator import Batch


@contextmanager
def bound(op: LLMOperator, script: Any = None, **config: Any) -> Iterator[FakeBackend]:
    """`op` bound to a fresh engine over a fake backend, scripted (`script(request) -> reply`) or
    configured (`replies=[...]`, `reply_template=...`); yields the backend (its `history`)."""
    backend = (
        FakeBackend.scripted(script, **config)
        if script
        else FakeBackend(FakeConfig(provider="fake", **config))
    )
    engine = LLMEngine({"default": backend}, cache=None)
    try:
        op.bind(LLMClient(engine, "default", LLMStats(), Policy(), "stage"))
        yield backend
    finally:
        engine.close()


def batch(bindings: dict[str, str] | None = None, **columns: Any) -> Batch:
    """A batch of the given columns (plus `_id` "0", "1", ...) seen through `bindings`."""
    n = len(next(iter(columns.values())))
    return Batch(pa.table({"_id": [str(i) for i in range(n)], **columns}), bindings or {})


def user(text: str) -> tuple[dict[str, str], ...]:
    """The messages of a request whose only message is `text` from the user."""
    return ({"role": "user", "content": text},)
