"""What the operators that execute code share: the `sandbox` param, one sandbox per stage, and
running rows concurrently (each run is a process that mostly waits)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pydantic import Field

from dataflow_cli.operator import NoParams
from dataflow_cli.sandbox.process import Sandbox, SandboxPolicy
from dataflow_cli.sandbox.verify import TestRunner

T = TypeVar("T")
R = TypeVar("R")

# Sandboxed runs are processes the parent only waits on; a few more than cores keeps them busy
# while others start up. Shared by every stage, so concurrent batches do not multiply it.
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2), thread_name_prefix="sandbox")
        return _POOL


def run_all(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`fn` over `items` on the sandbox pool, results in order."""
    return list(_pool().map(fn, items))


class SandboxParams(NoParams):
    sandbox: SandboxPolicy = Field(
        default_factory=SandboxPolicy,
        description="Limits and isolation of every run (timeout_s, cpu_s, memory_mb, max_output_kb, "
        "processes, file_size_mb, open_files, disk_mb, network, filesystem).",
    )


class SandboxUser:
    """Mixin for operators whose Params include `sandbox`."""

    params: Any
    _lock = threading.Lock()

    @property
    def runner(self) -> TestRunner:
        runner = self.__dict__.get("_runner")
        if runner is None:
            with self._lock:
                runner = self.__dict__.get("_runner")
                if runner is None:  # also checks that the machine gives the isolation required
                    runner = self.__dict__["_runner"] = TestRunner(Sandbox(self.params.sandbox))
        return runner

    def run_limits(self) -> dict[str, Any]:
        """The policy and the isolation in force (detected on this machine), for the run stats."""
        return {"sandbox": self.runner.sandbox.describe()}
