"""Process pools for row-local stages whose work is Python code (every core of one machine).

Vectorised operators (Arrow and numpy kernels, compiled loops) already use both cores from the
executor's threads, because those release the GIL. Operators that loop over rows in Python
(template rendering, PII masking, regex-heavy refiners, per-row parsers) hold the GIL, so their
threads take turns on one core. Such a stage can run in a pool of worker processes instead:

- A stage's `processes:` key is `auto` (the default), `1` (always in this process) or `N > 1`
  (always in a pool of N processes). `dataflow run --processes N` sets the pool size `auto` uses
  (default: the number of CPUs); `--processes 1` keeps every stage in the main process.
- `auto` pools only operators that declare `cpu_bound = True`, and only when it pays. The
  first batch to reach an undecided stage decides it together with the undecided stages right
  after it (pooled, they share one worker trip): from a sample of its rows (`estimate`), what
  the batch would cost in-process in those stages, and what shipping it to a worker and the
  deltas back would cost. They move to the pool when the batch costs at least
  `AUTO_MIN_SECONDS` and shipping under `AUTO_MAX_SHIP_SHARE` of that. The sample's compute is
  spent twice (the batch then runs where decided), but a sixteenth of one batch is a small price
  next to running a whole batch in-process while the workers have nothing to do. The workers
  start while the sample is measured (and stop if no stage ends up pooled). Other batches
  reaching the stage meanwhile wait for the decision, or only until the workers are up and then
  go to the pool: where a batch runs never changes its result. The decision is logged (run.log).
- LLM and global stages never run in a pool (validation rejects `processes: N > 1` there).

A run of consecutive pooled stages makes one worker trip per batch (`StagePools.run`). The
worker runs the first stage, turns its result into the checkpoint delta exactly as the executor
does in-process (`stage_delta`: `make_delta`, then reasons and raw answers redacted), writes the
checkpoint, applies the delta to its copy of the batch (a filter drops rows, an evaluator adds
its columns) and goes on with the next stage. The deltas come back and the executor applies
them to the whole batch as it applies replayed checkpoints, so checkpoints, rejects, stats and
accounting do not depend on where a batch ran. The executor ends a run before a stage that has
a checkpoint for the batch (a replayed stage is never recomputed) and before a stage that
stays in-process.

The batch travels once, as an Arrow IPC file of only the columns the run's operators read
(plus `_id`), and the deltas come back the same way (`Exchange`: memory-backed files,
memory-mapped by the reader). A refiner that replaces the whole batch (select or rename
columns) must see every column: the first time one returns a whole table from part of a batch,
nothing of that trip's stage is saved and the run is sent again with the whole batch, as are
all its later batches.

Each worker rebuilds the pooled operators once, from their declaration (registry name, params,
column bindings, prompt), never by pickling a live operator. Workers start through `forkserver`
(a clean server process, safe beside the executor's threads) where available, else `spawn`. A
worker that dies (a crash, the OOM killer) fails the run with a clear error instead of hanging
it; finished batches stay checkpointed, so a rerun resumes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dataflow_cli import redact
from dataflow_cli.engine.checkpoint import RunDir
from dataflow_cli.engine.delta import (
    DETAIL,
    FAILED,
    FULL_TABLE,
    RAW,
    REASON,
    apply_delta,
    make_delta,
)
from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch
from dataflow_cli.spec.model import Stage

log = logging.getLogger(__name__)

AUTO = "auto"
AUTO_MIN_SECONDS = 0.25  # a batch quicker than this gains less than a pool's fixed costs
AUTO_MAX_SHIP_SHARE = 0.25  # shipping a batch must cost under this share of computing it
AUTO_SAMPLE_STRIDE = 8  # `auto` times one row in 2 * this of the first batch (`estimate`)
AUTO_WARM_ROWS = 32  # rows run untimed before, to pay first-call costs
REDACTED = (FAILED, RAW, REASON, DETAIL)  # delta columns that may quote a secret

# What a worker trip gives back per stage it computed: the checkpointed delta and its seconds.
Step = tuple[pa.Table, float]


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

    def build(self) -> Stage:
        from dataflow_cli import registry

        cls = registry.load(self.op_name)
        operator = cls(cls.Params.model_validate(self.params), inputs=self.inputs, outputs=self.outputs)
        operator.prompt = self.prompt
        operator.base_dir = Path(self.base_dir) if self.base_dir is not None else None
        return Stage(index=self.index, name=self.name, op_name=self.op_name, operator=operator)


def poolable(stage: Stage) -> bool:
    """Whether the stage may run in a pool at all: row-local and no model behind it."""
    return stage.operator.scope == "row" and not stage.operator.uses_llm


def stage_delta(stage: Stage, table: pa.Table, result: Any) -> pa.Table:
    """An operator's result as the delta that is checkpointed and applied, wherever it ran.

    Reasons and raw answers may quote a secret (an echoed key): masked before the checkpoint,
    the rejects file and the stats see them."""
    return redact.redact_columns(make_delta(stage, table, result), REDACTED)


def to_ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(buffer: Any) -> pa.Table:
    return pa.ipc.open_stream(buffer).read_all()


class Exchange:
    """Where batches and deltas travel between the executor and the workers: one Arrow IPC file
    per table, in a memory-backed folder (/dev/shm where it has room, else the temp folder).

    A pipe (the pool's own channel) copies a pickled batch several times and is fed in 64 KB
    pieces by a thread of the sending process, which needs the GIL for each: the workers waited
    about 25 ms per batch, 2% of the run. A file is written once and memory-mapped by the
    reader, without a copy (`receive`). Each file is unlinked as soon as it is mapped; the folder,
    named after this process, goes at `close()`, or with the next pool once this process is
    gone (a killed run)."""

    PREFIX = "dataflow-pool-"

    def __init__(self) -> None:
        base = _exchange_base()
        _remove_stale_exchanges(base)
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}-", dir=base))
        self._names = itertools.count()

    def paths(self) -> tuple[str, str]:
        """A fresh file name for a batch going out and a prefix for the deltas coming back."""
        n = next(self._names)
        return str(self.root / f"batch-{n}.arrow"), str(self.root / f"deltas-{n}")

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def send(table: pa.Table, path: str) -> None:
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def receive(path: str) -> pa.Table:
    """The table in `path`, memory-mapped (its buffers keep the mapping alive), and the file
    unlinked: the memory goes back once the table is no longer used."""
    with pa.memory_map(path) as source:
        table = pa.ipc.open_stream(source).read_all()
    os.unlink(path)
    return table


def _exchange_base() -> str | None:
    shm = Path("/dev/shm")
    # A container's /dev/shm is often 64 MB: a few batches in flight could fill it.
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= 1 << 30:
        return str(shm)
    return None  # tempfile's default folder


def _remove_stale_exchanges(base: str | None) -> None:
    """Folders of processes that no longer exist (killed runs): their files would stay in memory."""
    for folder in Path(base or tempfile.gettempdir()).glob(f"{Exchange.PREFIX}*"):
        pid = folder.name[len(Exchange.PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


# Worker side ----------------------------------------------------------------------------
class WholeBatchNeeded(Exception):
    """Raised in a worker: stage `args[0]` returned a whole table, so it must see every column."""


_stages: dict[int, Stage] = {}
_checkpoints: RunDir | None = None


def _init_worker(declarations: list[StageDeclaration], run_dir: tuple, sys_path: list[str]) -> None:
    global _checkpoints
    _exit_with_driver()
    # The forkserver started with the driver's path of that moment; plugins found later (a
    # folder added to sys.path since) must resolve here too.
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    for declaration in declarations:
        _stages[declaration.index] = declaration.build()
    # Paths only: the executor holds the run directory's lock, this process writes shards into it.
    _checkpoints = RunDir(*run_dir)


def _exit_with_driver() -> None:
    """A pool's worker waits for tasks on a queue it holds both ends of, so it would outlive an
    executor killed outright (SIGKILL, the OOM killer), holding its memory: it exits instead as
    soon as the executor's end of its start pipe closes."""
    driver = multiprocessing.parent_process()
    if driver is None or driver.sentinel is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([driver.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="dataflow-driver-watch", daemon=True).start()


def _warm_worker() -> None:
    """Nothing: submitted once per worker so the pool starts them before the first real batch."""


def _run_in_worker(
    indexes: list[int], batch_index: int, paths: tuple[str, str], whole: bool, secrets: tuple[str, ...]
) -> list[float]:
    """The trip's work in a worker; the deltas go back as files `<prefix>-<j>.arrow` (see
    `Exchange`), the seconds each stage took as the return value."""
    for secret in secrets:  # registered in the main process, maybe after this worker started
        redact.add(secret)
    assert _checkpoints is not None
    batch, prefix = paths
    stages = [_stages[k] for k in indexes]
    steps = _run_stages(indexes, stages, batch_index, receive(batch), _checkpoints, whole)
    for j, (delta, _) in enumerate(steps):
        send(delta, f"{prefix}-{j}.arrow")
    return [seconds for _, seconds in steps]


def _run_stages(
    indexes: list[int],
    stages: list[Stage],
    batch_index: int,
    table: pa.Table,
    checkpoints: RunDir,
    whole: bool,
) -> list[Step]:
    """Batch `batch_index` through a run of stages, in a worker: each stage's delta is made and
    checkpointed, then applied, so the next stage sees the batch after it, as in the executor.
    `whole`: `table` has every column."""
    steps: list[Step] = []
    for k, stage in zip(indexes, stages, strict=True):
        t0 = time.perf_counter()
        delta = stage_delta(stage, table, stage.operator.process(Batch(table, stage.inputs)))
        if not whole and (delta.schema.metadata or {}).get(FULL_TABLE):
            # A refiner replaced the batch (select, rename) but saw only the columns it reads:
            # the rest would be lost. Nothing of it is saved; the driver sends the whole batch.
            raise WholeBatchNeeded(k)
        checkpoints.save_shard(k, batch_index, delta)
        steps.append((delta, time.perf_counter() - t0))
        if k == indexes[-1]:
            break
        table, _ = apply_delta(stage, table, delta)
        if table.num_rows == 0:
            break  # stages after an empty batch save no checkpoint: the executor passes it on
    return steps


# Driver side ----------------------------------------------------------------------------
class StagePools:
    """Runs row-local stages in this process or in a shared worker pool.

    The executor asks `goes_to_pool(k, table)` for the first stage a batch needs computed (the
    first batch of an undecided `auto` stage decides it) and `pooled(m)` for the stages after
    it, and hands the run to `run()` (one worker trip), or computes stage k itself. All
    thread-safe. One pool of `size` workers serves every pooled stage (each worker holds every
    pooled operator), started on first use and stopped by `close()`.
    """

    def __init__(self, stages: list[Stage], run_dir: tuple, processes: int | None = None):
        self.stages = stages
        self.run_dir = run_dir  # `RunDir` arguments: workers write the checkpoints they compute
        self.processes = max(1, processes if processes is not None else (os.cpu_count() or 1))
        # Per stage: None = undecided (auto), else the number of processes it runs on.
        self.mode: dict[int, int | None] = {k: self._initial_mode(s) for k, s in enumerate(stages)}
        self._changed = threading.Condition()  # a decision, the workers up, the pool closed
        self._measuring: set[int] = set()  # undecided stages whose first batch is being measured
        self._warm = False  # every worker has started
        self._pool: ProcessPoolExecutor | None = None
        self._exchange: Exchange | None = None  # files the batches and deltas travel as
        self._closed = False
        self._whole_batch: set[int] = set()  # stages seen replacing the batch: shipped whole
        self.used = False  # a batch was handed to the pool
        self.trips = 0  # worker trips made: one per batch and run of pooled stages

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

    # Routing ------------------------------------------------------------------------------
    def pooled(self, k: int) -> bool:
        """Whether a batch reaching stage `k` now goes to the pool (never waits, never claims
        the measurement): the stage is pooled, or it is being measured and the workers are up."""
        with self._changed:
            return self._pooled(k)

    def _pooled(self, k: int) -> bool:
        mode = self.mode[k]
        if mode is not None:
            return mode > 1
        return k in self._measuring and self._warm and not self._closed

    def goes_to_pool(self, k: int, table: pa.Table) -> bool:
        """Like `pooled`, for the first stage batch `table` needs computed. The first batch to
        reach an undecided stage decides it, with the undecided stages right after it
        (`_measure`); later ones wait for the decision, or only until the workers are up."""
        with self._changed:
            while self.mode[k] is None and not self._closed:
                if k not in self._measuring:
                    chain = [k]
                    while chain[-1] + 1 < len(self.stages) and self._undecided(chain[-1] + 1):
                        chain.append(chain[-1] + 1)
                    self._measuring.update(chain)
                    break
                if self._warm:
                    return True
                self._changed.wait()
            else:
                return self._pooled(k)
        self._measure(chain, table)
        return self.pooled(k)

    def _undecided(self, k: int) -> bool:
        return self.mode[k] is None and k not in self._measuring

    def _measure(self, ks: list[int], table: pa.Table) -> None:
        """Decide consecutive `auto` stages together, from a sample of the first batch to reach
        them (`estimate`): pooled, they would share one worker trip, so what must pay is their
        compute together against shipping the batch once."""
        stages = [self.stages[k] for k in ks]
        # Workers start (spawn, imports, operators built) while the sample is measured, so a
        # pool that pays is ready soon after the decision; one that does not is shut down.
        with contextlib.suppress(RuntimeError):  # closed: the run is ending
            self._ensure_pool()
        try:
            compute, ship = estimate(stages, table)
        except Exception:
            # The batch then runs in this process, where it fails on the same row as it would
            # without a pool (the sample may hold a later failing row).
            compute, ship = 0.0, 0.0
        pays = compute >= AUTO_MIN_SECONDS and ship <= AUTO_MAX_SHIP_SHARE * compute
        self._decide(ks, self.processes if pays else 1)
        log.info(
            "stage%s %s: first batch estimated at %.3f s CPU in-process, shipping %.3f s: %s",
            "s" if len(stages) > 1 else "",
            ", ".join(f"`{s.name}`" for s in stages),
            compute,
            ship,
            f"a pool of {self.processes} processes" if pays else "in-process",
        )

    def _decide(self, ks: list[int], mode: int) -> None:
        with self._changed:
            for k in ks:
                self.mode[k] = mode
            self._changed.notify_all()
        if not self.may_pool:
            self._shutdown_pool()

    # In the pool ------------------------------------------------------------------------
    def run(self, ks: list[int], batch_index: int, table: pa.Table) -> list[Step]:
        """Stages `ks` (consecutive, pooled, none checkpointed for this batch) on `table` in one
        worker trip, which also writes their checkpoints. One (delta, seconds) per stage
        computed: fewer than `ks` when the batch ran out of rows before the last."""
        stages = [self.stages[k] for k in ks]
        pool = self._ensure_pool()
        with self._changed:
            self.used = True
            self.trips += 1
        shipped = table if any(k in self._whole_batch for k in ks) else _needed(stages, table)
        # Secrets registered in this process (backend keys) mask reasons in the worker too.
        secrets = redact.registered()
        whole = shipped.num_columns == table.num_columns
        assert self._exchange is not None  # made with the pool
        batch, prefix = self._exchange.paths()
        send(shipped, batch)
        try:
            seconds = pool.submit(_run_in_worker, ks, batch_index, (batch, prefix), whole, secrets).result()
        except BrokenProcessPool:
            raise _worker_died(stages) from None
        except WholeBatchNeeded as needed:
            self._whole_batch.add(needed.args[0])  # from now on, for every batch
            return self.run(ks, batch_index, table)
        return [(receive(f"{prefix}-{j}.arrow"), s) for j, s in enumerate(seconds)]

    def _pooled_stages(self) -> list[Stage]:
        return [s for k, s in enumerate(self.stages) if self.mode[k] != 1]

    def _ensure_pool(self) -> ProcessPoolExecutor:
        with self._changed:
            if self._closed:
                raise RuntimeError("the process pool is closed")
            if self._pool is None:
                if self._exchange is None:
                    self._exchange = Exchange()
                pooled = self._pooled_stages()
                self._pool = ProcessPoolExecutor(
                    max_workers=self.size,
                    mp_context=_context(pooled),
                    initializer=_init_worker,
                    initargs=([StageDeclaration.of(s) for s in pooled], self.run_dir, list(sys.path)),
                )
                self._start_workers(self._pool)
            return self._pool

    def _start_workers(self, pool: ProcessPoolExecutor) -> None:
        """One no-op per worker, so each process starts now; `_warm` once all are up."""
        pending = [pool.submit(_warm_worker) for _ in range(self.size)]
        left = [len(pending)]

        def started(_: Future) -> None:
            with self._changed:
                left[0] -= 1
                if left[0] == 0 and self._pool is pool:
                    self._warm = True
                    self._changed.notify_all()

        for future in pending:
            future.add_done_callback(started)

    def _shutdown_pool(self) -> None:
        with self._changed:
            pool, self._pool = self._pool, None
            self._warm = False
        if pool is not None:
            pool.shutdown(wait=False)  # a batch sent before the decision still finishes there

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._exchange is not None:
            self._exchange.close()


def estimate(stages: list[Stage], table: pa.Table) -> tuple[float, float]:
    """CPU seconds this process would spend on consecutive `stages` for the batch `table`, and
    on shipping it to a worker and their deltas back, both measured on a sample.

    The sample is every `AUTO_SAMPLE_STRIDE`-th row, so it stands for the whole batch even when
    the input is sorted (by length, say); it goes through the stages as the batch would (a
    filter drops sampled rows, an evaluator adds its column for the next stage). A few rows
    (0, 2s, 4s, ...) run first, untimed: first-call costs (lazy imports, caches) are no per-row
    cost. The rest (s, 3s, 5s, ...) is timed and scaled to the batch, which overstates a fixed per-call
    cost that many times: small for the operators `auto` considers (row-by-row Python code),
    and only towards pooling. CPU time of this thread, not wall time: warming workers and other
    threads compete for the cores meanwhile."""
    n = table.num_rows
    stride = AUTO_SAMPLE_STRIDE
    warm = table.take(_positions(0, min(n, 2 * stride * AUTO_WARM_ROWS), 2 * stride))
    timed = table.take(_positions(stride, n, 2 * stride)) if n > stride else warm
    scale = n / timed.num_rows
    _sample_through(stages, warm)
    t0 = time.thread_time()
    deltas = _sample_through(stages, timed)
    compute = (time.thread_time() - t0) * scale
    t1 = time.thread_time()
    from_ipc(to_ipc(_needed(stages, table)))
    t2 = time.thread_time()
    for delta in deltas:
        from_ipc(to_ipc(delta))
    t3 = time.thread_time()
    # The batch out (measured whole) and the deltas back, as `Exchange` files: written by one
    # end, read by the other (here in memory: what a file adds is the page cache's copy).
    ship = (t2 - t1) + (t3 - t2) * scale
    return compute, ship


def _sample_through(stages: list[Stage], sample: pa.Table) -> list[pa.Table]:
    """The work a worker does for a run of stages (see `_run_in_worker`), on a sample."""
    deltas = []
    for stage in stages:
        if not sample.num_rows:
            break
        deltas.append(stage_delta(stage, sample, stage.operator.process(Batch(sample, stage.inputs))))
        sample, _ = apply_delta(stage, sample, deltas[-1])
    return deltas


def _positions(start: int, stop: int, step: int) -> pa.Array:
    # from_buffers, not pa.array: the latter makes pyarrow import pandas (~0.25 s).
    positions = np.arange(start, stop, step, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(positions), [None, pa.py_buffer(positions)])


def _needed(stages: list[Stage], table: pa.Table) -> pa.Table:
    """The columns a run of stages reads (`required_columns`, plus `_id` for messages and
    checkpoints): the rest stays behind, since the executor applies the deltas to the full
    batch. The whole batch when a column is missing (each operator then reports it as it would
    in-process)."""
    wanted = {"_id"}
    available = set(table.column_names)
    for stage in stages:
        required = stage.operator.required_columns()
        if not set(required) <= available:
            return table
        wanted.update(required)
        available.update(stage.operator.written_columns())  # seen by the next stage of the run
    return table.select([n for n in table.column_names if n in wanted])


def _worker_died(stages: list[Stage]) -> DataflowError:
    names = ", ".join(f"`{s.name}`" for s in stages)
    ops = ", ".join(f"`{s.op_name}`" for s in stages)
    return DataflowError(
        f"stage{'s' if len(stages) > 1 else ''} {names}: a worker process died (killed, or out of "
        f"memory) while it ran {ops}",
        hint="finished batches are checkpointed: rerun to resume, or set `processes: 1` on the "
        "stage (or `--processes 1`) to run it in the main process",
    )


def _context(pooled: list[Stage]) -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Preload the engine and the built-in pooled operators' modules in the server, so each
        # worker forks from it warm; never the caller's `__main__` (which may be a script that
        # runs the CLI), nor a plugin (it may live on a path the server does not have).
        builtin = {type(s.operator).__module__ for s in pooled}
        modules = sorted(m for m in builtin if m.startswith("dataflow_operators."))
        ctx.set_forkserver_preload(["dataflow_cli.engine.pool", *modules])
        return ctx
    return multiprocessing.get_context("spawn")


__all__ = ["AUTO", "StageDeclaration", "StagePools", "from_ipc", "poolable", "stage_delta", "to_ipc"]
