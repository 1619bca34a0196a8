"""Process pools for row-local stages whose work is Python code (every core of one machine).

Vectorised operators (Arrow and numpy kernels, compiled loops) already use both cores from the
executor's threads, because those release the GIL. Operators that loop over rows in Python
(template rendering, PII masking, regex-heavy refiners, per-row parsers) hold the GIL, so their
threads take turns on one core. Such a stage can run in a pool of worker processes instead:

- A stage's `processes:` key is `auto` (the default), `1` (always in this process) or `N > 1`
  (always in a pool of N processes). `dataflow run --processes N` sets the pool size `auto` uses
  (default: the number of CPUs); `--processes 1` keeps every stage in the main process.
- `auto` pools only operators that declare `cpu_bound = True`, and only when it pays: the first
  batch runs in-process while it is timed together with the cost of shipping it (Arrow IPC out,
  the result back); the stage moves to the pool when that batch took at least
  `AUTO_MIN_SECONDS` and shipping costs under `AUTO_MAX_SHIP_SHARE` of it. The workers start
  meanwhile (and stop if no stage uses them); the stage's other batches wait for the decision.
  The decision is logged (run.log).
- LLM and global stages never run in a pool (validation rejects `processes: N > 1` there).

Each worker process rebuilds the pooled operators once, from their declaration (registry name,
params, column bindings, prompt), never by pickling a live operator. Batches travel as Arrow IPC
streams; the operator's result comes back pickled (Arrow arrays pickle as their buffers) and the
executor turns it into the same checkpoint delta as in-process, so checkpoints, rejects and
accounting do not depend on where a batch ran. Workers start through `forkserver` (a clean
server process, safe beside the executor's threads) where available, else `spawn`. A worker that
dies (a crash, the OOM killer) fails the run with a clear error instead of hanging it; finished
batches stay checkpointed, so a rerun resumes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from dataflow_cli.errors import DataflowError

if TYPE_CHECKING:
    from dataflow_cli.operator import Operator
    from dataflow_cli.spec.model import Stage

log = logging.getLogger(__name__)

AUTO = "auto"
AUTO_MIN_SECONDS = 0.25  # a batch quicker than this gains less than a pool's fixed costs
AUTO_MAX_SHIP_SHARE = 0.25  # shipping a batch must cost under this share of computing it


@dataclass(frozen=True)
class StageDeclaration:
    """What a worker process needs to rebuild a stage's operator (plain, picklable values)."""

    index: int
    name: str
    op_name: str
    params: dict[str, Any]
    inputs: dict[str, str]
    outputs: dict[str, str]
    prompt: str | None
    base_dir: str | None

    @classmethod
    def of(cls, stage: Stage) -> StageDeclaration:
        op = stage.operator
        return cls(
            index=stage.index,
            name=stage.name,
            op_name=stage.op_name,
            params=op.params.model_dump(mode="json"),
            inputs=dict(op.input_columns),
            outputs=dict(op.output_columns),
            prompt=op.prompt,
            base_dir=str(op.base_dir) if op.base_dir is not None else None,
        )

    def build(self) -> Operator:
        from dataflow_cli import registry

        cls = registry.load(self.op_name)
        operator = cls(cls.Params.model_validate(self.params), inputs=self.inputs, outputs=self.outputs)
        operator.prompt = self.prompt
        operator.base_dir = Path(self.base_dir) if self.base_dir is not None else None
        return operator


def poolable(stage: Stage) -> bool:
    """Whether the stage may run in a pool at all: row-local and no model behind it."""
    return stage.operator.scope == "row" and not stage.operator.uses_llm


def to_ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(buffer: Any) -> pa.Table:
    return pa.ipc.open_stream(buffer).read_all()


# Worker side ----------------------------------------------------------------------------
_operators: dict[int, Operator] = {}


def _init_worker(declarations: list[StageDeclaration], sys_path: list[str]) -> None:
    # The forkserver started with the driver's path of that moment; plugins found later (a
    # folder added to sys.path since) must resolve here too.
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    for declaration in declarations:
        _operators[declaration.index] = declaration.build()


def _warm_worker() -> None:
    """Nothing: submitted once per worker so the pool starts them before the first real batch."""


def _run_in_worker(index: int, payload: Any) -> bytes:
    from dataflow_cli.operator import Batch

    operator = _operators[index]
    result = operator.process(Batch(from_ipc(payload), operator.input_columns))
    return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)


# Driver side ----------------------------------------------------------------------------
class StagePools:
    """Runs each row-local stage's operator in this process or in a shared worker pool.

    `process(k, batch)` is what the executor calls instead of `operator.process(batch)`; it is
    thread-safe. One pool of `processes` workers serves every pooled stage (each worker holds
    every pooled operator), started on first use and stopped by `close()`.
    """

    def __init__(self, stages: list[Stage], processes: int | None = None):
        self.stages = stages
        self.processes = max(1, processes if processes is not None else (os.cpu_count() or 1))
        # Per stage: None = undecided (auto), else the number of processes it runs on.
        self.mode: dict[int, int | None] = {}
        for k, stage in enumerate(stages):
            self.mode[k] = self._initial_mode(stage)
        self._lock = threading.Lock()
        self._deciding: set[int] = set()
        self._decided = {k: threading.Event() for k in self.mode}
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self.used = False  # a pool was started during the run

    def _initial_mode(self, stage: Stage) -> int | None:
        setting = getattr(stage, "processes", AUTO)
        if not poolable(stage):
            return 1
        if setting == AUTO or setting is None:
            return None if stage.operator.cpu_bound and self.processes > 1 else 1
        return int(setting)

    @property
    def may_pool(self) -> bool:
        """Whether any stage may run in the pool (the executor then keeps enough batches in flight)."""
        return any(mode is None or mode > 1 for mode in self.mode.values())

    @property
    def size(self) -> int:
        """Workers of the pool: the largest pooled stage's count (`auto` stages use `processes`)."""
        sizes = [self.processes if mode is None else mode for mode in self.mode.values() if mode != 1]
        return max(sizes, default=1)

    def decided(self, k: int) -> int | None:
        """Processes stage `k` runs on (1 = in this process), None while `auto` is undecided."""
        return self.mode[k]

    def process(self, k: int, batch: Any) -> Any:
        mode = self.mode[k]
        stage = self.stages[k]
        if mode == 1:
            return stage.operator.process(batch)
        if mode is None:
            with self._lock:
                measuring = k not in self._deciding and self.mode[k] is None
                if measuring:
                    self._deciding.add(k)
            if measuring:
                return self._measure(k, batch)
            # Other batches wait for the decision rather than run in-process beside the measured
            # one: under the GIL they would only slow it down and keep the pool idle afterwards.
            self._decided[k].wait()
            if self.mode[k] == 1:
                return stage.operator.process(batch)
        return self._submit(k, batch)

    def _measure(self, k: int, batch: Any) -> Any:
        """Run the batch in-process, timing it and the cost of shipping it; decide `auto`."""
        stage = self.stages[k]
        # Workers start (spawn, imports, operators built) while the first batch is measured, so a
        # pool that pays is ready when the decision is made; one that does not is shut down.
        self._warm_pool()
        t0 = time.perf_counter()
        try:
            result = stage.operator.process(batch)
        except BaseException:
            self.mode[k] = 1  # the error is the operator's: batches waiting run (and fail) in-process
            self._decided[k].set()
            raise
        compute = time.perf_counter() - t0
        t1 = time.perf_counter()
        payload = to_ipc(_needed(stage, batch.table))
        from_ipc(payload)
        returned = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(returned)
        ship = 2 * (time.perf_counter() - t1)  # both ends serialize and deserialize
        pays = compute >= AUTO_MIN_SECONDS and ship <= AUTO_MAX_SHIP_SHARE * compute
        self.mode[k] = self.processes if pays else 1
        self._decided[k].set()
        if not self.may_pool:
            self._shutdown_pool()
        log.info(
            "stage `%s`: first batch %.3f s in-process, shipping %.3f s: %s",
            stage.name,
            compute,
            ship,
            f"a pool of {self.processes} processes" if pays else "stays in-process",
        )
        return result

    def _submit(self, k: int, batch: Any) -> Any:
        pool = self._ensure_pool()
        stage = self.stages[k]
        try:
            returned = pool.submit(_run_in_worker, k, to_ipc(_needed(stage, batch.table))).result()
        except BrokenProcessPool:
            raise DataflowError(
                f"stage `{stage.name}`: a worker process died (killed, or out of memory) while it ran "
                f"`{stage.op_name}`",
                hint="finished batches are checkpointed: rerun to resume, or set `processes: 1` on the "
                "stage (or `--processes 1`) to run it in the main process",
            ) from None
        return pickle.loads(returned)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the process pool is closed")
            if self._pool is None:
                pooled = [StageDeclaration.of(s) for k, s in enumerate(self.stages) if self.mode[k] != 1]
                self._pool = ProcessPoolExecutor(
                    max_workers=self.size,
                    mp_context=_context(),
                    initializer=_init_worker,
                    initargs=(pooled, list(sys.path)),
                )
                self.used = True
            return self._pool

    def _warm_pool(self) -> None:
        try:
            pool = self._ensure_pool()
            for _ in range(self.size):
                pool.submit(_warm_worker)  # one submit per worker: each starts a process
        except RuntimeError:
            pass  # closed: the run is ending

    def _shutdown_pool(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self.used = False  # it only warmed up: no stage runs in it
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _needed(stage: Stage, table: pa.Table) -> pa.Table:
    """The columns the operator reads (`required_columns`, plus `_id` for messages): the rest
    stays behind, since the executor applies the result to the full batch anyway."""
    wanted = ["_id", *stage.operator.required_columns()]
    names = [n for n in table.column_names if n in wanted]
    return table.select(names) if set(wanted) - {"_id"} <= set(names) else table


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Preload the engine in the server (each worker forks from it warm), never the
        # caller's `__main__` (which may be a script that runs the CLI).
        ctx.set_forkserver_preload(["dataflow_cli.operator", "pyarrow"])
        return ctx
    return multiprocessing.get_context("spawn")


__all__ = ["AUTO", "StageDeclaration", "StagePools", "from_ipc", "poolable", "to_ipc"]
