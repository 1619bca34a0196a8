"""`dataflow estimate`: run a seeded sample of the input through the pipeline and project the
whole run's requests, tokens, cost and wall time.

The sample goes through every stage in order with the real backends. Its answers land in the
normal request cache, so the real run reuses them (the cache key depends on the prompt, not on
the row's position). Per stage the sample gives a keep rate (fan-out > 1, filters < 1), requests
per row and tokens per row; projections chain them from the input's row count, so a filter early
in the pipeline shrinks what later stages are projected to cost.

Cost uses the backend's price (`cost.prices`: the spec's, else litellm's map); a stage whose
price is unknown has an unknown cost, and so has the total (the known part is given beside it).
`mode: batch` stages are sampled online (waiting for a batch job would defeat an estimate) and
priced at the batch price; their wall time is bounded by the completion window, not projected.

Retries seen on the sample (transient failures, answers breaking their JSON schema) scale the
projected calls and tokens: what a request costs is what its calls cost.

Wall time per backend is the largest of: calls x latency / max_concurrency, calls / rpm,
tokens / tpm (stages sharing a backend share those limits); the run's is the slowest backend
plus the non-LLM stages' measured seconds per row. The latency is measured on the sample's
calls (requests answered from the cache have none; then only the rate limits bound the time).
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataflow_cli.cost.prices import Price, resolve_price
from dataflow_cli.spec.model import Spec

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_SAMPLE = 20


# Counting and sampling the input --------------------------------------------------------------
def count_rows(spec: Spec) -> int:
    """Input rows, cheaply: Parquet metadata, line counts for JSONL (and CSV minus its header);
    other formats are read. `input.limit` applies."""
    total = sum(_count_file(path, spec) for path in spec.input_paths)
    return min(total, spec.limit) if spec.limit else total


def _count_file(path: Path, spec: Spec) -> int:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if suffix in (".jsonl", ".ndjson", ".csv"):
        lines = _count_lines(path)
        return max(0, lines - 1) if suffix == ".csv" else lines
    from dataflow_cli.io.documents import SUFFIXES

    if suffix in SUFFIXES:
        return 1  # a document is one row (its text is extracted only when sampled)
    from dataflow_cli.io.inputs import iter_batches

    return sum(t.num_rows for t in iter_batches([path], spec.batch_size, None))


_BLANK = re.compile(rb"\n(?=[ \t\r]*\n)")


def _count_lines(path: Path) -> int:
    """Non-blank lines, counted in 1 MB blocks at memory speed (a CSV field holding a newline
    counts twice: the estimate is rough there)."""
    count = blank = 0
    last = b"\n"  # a blank first line counts as blank
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            if b"\n\n" in block or b"\n\r\n" in block or block[:1] in (b"\n", b"\r"):
                blank += len(_BLANK.findall(block))
                blank += last == b"\n" and block.lstrip(b" \t\r")[:1] == b"\n"
            last = block[-1:]
    if last != b"\n":
        count += 1  # a last line without a newline
    return count - blank


def sample_table(spec: Spec, total: int, n: int, seed: int) -> pa.Table:
    """`n` rows drawn without replacement, seeded, in input order, with their row ids (`_id`)."""
    import pyarrow as pa

    from dataflow_cli.io.inputs import iter_batches

    wanted = sorted(random.Random(seed).sample(range(total), min(n, total)))
    parts: list[pa.Table] = []
    offset, i = 0, 0
    for table in iter_batches(spec.input_paths, spec.batch_size, spec.limit):
        end = offset + table.num_rows
        take = []
        while i < len(wanted) and wanted[i] < end:
            take.append(wanted[i] - offset)
            i += 1
        if take:
            picked = table.take(pa.array(take, pa.int64()))
            if "_id" not in picked.column_names:
                ids = pa.array([str(offset + t) for t in take], pa.string())
                picked = picked.add_column(0, "_id", ids)
            parts.append(picked)
        offset = end
        if i >= len(wanted):
            break
    if not parts:
        raise ValueError("the input has no rows to sample")
    return pa.concat_tables(parts, promote_options="permissive")


# Running the sample ---------------------------------------------------------------------------
@dataclass
class Usage:
    """What one stage's requests did on the sample (cached answers included)."""

    requests: int = 0
    answered: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # time inside the engine
    calls: int = 0  # calls made to the backend (retries included; cached answers make none)
    fresh: int = 0  # requests the cache could not answer
    fresh_prompt: int = 0  # tokens of the answers those requests got
    fresh_completion: int = 0
    billed_prompt: int = 0  # tokens of every call made (retries and rejected answers included)
    billed_completion: int = 0

    def overhead(self) -> tuple[float, float, float]:
        """Calls per fresh request, and billed prompt/completion tokens per answered token:
        what retries (transient failures, answers breaking their JSON schema) add."""
        calls = self.calls / self.fresh if self.fresh else 1.0
        prompt = self.billed_prompt / self.fresh_prompt if self.fresh_prompt else 1.0
        completion = self.billed_completion / self.fresh_completion if self.fresh_completion else 1.0
        return max(1.0, calls), max(1.0, prompt), max(1.0, completion)


@dataclass
class StageSample:
    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0
    usage: Usage | None = None
    failures: dict[str, int] = field(default_factory=dict)


def _recording_client(engine, backend: str, stats, policy, stage: str, usage: Usage):
    from dataflow_cli.llm.operator import LLMClient
    from dataflow_cli.llm.types import Completion

    class RecordingClient(LLMClient):
        def complete(self, requests):
            s = self.stats
            before = (s.calls, s.cache_hits, s.shared, s.prompt_tokens, s.completion_tokens)
            t0 = time.perf_counter()
            results = super().complete(requests)
            usage.seconds += time.perf_counter() - t0
            usage.calls += s.calls - before[0]
            usage.fresh += len(requests) - (s.cache_hits - before[1]) - (s.shared - before[2])
            usage.billed_prompt += s.prompt_tokens - before[3]
            usage.billed_completion += s.completion_tokens - before[4]
            usage.requests += len(requests)
            for result in results:
                if isinstance(result, Completion):
                    usage.answered += 1
                    usage.prompt_tokens += result.prompt_tokens
                    usage.completion_tokens += result.completion_tokens
                    if not result.cached:
                        usage.fresh_prompt += result.prompt_tokens
                        usage.fresh_completion += result.completion_tokens
                else:
                    usage.failed += 1
            return results

    return RecordingClient(engine, backend, stats, policy, stage)


def run_sample(spec: Spec, table: pa.Table) -> tuple[list[StageSample], dict[str, Any]]:
    """Every stage over the sample, in order; returns what each did and the backends used."""
    from dataflow_cli import redact
    from dataflow_cli.engine.delta import REASON_KEY, apply_delta, make_delta
    from dataflow_cli.operator import Batch

    for _, config in spec.backends.values():
        redact.add_config(config)
    backends, engine = _start_engine(spec)
    samples: list[StageSample] = []
    try:
        for k, stage in enumerate(spec.stages):
            sample = StageSample(rows_in=table.num_rows)
            samples.append(sample)
            if stage.operator.uses_llm and engine is not None:
                from dataflow_cli.llm.engine import LLMStats, Policy
                from dataflow_cli.llm.operator import LLMOperator

                assert isinstance(stage.operator, LLMOperator) and stage.backend_name is not None

                sample.usage = Usage()
                policy = Policy(on_error="reject", max_error_rate=1.0, on_truncated=stage.on_truncated)
                stage.operator.bind(
                    _recording_client(
                        engine, stage.backend_name, LLMStats(), policy, stage.name, sample.usage
                    )
                )
            if table.num_rows == 0:
                continue
            t0 = time.perf_counter()
            if stage.is_global:
                columns = ["_id", *[c for c in stage.operator.required_columns() if c != "_id"]]
                projected = table.select(columns)
                (result,) = list(stage.operator.process_all(iter([Batch(projected, stage.inputs)])))
                delta = make_delta(stage, projected, result)
            else:
                delta = make_delta(stage, table, stage.operator.process(Batch(table, stage.inputs)))
            table, rejected = apply_delta(stage, table, delta)
            sample.seconds = time.perf_counter() - t0
            sample.rows_out = table.num_rows
            if rejected is not None and rejected.num_rows:
                for reason in rejected.column(REASON_KEY).to_pylist():
                    sample.failures[str(reason)] = sample.failures.get(str(reason), 0) + 1
            if k == 0 and not stage.operator.uses_llm and sample.rows_in == 0:
                break
    finally:
        if engine is not None:
            engine.close()
    return samples, backends


def _start_engine(spec: Spec):
    llm_stages = [s for s in spec.stages if s.operator.uses_llm]
    if not llm_stages:
        return {}, None
    from dataflow_cli.llm.cache import RequestCache, default_cache_path
    from dataflow_cli.llm.engine import LLMEngine

    backends: dict[str, Any] = {}
    for stage in llm_stages:
        assert stage.backend_name is not None  # validation gives every LLM stage a backend
        if stage.backend_name not in backends:
            cls, config = spec.backends[stage.backend_name]
            backends[stage.backend_name] = cls(config)
    for backend in backends.values():
        backend.price = resolve_price(backend.config)
    cache = RequestCache(default_cache_path()) if any(b.config.cache for b in backends.values()) else None
    return backends, LLMEngine(backends, cache)


# Projecting -----------------------------------------------------------------------------------
def project(spec: Spec, total: int, samples: list[StageSample], backends: dict[str, Any]) -> dict[str, Any]:
    stages_out = []
    rows = float(total)
    per_backend: dict[str, dict[str, float]] = {}
    compute_seconds = 0.0
    known_cost = 0.0
    unknown_cost: list[str] = []
    totals = {"requests": 0.0, "prompt_tokens": 0.0, "completion_tokens": 0.0}
    for stage, sample in zip(spec.stages, samples, strict=True):
        keep = sample.rows_out / sample.rows_in if sample.rows_in else 0.0
        entry: dict[str, Any] = {
            "name": stage.name,
            "op": stage.op_name,
            "kind": stage.kind,
            "mode": stage.mode if stage.operator.uses_llm else None,
            "backend": stage.backend_name,
            "sample": {
                "rows_in": sample.rows_in,
                "rows_out": sample.rows_out,
                "seconds": round(sample.seconds, 4),
            },
            "keep_rate": round(keep, 4),
            "projected": {"rows_in": round(rows), "rows_out": round(rows * keep)},
        }
        if sample.failures:
            entry["sample"]["dropped_by_reason"] = dict(
                sorted(sample.failures.items(), key=lambda kv: -kv[1])
            )
        usage = sample.usage
        if usage is not None:
            assert stage.backend_name is not None
            backend = backends[stage.backend_name]
            price: Price | None = backend.price
            batch = stage.mode == "batch"
            per_row = 1.0 / sample.rows_in if sample.rows_in else 0.0
            call_factor, prompt_factor, completion_factor = usage.overhead()
            requests = rows * usage.requests * per_row
            calls = requests * call_factor
            prompt = rows * usage.prompt_tokens * per_row * prompt_factor
            completion = rows * usage.completion_tokens * per_row * completion_factor
            cost = price.cost(prompt, completion, batch=batch) if price is not None else None
            entry["sample"].update(
                requests=usage.requests,
                sent=usage.calls,
                failed=usage.failed,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
            entry["projected"].update(
                requests=round(requests),
                calls=round(calls),  # retries included
                prompt_tokens=round(prompt),
                completion_tokens=round(completion),
                cost_usd=None if cost is None else round(cost, 6),
            )
            entry["price"] = None
            if price is not None:
                inp, out = price.rates(batch)
                entry["price"] = {
                    "input_per_mtok": inp,
                    "output_per_mtok": out,
                    "source": price.source,
                    "batch": batch,
                }
            totals["requests"] += requests
            totals["prompt_tokens"] += prompt
            totals["completion_tokens"] += completion
            if cost is None:
                unknown_cost.append(stage.name)
            else:
                known_cost += cost
            if not batch:
                b = per_backend.setdefault(
                    stage.backend_name, {"requests": 0.0, "tokens": 0.0, "busy": 0.0, "calls": 0}
                )
                b["requests"] += calls
                b["tokens"] += prompt + completion
                if usage.calls:
                    # One engine call per sample batch: its time is ceil(calls / concurrency) rounds.
                    rounds = math.ceil(usage.calls / backend.config.max_concurrency)
                    b["busy"] += usage.seconds / rounds * usage.calls
                    b["calls"] += usage.calls
        else:
            seconds = rows * (sample.seconds / sample.rows_in) if sample.rows_in else 0.0
            entry["projected"]["seconds"] = round(seconds, 2)
            compute_seconds += seconds
        stages_out.append(entry)
        rows *= keep
    backends_out = {name: _wall_time(backends[name].config, b) for name, b in per_backend.items()}
    llm_seconds = max((b["seconds"] for b in backends_out.values() if b["seconds"] is not None), default=0.0)
    return {
        "spec": str(spec.file),
        "input_rows": total,
        "stages": stages_out,
        "backends": backends_out,
        "total": {
            "rows_out": round(rows),
            "requests": round(totals["requests"]),
            "prompt_tokens": round(totals["prompt_tokens"]),
            "completion_tokens": round(totals["completion_tokens"]),
            "cost_usd": None if unknown_cost else round(known_cost, 6),
            "cost_usd_known_part": round(known_cost, 6),
            "cost_unknown_stages": unknown_cost,
            "seconds": round(llm_seconds + compute_seconds, 1),
            "batch_stages": [s.name for s in spec.stages if s.operator.uses_llm and s.mode == "batch"],
        },
    }


def _wall_time(config: Any, b: dict[str, float]) -> dict[str, Any]:
    latency = b["busy"] / b["calls"] if b["calls"] else None
    bounds = {}
    if latency is not None:
        bounds["concurrency"] = b["requests"] * latency / config.max_concurrency
    if config.rpm:
        bounds["rpm"] = b["requests"] / config.rpm * 60
    if config.tpm:
        bounds["tpm"] = b["tokens"] / config.tpm * 60
    bound = max(bounds, key=lambda name: bounds[name]) if bounds else None
    return {
        "requests": round(b["requests"]),
        "tokens": round(b["tokens"]),
        "latency_s": None if latency is None else round(latency, 4),
        "max_concurrency": config.max_concurrency,
        "rpm": config.rpm,
        "tpm": config.tpm,
        "seconds": None if bound is None else round(bounds[bound], 1),
        "bound_by": bound,
    }


def estimate(spec: Spec, sample: int = DEFAULT_SAMPLE, seed: int = 0) -> dict[str, Any]:
    import pyarrow as pa

    total = count_rows(spec)
    table = sample_table(spec, total, sample, seed) if total else pa.table({"_id": pa.array([], pa.string())})
    samples, backends = run_sample(spec, table)
    result = project(spec, total, samples, backends)
    result["sample_rows"] = table.num_rows
    result["seed"] = seed
    return result
