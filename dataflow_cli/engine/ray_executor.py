"""Ray executor: the same spec, with the same guarantees, on a Ray cluster (`--executor ray`).

It is the local executor (`executor.py`) with the data path moved onto Ray Data; the lock,
output writing, rejects merge, accounting check, stats and manifest are the local ones:

* Input: the driver reads the files with the local readers, so batches, schema, errors and row
  ids `_id` are exactly the local ones; each batch becomes one block of a Ray dataset, tagged
  with its batch index (`BATCH`), which keys the checkpoints.
* Row-local stages: consecutive stages without an LLM run as one `map_batches` of Ray tasks
  whose worker processes build the stages once and keep them for the run (actor pools would be
  started anew for every pass; `DATAFLOW_RAY_CPU_ACTORS=1` uses them anyway); each LLM stage
  gets an actor pool sized from its backend's `max_concurrency` (see `ray_workers.StageRunner`). Workers checkpoint each (stage, batch) delta to the shared
  store and write the rows they reject there too.
* Global stages: a pre-pass over the upstream, as locally; exact and MinHash dedup are computed
  on the cluster (`ray_dedup.py`), any other global operator gets the projected batches on the
  driver, in order. Either way each batch's decisions are saved as the local executor saves
  them, and the main pass replays them.
* Output: the driver writes the final blocks in input order (`preserve_order`), so the output
  file equals the local one row for row.

The request cache is the SQLite file the local executor uses, opened by every LLM actor (its
path is resolved on the driver); checkpoints go to `checkpoint_dir` (default: the run
directory). A rerun after a crash replays finished shards and answers completed requests from
the cache.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.engine.executor import Executor, Progress, _remove_stale
from dataflow_cli.engine.ray_store import ShardStore
from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.io.writers import TableWriter
from dataflow_cli.operator import Batch
from dataflow_cli.spec.model import Spec, Stage

log = logging.getLogger(__name__)

REQUESTS_PER_LLM_ACTOR = 64  # one actor's event loop keeps this many requests in flight at most
LLM_BATCHES_PER_ACTOR = 8  # batches one LLM actor works on at once (threads waiting on answers)
SHUFFLE_MIN_ROWS = 50_000  # inputs smaller than this run exact/MinHash dedup on the driver
# Rule-based stages run as Ray tasks whose worker processes keep the built stages (see
# `ray_workers.run_segment`); DATAFLOW_RAY_CPU_ACTORS=1 uses an actor pool per pass instead.
CPU_STAGES_AS_TASKS = os.environ.get("DATAFLOW_RAY_CPU_ACTORS") != "1"


def import_ray() -> Any:
    """`ray`, or a one-line error with the install command when it is missing."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is the extra's point; a bare `ray` is not enough
    except ImportError:
        raise SpecError(
            "`--executor ray` needs Ray Data, which is not installed",
            hint="pip install 'dataflow-cli[ray]'",
        ) from None
    return ray


class RayExecutor(Executor):
    def __init__(
        self,
        spec: Spec,
        run_dir: Path,
        *,
        fresh: bool = False,
        progress: Progress | None = None,
        workers: int = 2,
        overrides: list[str] | tuple[str, ...] = (),
        address: str | None = None,
        checkpoint_dir: str | None = None,
    ):
        super().__init__(spec, run_dir, fresh=fresh, progress=progress, workers=workers)
        self.ray = import_ray()
        if spec.budget:
            raise SpecError(
                "budgets (`budget:`, --max-usd/--max-tokens/--max-requests) are not enforced on Ray yet",
                hint="run with --executor local, or drop the budget",
            )
        batch_mode = [s.name for s in spec.stages if s.mode == "batch"]
        if batch_mode:
            raise SpecError(
                f"stage `{batch_mode[0]}` uses `mode: batch`, which the Ray executor does not run yet",
                hint="run with --executor local, or use `mode: online`",
            )
        self.overrides = list(overrides)
        self.address = address
        relative = [str(d.relative_to(self.run_dir.root)) for d in self.run_dir.stage_dirs]
        self.store = ShardStore(checkpoint_dir or self.run_dir.root, relative)
        self.namespace = f"dataflow-{uuid.uuid4().hex[:12]}"
        self._actors: list[Any] = []
        self._blocks: list[Any] | None = None  # object refs of the input batches
        self._sizes: list[int] = []
        self._prepassed: set[int] = set()  # global stages whose decisions this run computed
        self._connected = False

    # Public ---------------------------------------------------------------------------
    def run(self):
        try:
            return super().run()
        except Exception as exc:
            error = self._worker_error() or _user_error(exc)
            if error is exc:
                raise
            raise error from None
        finally:
            self._disconnect()

    def _worker_error(self) -> DataflowError | None:
        """The user error a worker stopped on (see `StageRunner.__call__`), if any."""
        if getattr(self, "tally", None) is None or not self.ray.is_initialized():
            return None
        try:
            failure = self.ray.get(self.tally.failure.remote(), timeout=10)
        except Exception:  # noqa: BLE001 - the cluster itself is gone: report the original error
            return None
        if failure is None:
            return None
        reason, hint, location, exit_code = failure
        error = DataflowError(reason, hint=hint, location=location)
        error.exit_code = exit_code
        return error

    # Cluster --------------------------------------------------------------------------
    def _connect(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
            try:
                ray.init(
                    address=self.address,
                    namespace=self.namespace,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    configure_logging=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise DataflowError(
                    f"cannot connect to the Ray cluster at `{self.address}`: {exc}",
                    hint="start one with `ray start --head` (leave out --address to start a local one); "
                    "a cluster with token authentication needs RAY_AUTH_MODE=token in the environment",
                ) from None
            self._connected = True
        from ray.data import DataContext

        # Ray's own INFO lines (and its note that we turned its progress bars off) would mix
        # with the CLI's output on stderr.
        logging.getLogger("ray").setLevel(logging.WARNING)
        logging.getLogger("ray.data").setLevel(logging.ERROR)

        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # output rows in input order, as locally
        context.enable_progress_bars = False  # the CLI draws its own progress
        context.target_max_block_size = None  # one block per batch: never split (checkpoint keys)

    def _disconnect(self) -> None:
        for actor in self._actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone with its cluster
                pass
        self._actors = []
        if self._connected:
            self.ray.shutdown()
            self._connected = False

    def _start_llm(self) -> None:
        """On Ray: connect, open the shared checkpoint store, start the run's tally and one
        rate limiter per backend (the stages' engines live in the workers)."""
        from dataflow_cli.engine.ray_workers import RateLimiter, Tally, WorkerPlan

        self._connect()
        self.store.open(self.fresh)
        self.tally = cast(Any, Tally).options(name="tally", namespace=self.namespace).remote()
        self._actors.append(self.tally)
        limiters: dict[str, str] = {}
        shares: dict[str, int] = {}
        self._pool_sizes: dict[str, int] = {}
        cache_path = None
        for stage in self.stages:
            name = stage.backend_name
            if not stage.operator.uses_llm or name is None or name in shares:
                continue
            _, config = self.spec.backends[name]
            actors = max(1, math.ceil(config.max_concurrency / REQUESTS_PER_LLM_ACTOR))
            self._pool_sizes[name] = actors
            shares[name] = math.ceil(config.max_concurrency / actors)
            if config.cache:
                from dataflow_cli.llm.cache import default_cache_path

                cache_path = str(default_cache_path().resolve())
            if config.rpm or config.tpm:
                limiters[name] = f"limiter-{name}"
                actor = (
                    cast(Any, RateLimiter)
                    .options(name=limiters[name], namespace=self.namespace)
                    .remote(config.rpm, config.tpm)
                )
                self._actors.append(actor)
        self.plan = WorkerPlan(
            spec_file=str(self.spec.file.resolve()),
            overrides=self.overrides,
            cwd=os.getcwd(),
            env=_environment(self.spec),
            store=self.store,
            tally="tally",
            namespace=self.namespace,
            cache_path=cache_path,
            limiters=limiters,
            llm_share=shares,
        )

    # Input ----------------------------------------------------------------------------
    def _dataset(self):
        """The input as a Ray dataset: one block per batch, tagged with its index."""
        from dataflow_cli.engine.ray_workers import BATCH

        if self._blocks is None:
            self._blocks, self._sizes = [], []
            for index, table in self._input_batches():
                tagged = table.append_column(BATCH, pa.array([index] * table.num_rows, pa.int64()))
                self._blocks.append(self.ray.put(tagged.combine_chunks()))
                self._sizes.append(table.num_rows)
            if not self._blocks:
                raise RuntimeError("input produced no batches")  # readers raise InputError first
            self._input = self.ray.data.from_arrow_refs(self._blocks)  # materialized: reused by each pass
        return self._input

    def _pipeline(self, dataset, stop: int, phase: str):
        """`dataset` through stages [0, stop): one `map_batches` per run of non-LLM stages and one
        per LLM stage."""
        from ray.data import ActorPoolStrategy

        from dataflow_cli.engine.ray_workers import StageRunner, run_segment

        segments: list[list[int]] = []
        for k in range(stop):
            llm = self.stages[k].operator.uses_llm
            if llm or not segments or self.stages[segments[-1][-1]].operator.uses_llm:
                segments.append([k])
            else:
                segments[-1].append(k)
        cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        cpu_segments = sum(1 for s in segments if not self.stages[s[0]].operator.uses_llm)
        # Every pool needs one actor to make progress: share the CPUs when there are more pools.
        per_actor = min(1.0, cpus / max(1, cpu_segments))
        for segment in segments:
            stage = self.stages[segment[0]]
            kwargs = {"plan": self.plan, "stages": segment, "phase": phase}
            if stage.operator.uses_llm:
                assert stage.backend_name is not None
                compute = ActorPoolStrategy(
                    size=self._pool_sizes[stage.backend_name],
                    max_tasks_in_flight_per_actor=LLM_BATCHES_PER_ACTOR,
                    max_concurrent_calls_per_actor=LLM_BATCHES_PER_ACTOR,
                    enable_true_multi_threading=True,
                )
                dataset = dataset.map_batches(
                    StageRunner,
                    fn_constructor_kwargs=kwargs,
                    batch_size=None,
                    batch_format="pyarrow",
                    compute=compute,
                    num_cpus=0.0,  # waiting on answers costs no CPU worth reserving
                    zero_copy_batch=True,
                )
            elif CPU_STAGES_AS_TASKS:
                dataset = dataset.map_batches(
                    run_segment, fn_kwargs=kwargs, batch_size=None, batch_format="pyarrow", num_cpus=per_actor
                )
            else:
                dataset = dataset.map_batches(
                    StageRunner,
                    fn_constructor_kwargs=kwargs,
                    batch_size=None,
                    batch_format="pyarrow",
                    compute=ActorPoolStrategy(min_size=1, max_size=cpus),
                    num_cpus=per_actor,
                    zero_copy_batch=True,
                )
        return dataset

    # Global stages --------------------------------------------------------------------
    def _global_prepass(self, k: int, stage: Stage) -> None:
        if self.store.is_complete(k):
            return
        from dataflow_cli.engine import ray_dedup

        self.progress.phase(f"global stage `{stage.name}`: scanning")
        t0 = time.perf_counter()
        upstream = self._pipeline(self._dataset(), k, f"pre:{k}")
        # A hash shuffle costs seconds of fixed start-up (its aggregator actors): below this
        # many rows the operator itself decides faster on the driver (the same decisions).
        small = sum(self._sizes) < int(os.environ.get("DATAFLOW_RAY_SHUFFLE_MIN_ROWS", SHUFFLE_MIN_ROWS))
        distributed = None if small else ray_dedup.for_operator(stage.operator)
        if distributed is not None:
            distributed(self, k, stage, upstream)
        else:
            self._global_on_driver(k, stage, upstream)
        self.store.mark_complete(k, len(self._sizes))
        self._prepassed.add(k)
        self._prepass_seconds = getattr(self, "_prepass_seconds", {})
        self._prepass_seconds[k] = time.perf_counter() - t0

    def _global_on_driver(self, k: int, stage: Stage, upstream) -> None:
        """Any other global operator: its `process_all` on the driver over the projected upstream
        batches, in order (batches emptied upstream included, as locally)."""
        from dataflow_cli.engine.delta import make_delta

        columns = ["_id", *[c for c in stage.operator.required_columns() if c != "_id"]]
        shapes: list[tuple[int, pa.Schema]] = []

        def batches() -> Iterator[Batch]:
            for table in self._upstream_batches(upstream, columns):
                shapes.append((table.num_rows, table.schema))
                yield Batch(table, stage.inputs)

        count = 0
        for i, result in enumerate(stage.operator.process_all(batches())):
            n, schema = shapes[i]
            placeholder = pa.table({f.name: pa.nulls(n, f.type) for f in schema})  # as the local pre-pass
            self.store.save(k, i, make_delta(stage, placeholder, result))
            count += 1
        if count != len(shapes):
            raise RuntimeError(
                f"global operator `{stage.op_name}` yielded {count} results for {len(shapes)} batches"
            )

    def _upstream_batches(self, upstream, columns: list[str]) -> Iterator[pa.Table]:
        """Every batch of `upstream` projected to `columns`, in batch order, one table per batch
        (a batch whose rows were all dropped upstream comes as an empty table)."""
        from dataflow_cli.engine.ray_workers import BATCH

        expected = 0
        schema: pa.Schema | None = None
        for block in upstream.select_columns([BATCH, *columns]).iter_batches(
            batch_size=None, batch_format="pyarrow"
        ):
            if block.num_rows == 0:
                continue
            tags = block.column(BATCH)
            for tag in pc.unique(tags).to_pylist():
                table = block.filter(pc.equal(tags, tag)).drop_columns([BATCH])
                i = tag if tag >= 0 else -tag - 1
                if tag < 0:
                    table = table.slice(0, 0)  # the placeholder of a batch emptied upstream
                schema = table.schema
                while expected < i:
                    yield schema.empty_table()
                    expected += 1
                yield table
                expected = i + 1
        empty = (
            schema.empty_table()
            if schema is not None
            else pa.table({c: pa.array([], pa.string()) for c in columns})
        )
        while expected < len(self._sizes):
            yield empty
            expected += 1

    # Main pass ------------------------------------------------------------------------
    def _main_pass(self, output: TableWriter, started: float) -> None:
        from dataflow_cli.engine.ray_workers import BATCH

        dataset = self._pipeline(self._dataset(), len(self.stages), "main")
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            if table.num_rows and pc.min(table.column(BATCH)).as_py() < 0:
                table = table.filter(pc.greater_equal(table.column(BATCH), 0))  # emptied batches
            if table.num_rows == 0:
                continue
            table = table.drop_columns([BATCH])
            self.stats.rows_written += table.num_rows
            output.write(self._public(table))
            self.stats.seconds = time.perf_counter() - started
            self.progress.batch_done(self.stats)
        self._account_all()

    def _account_all(self) -> None:
        """Stats from the workers' counters: what the local executor adds up batch by batch."""
        records, llm = self.ray.get(self.tally.result.remote())
        s = self.stats
        s.batches = len(self._sizes)
        s.rows_read = sum(self._sizes)
        # A shard a pre-pass computed is replayed by the main pass, yet computed by this run.
        computed_now = {(r["stage"], r["batch"]) for _, r in records if r["computed"]}
        records.sort(key=lambda item: (item[1]["batch"], item[1]["stage"]))  # the local merge order
        for phase, record in records:
            stage_stats = s.stages[record["stage"]]
            stage_stats.seconds += record["seconds"]
            if phase != "main":
                continue  # a pre-pass computes upstream rows once more: only its time counts
            k = record["stage"]
            stage_stats.rows_in += record["rows_in"]
            stage_stats.rows_out += record["rows_out"]
            stage_stats.dropped_by_reason.update(record["reasons"])
            self.profiles[k].merge(record.get("columns"))
            computed = (k, record["batch"]) in computed_now or (record["reused"] and k in self._prepassed)
            stage_stats.batches_computed += computed
            stage_stats.batches_reused += record["reused"] and not computed
            dropped = sum(record["reasons"].values())
            s.rows_rejected += dropped
            if self.stages[k].kind == "generate":
                s.rows_added_by_fanout += record["rows_out"] - record["rows_in"] + dropped
        for stage_stats in s.stages:
            stage_stats.rows_dropped = sum(stage_stats.dropped_by_reason.values())
        for k, seconds in getattr(self, "_prepass_seconds", {}).items():
            s.stages[k].seconds += seconds
        self._llm_snapshots = llm

    def _collect_llm_stats(self) -> None:
        snapshots = getattr(self, "_llm_snapshots", None)
        if snapshots is None and self.tally_alive():
            try:
                snapshots = self.ray.get(self.tally.result.remote())[1]
            except Exception:  # noqa: BLE001 - a failed run still writes what it knows
                snapshots = []
        for k, stage in enumerate(self.stages):
            if not stage.operator.uses_llm:
                continue
            parts = [v for key, v in (snapshots or []) if key.endswith(f":{k}")]
            if not parts:  # no row reached the stage: zero counters, as locally
                from dataflow_cli.llm.engine import LLMStats

                parts = [LLMStats().to_dict()]
            self.stats.stages[k].llm = _sum_llm(parts)

    def tally_alive(self) -> bool:
        return getattr(self, "tally", None) is not None and self.ray.is_initialized()

    # Finishing ------------------------------------------------------------------------
    def _merge_rejects(self) -> None:
        import pyarrow.parquet as pq  # noqa: F401 - the store reads Parquet

        parts = self.store.reject_parts()
        if not parts:
            _remove_stale(self.spec.rejects_path)
            self.stats.rejects = None
            return
        schema = pa.unify_schemas([self.store.read_schema(p) for p in parts], promote_options="permissive")
        names = [n for n in schema.names if n not in ("_stage", "_reason")] + ["_stage", "_reason"]
        schema = pa.schema([schema.field(n) for n in names])
        with TableWriter(self.spec.rejects_path, schema=schema) as writer:
            for part in parts:
                table = self.store.read(part)
                for f in schema:
                    if f.name not in table.column_names:
                        table = table.append_column(f, pa.nulls(table.num_rows, f.type))
                writer.write(table.select(schema.names).cast(schema))
            writer.commit()


def _sum_llm(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not parts:
        return None
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict):
                total[key] = dict(Counter(total.get(key, {})) + Counter(value))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            else:
                total.setdefault(key, value)
    for key in ("cost", "rate_limit_wait"):
        if key in total:
            total[key] = round(total[key], 6 if key == "cost" else 3)
    return total


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def _environment(spec: Spec) -> dict[str, str]:
    """Environment the workers need to rebuild the spec as the driver did: the variables it
    references (`${VAR}`, keys named by `*_env` settings), dataflow's own settings and litellm's
    (e.g. its offline price map)."""
    names = set(_REFERENCE.findall(spec.file.read_text(encoding="utf-8")))
    for _, config in spec.backends.values():
        for key, value in config.model_dump().items():
            if key.endswith("_env") and isinstance(value, str):
                names.add(value)
    names |= {n for n in os.environ if n.startswith(("DATAFLOW_", "LITELLM_"))}
    return {n: os.environ[n] for n in names if n in os.environ}


def _user_error(exc: BaseException) -> BaseException:
    """A worker's `DataflowError` (e.g. a fatal LLM error), unwrapped from Ray's task errors so
    the CLI prints it as locally; anything else as it came."""
    seen = exc
    for _ in range(10):
        if isinstance(seen, DataflowError):
            return seen
        cause = getattr(seen, "cause", None) or seen.__cause__
        if cause is None or cause is seen:
            break
        seen = cause
    return exc


__all__ = ["RayExecutor", "import_ray"]
