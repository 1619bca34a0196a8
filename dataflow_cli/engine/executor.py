"""Local streaming executor.

Input is read in fixed-size batches; each batch flows through every stage in order, on a small
thread pool (pyarrow releases the GIL, so both cores work). Each stage's effect on a batch is
checkpointed as a delta (see `delta.py`); a rerun replays matching checkpoints instead of
recomputing, and a changed stage gets a new fingerprint, so it and everything after it rerun.

A global stage (e.g. dedup) needs every row before it can decide: it runs first as a pre-pass
over the upstream batches, projected to the columns it needs, and its per-batch decisions are
checkpointed; the main pass then treats it like any other stage. A streaming global stage (its
verdict on a batch needs only the batches before it, e.g. exact dedup) runs inside the pre-pass
of a later global stage instead of a pre-pass of its own, so the input is read and the stages
before it run once for both. Replayed checkpoints of consecutive evaluate/filter stages are
applied in one step (`delta.replay`): the batch is built once, not copied by every filter.
Python-heavy stages may run in worker processes (`pool.py`): a run of consecutive pooled stages
makes one trip per batch, and the worker checkpoints each stage as this process would.

Accounting invariant, checked at the end of every run:
    rows read + rows added by fan-out == rows written + rows rejected
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataflow_cli import redact
from dataflow_cli.engine import memory
from dataflow_cli.engine.checkpoint import RunDir, write_scratch_parquet
from dataflow_cli.engine.delta import KEEP, REASON_KEY, apply_delta, composable, make_delta, replay
from dataflow_cli.engine.fingerprint import fingerprints
from dataflow_cli.engine.gates import GateFailure, Gates, gate_columns
from dataflow_cli.engine.pool import StagePools, stage_delta
from dataflow_cli.engine.profile import StageProfile
from dataflow_cli.engine.stats import RunStats, StageStats
from dataflow_cli.io.inputs import iter_batches, with_row_ids
from dataflow_cli.io.lock import OutputLock
from dataflow_cli.io.writers import TableWriter, remove_stale_temp_files
from dataflow_cli.operator import Batch
from dataflow_cli.report import write_run_artifacts
from dataflow_cli.runinfo import input_record, stage_record
from dataflow_cli.spec.model import Spec, Stage

if TYPE_CHECKING:
    from dataflow_cli.llm.engine import LLMEngine

log = logging.getLogger(__name__)

GLOBAL_DONE = "complete.json"
# Row ids the engine adds; written to the output only with `output.internal_columns: true`.
INTERNAL_COLUMNS = ("_id", "_parent_id")
LLM_BATCHES_IN_FLIGHT = 16


class Progress:
    """What the executor reports while it runs; the CLI renders it, tests may record it."""

    def start(self, stats: RunStats) -> None: ...
    def phase(self, text: str) -> None: ...
    def batch_done(self, stats: RunStats) -> None: ...
    def finish(self, stats: RunStats) -> None: ...


@dataclass
class _StageRecord:
    rows_in: int = 0
    rows_out: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    computed: bool = False
    reused: bool = False
    columns: dict | None = None  # profile of the columns leaving the stage (engine/profile.py)


@dataclass
class _BatchResult:
    index: int
    table: pa.Table
    rows_read: int
    rejected: int
    added_by_fanout: int
    records: list[_StageRecord]


def ordered_map(
    fn: Callable[[Any], Any], items: Iterable[Any], workers: int, window: int | None = None
) -> Iterator[Any]:
    """`map(fn, items)` on a thread pool, results in input order, at most `window` (default
    2*workers) in flight (so memory stays bounded by a few batches)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or 2 * workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataflow")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prefetched(items: Iterable[Any], depth: int = 1) -> Iterator[Any]:
    """`items`, produced on a background thread at most `depth` ahead of the consumer: the
    next input batch is read and decoded while this thread hands out and writes others."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def offer(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not offer((True, item)):
                    return
            offer((True, end))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((False, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=produce, name="dataflow-read", daemon=True)
    reader.start()
    try:
        while True:
            ok, item = ready.get()
            if not ok:
                raise item
            if item is end:
                return
            yield item
    finally:
        stop.set()
        reader.join()


class Executor:
    def __init__(
        self,
        spec: Spec,
        run_dir: Path,
        *,
        fresh: bool = False,
        progress: Progress | None = None,
        workers: int = 2,
        processes: int | None = None,
    ):
        self.spec = spec
        self.stages = spec.stages
        for _, config in spec.backends.values():
            redact.add_config(config)  # before anything is logged or written
        self.fingerprints = fingerprints(spec)
        self.run_dir = RunDir(run_dir, [s.name for s in self.stages], self.fingerprints)
        self.fresh = fresh
        self.progress = progress or Progress()
        # Threads waiting on an LLM cost nothing but let more batches wait at once, so one
        # batch stuck on a retry (Retry-After) does not hold the whole run back.
        uses_llm = any(stage.operator.uses_llm for stage in spec.stages)
        self.workers = max(workers, LLM_BATCHES_IN_FLIGHT) if uses_llm else workers
        # Python-heavy row-local stages may run in worker processes; enough batches in flight
        # keep every worker busy.
        # Workers write the checkpoints of what they compute: they get the run directory's paths.
        checkpoints = (run_dir, [s.name for s in self.stages], self.fingerprints)
        self.pools = StagePools(spec.stages, checkpoints, processes)
        if self.pools.may_pool:
            # Twice the pool: while a thread does its batch's main-process part (applying deltas,
            # writing output), another batch is already queued for the worker it freed.
            self.workers = max(self.workers, 2 * self.pools.size)
        self._lock = threading.Lock()
        self._computed_this_run: set[tuple[int, int]] = set()  # (stage, batch) shards written now
        self._input_columns: set[str] = set()  # columns of the input itself (a user's own `_id`)
        self.llm: LLMEngine | None = None
        self._llm_stats: dict[int, Any] = {}
        self.budget: Any = None  # cost.budget.Budget when the spec or the command line sets caps
        self.stats = RunStats(
            spec=str(spec.file),
            name=spec.name,
            output=str(spec.output_path),
            rejects=str(spec.rejects_path),
            run_dir=str(run_dir),
            stages=[
                StageStats(s.name, s.op_name, s.kind, limits=s.operator.run_limits()) for s in self.stages
            ],
        )
        # What leaves each stage, profiled as batches are accounted; the quality gates judge it.
        self.profiles = [StageProfile(s.operator.written_columns() + gate_columns(s)) for s in self.stages]
        self.gates = Gates(self.stages, self.profiles, spec)

    # Public ---------------------------------------------------------------------------
    def run(self) -> RunStats:
        started = time.perf_counter()
        for path in (self.spec.output_path, self.spec.rejects_path):
            remove_stale_temp_files(path.parent, path.name)  # left by a killed run
        # A failed run leaves no empty output directory behind: note which ones it creates.
        created = _missing_dirs(self.spec.output_path.parent) + _missing_dirs(self.spec.rejects_path.parent)
        # Two runs with different run directories must not write the same files either.
        claim = OutputLock(
            [self.spec.output_path, self.spec.rejects_path],
            {"spec": str(self.spec.file.resolve()), "run_dir": str(self.run_dir.root.resolve())},
        )
        try:
            claim.acquire()
            memory.configure()  # low retained memory: see engine/memory.py
            self._process(started)
        except GateFailure:
            self._fill_profiles()
            self.stats.status = "failed"
            self.run_dir.write_json("stats.json", self.stats.to_dict())
            self._write_manifest("failed")
            write_run_artifacts(self.spec, self.run_dir.root, self.stats.to_dict())  # shows why
            raise
        except BaseException:
            if self.budget is not None and self.budget.stopped is not None:
                self._stopped_by_budget()
            raise
        finally:
            claim.release()
            _remove_if_empty(created)  # also an unused `rejects/` of a run that rejected nothing
        self._check_accounting()
        self._fill_profiles()
        self.stats.status = "complete"
        if self.budget is not None:
            self.stats.budget = self.budget.to_dict()
            self.budget.save(self.run_dir.root, complete=True)
        self.run_dir.write_json("stats.json", self.stats.to_dict())
        self._write_manifest("complete")
        write_run_artifacts(self.spec, self.run_dir.root, self.stats.to_dict())  # report.html, data card
        self.progress.finish(self.stats)
        return self.stats

    def _process(self, started: float) -> None:
        """Run every stage and write output and rejects; on failure neither path is touched."""
        # Open the outputs first: an unwritable destination fails before any work is done.
        output = TableWriter(self.spec.output_path)
        try:
            TableWriter(self.spec.rejects_path).abort()
            self.run_dir.open(self.fresh)
            try:
                self._start_llm()
                self._write_manifest("running")
                self.progress.start(self.stats)
                for k, stage in enumerate(self.stages):
                    if stage.is_global and not self._inline(k):
                        self._global_prepass(k, stage)
                        memory.release()  # the global operator's state is freed by now
                self._main_pass(output, started)
                self.gates.at_end(self.stats)  # a failed `fail` gate: neither output nor rejects
                self._merge_rejects()
                self._commit_output(output)
            finally:
                self.stats.seconds = time.perf_counter() - started
                self.pools.close()
                if self.llm is not None:
                    if self.budget is not None and self.budget.stopped is not None:
                        self.llm.drain()  # requests in flight at the stop finish and are cached
                    self.llm.close()
                self._collect_llm_stats()
                self.run_dir.close()
        except BaseException:
            output.abort()
            raise

    # LLM stages -----------------------------------------------------------------------
    def _start_llm(self) -> None:
        """Start the request engine only when a stage calls a model (heavy imports stay lazy)."""
        llm_stages = [(k, s) for k, s in enumerate(self.stages) if s.operator.uses_llm]
        if not llm_stages:
            return
        # pyarrow imports pandas on its first `pa.array` (~0.25 s): do that while the first
        # requests are in flight instead of before they are sent.
        threading.Thread(target=pa.array, args=([0],), name="dataflow-warmup", daemon=True).start()
        from dataflow_cli.llm.cache import RequestCache, default_cache_path
        from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy
        from dataflow_cli.llm.operator import LLMClient, LLMOperator

        backends: dict[str, Any] = {}
        for _, stage in llm_stages:
            assert stage.backend_name is not None  # validation gives every LLM stage a backend
            if stage.backend_name not in backends:
                cls, config = self.spec.backends[stage.backend_name]
                backends[stage.backend_name] = cls(config)
        from dataflow_cli.cost.prices import resolve_price

        for backend in backends.values():
            backend.price = resolve_price(backend.config)  # the spec's, else litellm's map
        self.budget = self._make_budget(backends)
        cache = RequestCache(default_cache_path()) if any(b.config.cache for b in backends.values()) else None
        llm = self.llm = LLMEngine(backends, cache, self.budget)
        for k, stage in llm_stages:
            stats = self._llm_stats[k] = LLMStats()
            policy = Policy(
                on_error=stage.on_error, max_error_rate=stage.max_error_rate, on_truncated=stage.on_truncated
            )
            assert isinstance(stage.operator, LLMOperator) and stage.backend_name is not None
            if stage.mode == "batch":
                from dataflow_cli.llm.batch import BatchClient

                backend = backends[stage.backend_name]
                client: LLMClient = BatchClient(
                    llm, stage.backend_name, stats, policy, stage.name, backend, self.run_dir.root,
                    stage.batch_poll_interval,
                )  # fmt: skip
            else:
                client = LLMClient(llm, stage.backend_name, stats, policy, stage.name)
            stage.operator.bind(client)

    def _make_budget(self, backends: dict[str, Any]) -> Any:
        if not self.spec.budget:
            return None
        from dataflow_cli.cost.budget import Budget, carried_over
        from dataflow_cli.errors import SpecError

        prices = {name: backend.price for name, backend in backends.items()}
        unpriced = [name for name, price in prices.items() if price is None]
        if "max_usd" in self.spec.budget and unpriced:
            name = unpriced[0]
            raise SpecError(
                f"budget.max_usd needs a price for backend `{name}` "
                f"(model `{backends[name].config.model}` is not in litellm's price map)",
                hint=f"set `backends.{name}.price: {{input_per_mtok: ..., output_per_mtok: ...}}`, "
                "or cap tokens or requests instead",
            )
        return Budget(self.spec.budget, prices, carried_over(self.run_dir.root, self.fresh))

    def _stopped_by_budget(self) -> None:
        """A cap stopped the run: say so in `stats.json`; checkpoints and the cache are kept and
        the output is not written, so a rerun with a higher cap continues."""
        self._fill_profiles()
        self.stats.status = "stopped"
        self.stats.output = self.stats.rejects = None  # neither is written by a stopped run
        self.stats.stopped_by = self.budget.stopped_by()
        self.stats.budget = self.budget.to_dict()
        self.budget.save(self.run_dir.root, complete=False)
        self.run_dir.write_json("stats.json", self.stats.to_dict())
        self._write_manifest("stopped")
        write_run_artifacts(self.spec, self.run_dir.root, self.stats.to_dict())  # shows what was spent

    def _collect_llm_stats(self) -> None:
        for k, stats in self._llm_stats.items():
            summary = self.stats.stages[k].llm = stats.to_dict()
            backend = self.stages[k].backend_name
            if self.llm is not None and backend is not None and self.llm.loop.is_running():
                summary["in_flight"] = self.llm.in_flight(backend)

    # Input ----------------------------------------------------------------------------
    def _input_batches(self) -> Iterator[tuple[int, pa.Table]]:
        def tables() -> Iterator[pa.Table]:
            for table in iter_batches(self.spec.input_paths, self.spec.batch_size, self.spec.limit):
                self._input_columns = set(table.column_names)
                yield table

        return with_row_ids(tables())

    # Stage application ----------------------------------------------------------------
    def _advance(
        self, k: int, i: int, table: pa.Table, record: _StageRecord, pooled: tuple | None = None
    ) -> tuple[pa.Table, pa.Table | None]:
        """Batch `i` through stage `k`: replay its checkpoint or compute and save one. `pooled`
        is the (delta, seconds) a worker computed and checkpointed already (see `_through`)."""
        stage = self.stages[k]
        record.rows_in = table.num_rows
        computed = pooled
        if computed is None:
            delta = self.run_dir.load_shard(k, i) if table.num_rows or stage.is_global else None
            if delta is None and table.num_rows == 0 and not stage.is_global:
                record.rows_out = 0
                return table, None
            if delta is None:
                computed = self._compute(k, i, table)
        if computed is not None:
            delta, seconds = computed
            record.seconds += seconds
            record.computed = True
            with self._lock:
                self._computed_this_run.add((k, i))
        else:
            with self._lock:
                record.computed = (k, i) in self._computed_this_run  # by this run's global pre-pass
            record.reused = not record.computed
        table, rejected = apply_delta(stage, table, delta)
        if rejected is not None:
            record.reasons.update(dict(zip(*_value_counts(rejected.column(REASON_KEY)), strict=True)))
            rejected = rejected.drop_columns([REASON_KEY])
        record.rows_out = table.num_rows
        record.columns = self.profiles[k].measure(table)
        return table, rejected

    def _compute(self, k: int, i: int, table: pa.Table) -> tuple[pa.Table, float]:
        """Stage `k` on batch `i` in this process; its delta is checkpointed."""
        stage = self.stages[k]
        if stage.is_global:
            raise RuntimeError(f"missing decision of global stage `{stage.name}` for batch {i}")
        t0 = time.perf_counter()
        result = stage.operator.process(Batch(table, stage.inputs))
        delta = stage_delta(stage, table, result)  # reasons redacted, as in a worker
        self.run_dir.save_shard(k, i, delta)
        return delta, time.perf_counter() - t0

    def _through(
        self, i: int, table: pa.Table, stop: int, start: int = 0
    ) -> tuple[pa.Table, list[pa.Table], list[_StageRecord]]:
        rejected: list[pa.Table] = []
        records: list[_StageRecord] = []
        k = start
        while k < stop:
            # Consecutive pooled stages make one worker trip, which computes and checkpoints each
            # of them; their deltas are applied here, in order, as replayed ones would be.
            run = self._pool_run(k, i, table, stop)
            for pooled in self.pools.run(run, i, table) if run else [None]:
                record = _StageRecord()
                table, dropped = self._advance(k, i, table, record, pooled)
                records.append(record)
                if dropped is not None and dropped.num_rows:
                    rejected.append(dropped)
                k += 1
        return table, rejected, records

    def _pool_run(self, k: int, i: int, table: pa.Table, stop: int) -> list[int]:
        """The stages from `k` that batch `i` takes to the pool in one trip (none: stage `k` is
        replayed or runs here). A stage checkpointed for the batch ends the run: it is replayed,
        never recomputed."""
        if not table.num_rows or self.pools.decided(k) == 1:
            return []  # most stages: no pool involved, no file to look for
        if self._checkpointed(k, i) or not self.pools.goes_to_pool(k, table):
            return []
        run = [k]
        for m in range(k + 1, stop):
            if not self.pools.pooled(m) or self._checkpointed(m, i):
                break
            run.append(m)
        return run

    def _checkpointed(self, k: int, i: int) -> bool:
        return self.run_dir.shard_path(k, i).exists()

    # Global stages --------------------------------------------------------------------
    def _done(self, k: int) -> bool:
        return (self.run_dir.stage_dirs[k] / GLOBAL_DONE).exists()

    def _inline(self, k: int) -> bool:
        """Is global stage `k` computed inside a later global stage's pre-pass? A streaming one
        (its verdict on a batch needs only the batches before it) is, when a later global stage
        scans the stream anyway: one read of the input and one run of the stages before it, not
        two. Otherwise it gets its own pre-pass."""
        stage = self.stages[k]
        if type(self)._global_prepass is not Executor._global_prepass:
            return False  # an executor with pre-passes of its own (Ray) scans for each stage
        if not (stage.is_global and stage.operator.streaming) or self._done(k):
            return False
        return any(
            s.is_global and not self._done(m) and not self._inline(m)
            for m, s in enumerate(self.stages)
            if m > k
        )

    def _global_prepass(self, k: int, stage: Stage) -> None:
        if self._done(k):
            return
        self.progress.phase(f"global stage `{stage.name}`: scanning")
        columns = self._global_columns(k)
        shapes: list[tuple[int, pa.Schema]] = []
        waited = 0.0  # time spent producing upstream batches, not in the global operator
        inline = [j for j in range(k) if self._inline(j)]

        def segment(begin: int, end: int, keep: list[str] | None) -> Callable:
            def run(item: tuple[int, pa.Table]) -> tuple[int, pa.Table]:
                i, table = item
                table, _, replayed, resume = self._replay(i, table, begin, end)
                table, _, records = self._through(i, table, end, resume)
                self._add_seconds(replayed + records, begin)
                return i, table.select(keep) if keep is not None else table

            return run

        def upstream() -> Iterator[tuple[int, pa.Table]]:
            # Row-local runs of stages on the worker threads, streaming global stages between
            # them in stream order on this thread. After the last row-local run only the
            # columns the remaining (global) stages read are kept, so their filters copy little.
            source = self._input_batches()
            begin = 0
            for end in [*inline, k]:
                rest = [j for j in inline if j >= end]
                keep = None
                if all(m in rest or self.stages[m].is_global for m in range(end, k)):
                    keep = list(
                        dict.fromkeys([*columns, *(c for j in rest for c in self._global_columns(j))])
                    )
                if end > begin:
                    # One batch fewer in flight than the main pass: a pre-pass's peak is when
                    # the global operator's state is largest.
                    window = max(self.workers + 1, 2 * self.workers - 1)
                    source = ordered_map(segment(begin, end, keep), source, self.workers, window)
                elif keep is not None:
                    source = ((i, table.select(keep)) for i, table in source)
                if end < k:
                    source = self._stream_global(end, source)
                begin = end + 1
            return source

        def batches() -> Iterator[Batch]:
            nonlocal waited
            source = upstream()
            while True:
                t = time.perf_counter()
                item = next(source, None)
                waited += time.perf_counter() - t
                if item is None:
                    # What the scan freed goes back before the operator's final step (e.g.
                    # MinHash clustering), which is where a pre-pass peaks.
                    memory.release()
                    return
                projected = item[1].select(columns)
                shapes.append((projected.num_rows, projected.schema))
                yield Batch(projected, stage.inputs)

        t0 = time.perf_counter()
        count = 0
        for i, result in enumerate(stage.operator.process_all(batches())):
            self._save_verdict(k, i, *shapes[i], result)
            count += 1
        if count != len(shapes):
            raise RuntimeError(
                f"global operator `{stage.op_name}` yielded {count} results for {len(shapes)} batches"
            )
        self.stats.stages[k].seconds += time.perf_counter() - t0 - waited
        self._mark_done(k, count)

    def _global_columns(self, k: int) -> list[str]:
        return list(dict.fromkeys(["_id", *self.stages[k].operator.required_columns()]))

    def _save_verdict(self, k: int, i: int, rows: int, schema: pa.Schema, result: Any) -> pa.Table:
        """Checkpoint global stage `k`'s result for batch `i` (of `rows` rows, columns `schema`)."""
        placeholder = pa.table({f.name: pa.nulls(rows, f.type) for f in schema})
        delta = make_delta(self.stages[k], placeholder, result)
        self.run_dir.save_shard(k, i, delta)
        with self._lock:
            self._computed_this_run.add((k, i))
        return delta

    def _mark_done(self, k: int, batches: int) -> None:
        (self.run_dir.stage_dirs[k] / GLOBAL_DONE).write_text(json.dumps({"batches": batches}))

    def _stream_global(
        self, k: int, source: Iterator[tuple[int, pa.Table]]
    ) -> Iterator[tuple[int, pa.Table]]:
        """Streaming global stage `k` over `source`, in order: each batch's verdict is taken (and
        checkpointed) as the batch passes, and applied; the stage is marked complete when the
        stream ends, so a run interrupted before that computes it again from the first batch."""
        stage = self.stages[k]
        columns = self._global_columns(k)
        waiting: deque[Batch] = deque()
        ended = False

        def feed() -> Iterator[Batch]:
            while waiting or not ended:
                if not waiting:
                    raise RuntimeError(
                        f"global operator `{stage.op_name}` declares `streaming` but read past a "
                        "batch before deciding it"
                    )
                yield waiting.popleft()

        verdicts = iter(stage.operator.process_all(feed()))
        count = 0
        for i, table in source:
            t0 = time.perf_counter()
            projected = table.select(columns)
            waiting.append(Batch(projected, stage.inputs))
            result = next(verdicts, None)
            if result is None:
                raise RuntimeError(f"global operator `{stage.op_name}` yielded no result for batch {i}")
            delta = self._save_verdict(k, i, projected.num_rows, projected.schema, result)
            table, _ = apply_delta(stage, table, delta)
            self.stats.stages[k].seconds += time.perf_counter() - t0
            count += 1
            yield i, table
        ended = True
        if next(verdicts, None) is not None:
            raise RuntimeError(f"global operator `{stage.op_name}` yielded more results than {count} batches")
        self._mark_done(k, count)

    # Main pass ------------------------------------------------------------------------
    def _main_pass(self, output: TableWriter, started: float) -> None:
        for result in ordered_map(self._process_batch, prefetched(self._input_batches()), self.workers):
            self._account(result)
            if self.budget is not None:  # a killed run's spending carries over to its resume
                self.budget.save(self.run_dir.root, complete=False)
            self.gates.during(self.stats)
            if result.table.num_rows:
                output.write(self._public(result.table))
            self.stats.seconds = time.perf_counter() - started
            self._collect_llm_stats()
            self.progress.batch_done(self.stats)
        if self.stats.batches == 0:
            raise RuntimeError("input produced no batches")  # readers raise InputError first

    def _public(self, table: pa.Table) -> pa.Table:
        """The output's columns: the engine's row ids only when asked for (`internal_columns`),
        or when the input itself had them."""
        if self.spec.internal_columns:
            return table
        drop = [c for c in INTERNAL_COLUMNS if c in table.column_names and c not in self._input_columns]
        return table.drop_columns(drop) if drop else table

    def _process_batch(self, item: tuple[int, pa.Table]) -> _BatchResult:
        i, table = item
        rows_read = table.num_rows
        table, rejected, records, k = self._replay(i, table, 0, len(self.stages))
        table, more_rejected, more_records = self._through(i, table, len(self.stages), k)
        rejected += more_rejected
        records += more_records
        rejected_rows = sum(t.num_rows for t in rejected)
        if rejected:
            merged = pa.concat_tables(rejected, promote_options="permissive")
            write_scratch_parquet(merged, self.run_dir.rejects_part(i))
        # A fan-out generator turns a row into 0..n rows; rows that produced none are rejected.
        added = sum(
            r.rows_out - r.rows_in + sum(r.reasons.values())
            for r, s in zip(records, self.stages, strict=True)
            if s.kind == "generate"
        )
        return _BatchResult(i, table, rows_read, rejected_rows, added, records)

    def _replay(
        self, i: int, table: pa.Table, start: int, stop: int
    ) -> tuple[pa.Table, list[pa.Table], list[_StageRecord], int]:
        """Replay the checkpoints of batch `i` from stage `start` on while they are `composable`
        (evaluate, filter: the usual run of quality stages), building the batch once; returns
        it, the rejected rows, the stages' records and the first stage left to `_through`."""
        stages: list[Stage] = []
        deltas: list[pa.Table] = []
        for k in range(start, stop):
            if table.num_rows == 0:
                break  # `_advance` knows what an empty batch gets (no checkpoint to read)
            delta = self.run_dir.load_shard(k, i)
            if delta is None or not composable(self.stages[k], delta):
                break  # computed, recomputed or applied by `_advance`, which reads it again
            stages.append(self.stages[k])
            deltas.append(delta)
            if self.stages[k].kind == "filter" and not pc.all(delta.column(KEEP)).as_py():
                if pc.sum(delta.column(KEEP)).as_py() == 0:
                    break  # no row left: the next stage is an empty batch's
        if not stages:
            return table, [], [], start
        table, replayed = replay(stages, table, deltas)
        rejected: list[pa.Table] = []
        records: list[_StageRecord] = []
        for k, done in enumerate(replayed, start):
            with self._lock:
                computed = (k, i) in self._computed_this_run  # by this run's global pre-pass
            record = _StageRecord(
                rows_in=done.rows_in, rows_out=done.rows_out, computed=computed, reused=not computed
            )
            if done.rejected is not None:
                record.reasons.update(
                    dict(zip(*_value_counts(done.rejected.column(REASON_KEY)), strict=True))
                )
                rejected.append(done.rejected.drop_columns([REASON_KEY]))
            record.columns = self.profiles[k].measure(done.columns(self.profiles[k].columns))
            records.append(record)
        return table, rejected, records, start + len(stages)

    def _account(self, result: _BatchResult) -> None:
        with self._lock:
            self.stats.batches += 1
            self.stats.rows_read += result.rows_read
            self.stats.rows_written += result.table.num_rows
            self.stats.rows_rejected += result.rejected
            self.stats.rows_added_by_fanout += result.added_by_fanout
            for stats, record in zip(self.stats.stages, result.records, strict=True):
                stats.rows_in += record.rows_in
                stats.rows_out += record.rows_out
                stats.dropped_by_reason.update(record.reasons)
                stats.rows_dropped = sum(stats.dropped_by_reason.values())
                stats.seconds += record.seconds
                stats.batches_computed += record.computed
                stats.batches_reused += record.reused
            for profile, record in zip(self.profiles, result.records, strict=True):
                profile.merge(record.columns)

    def _fill_profiles(self) -> None:
        for stats, profile in zip(self.stats.stages, self.profiles, strict=True):
            stats.columns = profile.to_dict()

    def _add_seconds(self, records: list[_StageRecord], start: int = 0) -> None:
        with self._lock:
            for stats, record in zip(self.stats.stages[start:], records, strict=False):
                stats.seconds += record.seconds

    # Finishing ------------------------------------------------------------------------
    def _merge_rejects(self) -> None:
        parts = sorted((self.run_dir.root / "rejects").glob("part-*.parquet"))
        if not parts:
            # An empty file would be unloadable (0-byte JSONL, 0-row Parquet) and one left by an
            # earlier run would be wrong: no rejects, no file.
            _remove_stale(self.spec.rejects_path)
            self.stats.rejects = None
            return
        schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
        # Keep the reject columns last, where a reader looks for them.
        names = [n for n in schema.names if n not in ("_stage", "_reason")] + ["_stage", "_reason"]
        schema = pa.schema([schema.field(n) for n in names])
        with TableWriter(self.spec.rejects_path, schema=schema) as writer:
            for part in parts:
                table = pq.read_table(part)
                missing = [f for f in schema if f.name not in table.column_names]
                for f in missing:
                    table = table.append_column(f, pa.nulls(table.num_rows, f.type))
                writer.write(table.select(schema.names).cast(schema))
            writer.commit()

    def _commit_output(self, output: TableWriter) -> None:
        if self.stats.rows_written:
            output.commit()
            return
        # No row kept: an empty output file could not be loaded, and an earlier run's would lie.
        output.abort()
        _remove_stale(self.spec.output_path)
        self.stats.output = None

    def _check_accounting(self) -> None:
        s = self.stats
        if s.rows_read + s.rows_added_by_fanout != s.rows_written + s.rows_rejected:
            raise RuntimeError(
                f"row accounting broken: read {s.rows_read} + fan-out {s.rows_added_by_fanout} != "
                f"written {s.rows_written} + rejected {s.rows_rejected}"
            )

    def _write_manifest(self, status: str) -> None:
        self.run_dir.write_json(
            "manifest.json",
            {
                "spec": str(self.spec.file),
                "name": self.spec.name,
                "status": status,
                "batch_size": self.spec.batch_size,
                "batches_done": self.stats.batches,
                "input": input_record(self.spec),  # what `dataflow explain` replays rows from
                "stages": [
                    {
                        "name": s.name,
                        "op": s.op_name,
                        "fingerprint": fp,
                        "checkpoints": str(d),
                        **stage_record(s),
                    }
                    for s, fp, d in zip(self.stages, self.fingerprints, self.run_dir.stage_dirs, strict=True)
                ],
            },
        )


def _remove_stale(path: Path) -> None:
    if path.is_file():
        log.info("removing `%s` from an earlier run: this run writes no rows there", path)
        path.unlink()


def _missing_dirs(path: Path) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_if_empty(dirs: list[Path]) -> None:
    for d in sorted(set(dirs), key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()  # only when empty: never anything another process put there
        except OSError:
            pass


def _value_counts(values: pa.Array) -> tuple[list, list]:
    if len(values) == 0:
        return [], []
    counts = pc.value_counts(values)
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


__all__ = ["Executor", "Progress", "ordered_map"]
