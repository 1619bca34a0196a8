"""What runs inside the Ray cluster: stage actors, the run's tally and the cluster-wide limiter.

`StageRunner` is a callable class for `Dataset.map_batches`: Ray Data builds one per actor, and
each builds its operators once, from the spec file and `--set` overrides (operators hold
compiled templates, sandboxes and model clients that need not pickle). A call receives blocks
tagged with their input batch index (`BATCH`) and runs each batch through its stages exactly as
the local executor does: replay the stage's checkpointed delta or compute and save one, apply
it, and write the rows it rejected to the shared store. Counters go to the run's `Tally` actor,
keyed by (pass, batch, stage), so a retried task never counts twice.

LLM stages get their own actor pool: each actor runs an `LLMEngine` with its share of the
backend's `max_concurrency`, opens the shared request cache, and takes its RPM/TPM tokens from
one `RateLimiter` actor per backend for the whole cluster.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from dataflow_cli.engine.ray_store import ShardStore

BATCH = "__batch"  # input batch index of each row while it travels through Ray (never written)
# (negative for the placeholder row of a batch whose rows were all dropped: see `tagged`)


@dataclass
class WorkerPlan:
    """What a worker needs to rebuild the run's stages (all plain, picklable values)."""

    spec_file: str
    overrides: list[str]
    cwd: str
    env: dict[str, str]
    store: ShardStore
    tally: str  # name of the run's Tally actor
    namespace: str
    cache_path: str | None = None  # absolute path of the request cache (shared by every worker)
    limiters: dict[str, str] = field(default_factory=dict)  # backend -> RateLimiter actor name
    llm_share: dict[str, int] = field(default_factory=dict)  # backend -> requests in flight per actor


def tagged(table: pa.Table, batch: int) -> pa.Table:
    """`table` with its batch index; a batch left without rows travels on as one all-null row
    tagged `-(batch + 1)`, so later stages still see it (and count it) as the local executor
    does, and the driver knows it happened; the driver drops that row."""
    if table.num_rows:
        return table.append_column(BATCH, pa.array(np.full(table.num_rows, batch, np.int64)))
    ghost = pa.table({f.name: pa.nulls(1, f.type) for f in table.schema}, schema=table.schema)
    return ghost.append_column(BATCH, pa.array([-batch - 1], pa.int64()))


def _load_stages(plan: WorkerPlan):
    os.environ.update(plan.env)
    if os.path.isdir(plan.cwd):
        os.chdir(plan.cwd)  # relative paths (caches, scratch dirs) mean what they mean on the driver
    from dataflow_cli import redact
    from dataflow_cli.spec.build import load_spec

    spec = load_spec(Path(plan.spec_file), plan.overrides, check_columns=False)
    for _, config in spec.backends.values():
        redact.add_config(config)
    return spec


class StageRunner:
    """A run of consecutive stages over whole input batches (a `map_batches` callable class)."""

    def __init__(self, plan: WorkerPlan, stages: list[int], phase: str, spec: Any = None):
        self.plan = plan
        self.spec = spec if spec is not None else _load_stages(plan)
        self.indices = stages
        self.phase = phase  # "main", or "pre:<k>" for the upstream of global stage k
        self.uid = uuid.uuid4().hex[:12]
        self.tally = ray.get_actor(plan.tally, namespace=plan.namespace)
        self.llm_stats: dict[int, Any] = {}
        self.engine: Any = None
        from dataflow_cli.engine.gates import gate_columns
        from dataflow_cli.engine.profile import StageProfile

        # Per-batch column profiles, merged by the driver as the local executor merges its own.
        self.profiles = {
            k: StageProfile(s.operator.written_columns() + gate_columns(s))
            for k, s in ((k, self.spec.stages[k]) for k in stages)
        }
        if any(self.spec.stages[k].operator.uses_llm for k in stages):
            self._start_llm()

    def _start_llm(self) -> None:
        from dataflow_cli.llm.cache import RequestCache
        from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy
        from dataflow_cli.llm.operator import LLMClient, LLMOperator

        stages = [self.spec.stages[k] for k in self.indices if self.spec.stages[k].operator.uses_llm]
        backends: dict[str, Any] = {}
        for stage in stages:
            name = stage.backend_name
            assert name is not None
            if name not in backends:
                cls, config = self.spec.backends[name]
                share = self.plan.llm_share.get(name, config.max_concurrency)
                backends[name] = cls(config.model_copy(update={"max_concurrency": share}))
                try:  # the price the local executor looks up, so costs in the stats agree
                    from dataflow_cli.cost.prices import resolve_price

                    backends[name].price = resolve_price(backends[name].config)
                except ImportError:
                    pass
        path = self.plan.cache_path
        cache = RequestCache(Path(path)) if path and any(b.config.cache for b in backends.values()) else None
        self.engine = LLMEngine(backends, cache)
        for name in backends:
            if name in self.plan.limiters:
                _share_limits(self.engine, name, self.plan.limiters[name], self.plan.namespace)
        for stage in stages:
            stats = self.llm_stats[stage.index] = LLMStats()
            policy = Policy(
                on_error=stage.on_error, max_error_rate=stage.max_error_rate, on_truncated=stage.on_truncated
            )
            assert isinstance(stage.operator, LLMOperator) and stage.backend_name is not None
            stage.operator.bind(LLMClient(self.engine, stage.backend_name, stats, policy, stage.name))

    def __call__(self, table: pa.Table) -> pa.Table:
        from dataflow_cli.errors import DataflowError

        try:
            return self._call(table)
        except DataflowError as exc:
            # Ray hands the driver a task error wrapping a traceback: the user's message goes
            # to the tally, from where the driver raises it as the local executor would.
            ray.get(self.tally.fail.remote(exc.reason, exc.hint, exc.location, exc.exit_code))
            raise

    def _call(self, table: pa.Table) -> pa.Table:
        if table.num_rows == 0:
            return table
        outputs: list[pa.Table] = []
        records: list[dict[str, Any]] = []
        tags = table.column(BATCH)
        tags_seen = pc.unique(tags).to_pylist()
        for tag in tags_seen:
            part = table if len(tags_seen) == 1 else table.filter(pc.equal(tags, tag))
            part = part.drop_columns([BATCH])
            i = tag if tag >= 0 else -tag - 1
            out, recs = self._run_batch(i, part if tag >= 0 else part.slice(0, 0))
            records.extend(recs)
            outputs.append(tagged(out, i))
        llm = {f"{self.uid}:{k}": s.to_dict() for k, s in self.llm_stats.items()}
        ray.get(self.tally.add.remote(self.phase, records, llm))  # delivered before the rows move on
        return outputs[0] if len(outputs) == 1 else pa.concat_tables(outputs, promote_options="permissive")

    def _run_batch(self, i: int, table: pa.Table) -> tuple[pa.Table, list[dict[str, Any]]]:
        """Batch `i` through this runner's stages (the local executor's `_advance`, per stage)."""
        from dataflow_cli import redact
        from dataflow_cli.engine.delta import DETAIL, FAILED, RAW, REASON, REASON_KEY, apply_delta, make_delta
        from dataflow_cli.operator import Batch

        records = []
        store = self.plan.store
        for k in self.indices:
            stage = self.spec.stages[k]
            record = {"batch": i, "stage": k, "rows_in": table.num_rows, "rows_out": 0, "reasons": {}}
            record.update(seconds=0.0, computed=False, reused=False)
            records.append(record)
            delta = store.load(k, i) if table.num_rows or stage.is_global else None
            if delta is None and table.num_rows == 0 and not stage.is_global:
                continue
            if delta is None:
                if stage.is_global:
                    raise RuntimeError(f"missing decision of global stage `{stage.name}` for batch {i}")
                t0 = time.perf_counter()
                result = stage.operator.process(Batch(table, stage.inputs))
                delta = redact.redact_columns(make_delta(stage, table, result), (FAILED, RAW, REASON, DETAIL))
                store.save(k, i, delta)
                record["seconds"] = time.perf_counter() - t0
                record["computed"] = True
            else:
                record["reused"] = True
            table, rejected = apply_delta(stage, table, delta)
            if rejected is not None and rejected.num_rows:
                counts = pc.value_counts(rejected.column(REASON_KEY))
                reasons: Counter[str] = Counter()
                for value, count in zip(
                    counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
                ):
                    reasons[value] += count
                record["reasons"] = dict(reasons)
                if self.phase == "main":
                    store.save_rejects(i, k, rejected.drop_columns([REASON_KEY]))
            record["rows_out"] = table.num_rows
            if self.phase == "main":
                record["columns"] = self.profiles[k].measure(table)
        return table, records

    def __del__(self) -> None:
        if self.engine is not None:
            try:
                self.engine.close()
            except Exception:  # noqa: BLE001 - the actor is going away; nothing to report to
                pass


_RUNNERS: dict[tuple, StageRunner] = {}  # per worker process: stages built once, reused by every task
_SPECS: dict[str, Any] = {}  # per worker process: the run's built spec, shared by its segments


def run_segment(table: pa.Table, plan: WorkerPlan, stages: list[int], phase: str) -> pa.Table:
    """`StageRunner` as a Ray task: a worker process builds the stages on its first task of the
    run and keeps them, so the pre-pass and main pass (and every batch) reuse warm processes
    instead of starting an actor pool each."""
    key = (plan.namespace, tuple(stages))
    runner = _RUNNERS.get(key)
    if runner is None:
        for finished in [k for k in _RUNNERS if k[0] != plan.namespace]:
            del _RUNNERS[finished]  # a finished run's stages
        for name in [k for k in _SPECS if k != plan.namespace]:
            del _SPECS[name]
        if plan.namespace not in _SPECS:
            _SPECS[plan.namespace] = _load_stages(plan)
        runner = _RUNNERS[key] = StageRunner(plan, stages, phase, _SPECS[plan.namespace])
    runner.phase = phase  # a worker process runs one task at a time
    return runner(table)


@ray.remote(num_cpus=0)
class Tally:
    """The run's counters, sent by every worker after each block."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int, int], dict[str, Any]] = {}
        self.llm: dict[tuple[str, str], dict[str, Any]] = {}
        self.error: tuple[str, str | None, str | None, int] | None = None

    def fail(self, reason: str, hint: str | None, location: str | None, exit_code: int) -> None:
        if self.error is None:  # the first one: later ones are usually its consequences
            self.error = (reason, hint, location, exit_code)

    def failure(self) -> tuple[str, str | None, str | None, int] | None:
        return self.error

    def add(self, phase: str, records: list[dict[str, Any]], llm: dict[str, dict[str, Any]]) -> None:
        for record in records:
            self.records[(phase, record["batch"], record["stage"])] = record
        for key, value in llm.items():
            self.llm[(phase, key)] = value  # cumulative per actor: the latest one wins

    def result(self) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
        return [(phase, r) for (phase, _, _), r in self.records.items()], [
            (key, value) for (_, key), value in self.llm.items()
        ]


@ray.remote(num_cpus=0)
class RateLimiter:
    """One backend's RPM and TPM token buckets for the whole cluster (an async actor: waiting
    callers hold no thread)."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        from dataflow_cli.llm.ratelimit import TokenBucket

        self.buckets = {"rpm": TokenBucket(rpm) if rpm else None, "tpm": TokenBucket(tpm) if tpm else None}
        self.granted = {"rpm": 0.0, "tpm": 0.0}

    async def acquire(self, kind: str, amount: float) -> float:
        bucket = self.buckets[kind]
        waited = await bucket.acquire(amount) if bucket is not None else 0.0
        self.granted[kind] += amount
        return waited

    async def refund(self, kind: str, amount: float) -> None:
        bucket = self.buckets[kind]
        if bucket is not None:
            bucket.refund(amount)
            self.granted[kind] -= amount

    async def usage(self) -> dict[str, float]:
        return dict(self.granted)


class _ClusterBucket:
    """A `TokenBucket` look-alike whose tokens come from the cluster's `RateLimiter`."""

    def __init__(self, limiter: Any, kind: str):
        self.limiter = limiter
        self.kind = kind

    async def acquire(self, amount: float = 1.0) -> float:
        return await self.limiter.acquire.remote(self.kind, amount)

    def refund(self, amount: float) -> None:
        self.limiter.refund.remote(self.kind, amount)  # fire and forget: a late refund only frees tokens


def _share_limits(engine: Any, backend: str, limiter_name: str, namespace: str) -> None:
    """Swap the engine's per-process RPM/TPM buckets of `backend` for the cluster-wide ones, so
    N actors together stay under the limits instead of each using all of them."""
    limiter = ray.get_actor(limiter_name, namespace=namespace)
    state = engine._backends[backend]  # noqa: SLF001 - the engine keeps one bucket per backend
    if state.rpm is not None:
        state.rpm = _ClusterBucket(limiter, "rpm")
    if state.tpm is not None:
        state.tpm = _ClusterBucket(limiter, "tpm")
