"""Worker processes for sympy checks, each check under a time limit that kills a runaway worker.

sympy can spend unbounded time in pure Python or inside C big-integer code (`10^{10^{10}}`),
where no signal or thread can interrupt it. A check therefore runs in a separate process; when
its time is up the process is killed (SIGKILL) and replaced, and the check's verdict is
"timeout". This works from any thread, unlike `signal.alarm`, which math-verify uses and which
only works on the main thread. Each worker also caps its address space (`memory_mb`), so a huge
allocation fails fast with MemoryError instead of swapping.

Workers are plain subprocesses (`python -m dataflow_operators.math._worker`) speaking JSON lines
on stdin/stdout: no fork of a multi-threaded parent, no pickling of untrusted data.
"""

from __future__ import annotations

import atexit
import json
import queue
import selectors
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from dataflow_cli.sandbox.workers import JsonLineWorker

STARTUP_SECONDS = 120.0  # importing sympy on a loaded 2-core machine can take a while


class WorkerError(RuntimeError):
    """A worker could not start (e.g. sympy is missing)."""


def _worker(memory_mb: int) -> JsonLineWorker:
    package_root = str(Path(__file__).resolve().parents[2])
    env = {"DATAFLOW_MATH_MEMORY_MB": str(memory_mb)}
    return JsonLineWorker("dataflow_operators.math._worker", package_root, env)


class VerifyPool:
    """`run(tasks, time_limit)` -> one result dict per task, in order. Thread-safe (one run at a time)."""

    def __init__(self, workers: int = 2, memory_mb: int = 2048):
        self.size = max(1, workers)
        self.memory_mb = memory_mb
        self.workers: list[JsonLineWorker] = []
        self.lock = threading.Lock()
        self.kills = 0  # workers killed at their time limit (for stats and benches)

    def _spawn(self) -> JsonLineWorker:
        return _on_spawner_thread(lambda: _worker(self.memory_mb))

    def run(self, tasks: list[dict[str, Any]], time_limit: float) -> list[dict[str, Any]]:
        with self.lock:
            return self._run(tasks, time_limit)

    def _run(self, tasks: list[dict[str, Any]], time_limit: float) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(tasks)
        queue = deque(range(len(tasks)))
        self.workers = [w for w in self.workers if w.proc.poll() is None]
        while len(self.workers) < min(self.size, max(1, len(tasks))):
            self.workers.append(self._spawn())
        selector = selectors.DefaultSelector()
        try:
            for worker in self.workers:
                assert worker.proc.stdout is not None
                selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
            while queue or any(w.task is not None for w in self.workers):
                for worker in self.workers:
                    if worker.ready and worker.task is None and queue:
                        index = queue.popleft()
                        worker.send(index, tasks[index], time_limit)
                now = time.monotonic()
                waits = [w.deadline - now for w in self.workers if w.task is not None]
                waits += [w.started + STARTUP_SECONDS - now for w in self.workers if not w.ready]
                timeout = max(0.0, min(waits)) if waits else None
                for key, _ in selector.select(timeout):
                    worker = key.data
                    line = worker.proc.stdout.readline()
                    if not line:  # the worker died (e.g. out of memory at the C level)
                        self._replace(worker, selector, results, "worker crashed")
                        continue
                    message = json.loads(line)
                    if message.get("ready"):
                        worker.ready = True
                        continue
                    if worker.task is not None:
                        results[worker.task] = message
                        worker.task = None
                now = time.monotonic()
                for worker in list(self.workers):
                    if worker.task is not None and now >= worker.deadline:
                        self.kills += 1
                        self._replace(worker, selector, results, f"timeout after {time_limit:g}s")
                    elif not worker.ready and now >= worker.started + STARTUP_SECONDS:
                        worker.kill()
                        raise WorkerError(
                            "the sympy worker did not start; is the `math` extra installed? "
                            "(pip install 'dataflow-cli[math]')"
                        )
        finally:
            selector.close()
        return results  # type: ignore[return-value]

    def _replace(self, worker: JsonLineWorker, selector, results: list, reason: str) -> None:
        if worker.task is not None:
            results[worker.task] = {"equal": False, "reason": reason}
        elif not worker.ready:
            raise WorkerError(
                "the sympy worker exited at start; is the `math` extra installed? "
                "(pip install 'dataflow-cli[math]')"
            )
        selector.unregister(worker.proc.stdout)
        worker.kill()
        fresh = self._spawn()
        self.workers[self.workers.index(worker)] = fresh
        selector.register(fresh.proc.stdout, selectors.EVENT_READ, fresh)

    def close(self) -> None:
        with self.lock:
            for worker in self.workers:
                worker.kill()
            self.workers = []


# Workers ask the kernel to kill them when their parent dies (PR_SET_PDEATHSIG), but "parent"
# there is the thread that started them: a worker started by an executor thread would die with
# that thread. So every worker is started by one long-lived thread.
_spawn_requests: queue.Queue = queue.Queue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _serve_spawns() -> None:
    while True:
        make, box, done = _spawn_requests.get()
        try:
            box.append(make())
        except BaseException as exc:  # noqa: BLE001  handed back to the caller, raised there
            box.append(exc)
        done.set()


def _on_spawner_thread(make):
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_serve_spawns, name="dataflow-math-spawner", daemon=True)
            _spawner.start()
    box: list = []
    done = threading.Event()
    _spawn_requests.put((make, box, done))
    done.wait()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


_pools: dict[tuple[int, int], VerifyPool] = {}
_pools_lock = threading.Lock()


def shared_pool(workers: int, memory_mb: int) -> VerifyPool:
    """One pool per configuration per process, shared by every stage that verifies answers."""
    with _pools_lock:
        key = (workers, memory_mb)
        if key not in _pools:
            _pools[key] = VerifyPool(workers, memory_mb)
        return _pools[key]


@atexit.register
def _close_pools() -> None:
    for pool in list(_pools.values()):
        pool.close()
