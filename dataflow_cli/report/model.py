"""The run report as a plain dict, built from a run directory.

Every count is copied from `stats.json` as is (the report must never disagree with it); the
only other data read are a few sample rows from the output and rejects files. Sections whose
source is missing from an older run's stats say so (`*_note`) instead of showing nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from pathlib import Path
from typing import Any

from dataflow_cli.errors import DataflowError, SpecError

log = logging.getLogger(__name__)

FORMAT = "dataflow.report/1"
KEPT_SAMPLES = 5
REJECTED_PER_STAGE = 2
REJECTED_SAMPLES = 12
REJECTS_SCANNED = 5_000  # rejects rows read at most to find samples of every stage
CELL_CHARS = 280  # sample cells are cut to this many characters
MAX_JSON_ARRAY_BYTES = 200_000_000
SLOWEST = 5
REJECT_COLUMNS = ("_stage", "_reason", "_detail", "_failed", "_raw")


def runs_root() -> Path:
    return Path(".dataflow") / "runs"


def latest_run_dir(root: Path | None = None) -> Path:
    """The run directory under `.dataflow/runs/` whose stats were written last."""
    root = root or runs_root()
    candidates = [p.parent for p in root.glob("*/stats.json")] if root.is_dir() else []
    if not candidates:
        raise SpecError(
            f"no finished run under `{root}`",
            hint="run a pipeline first (`dataflow run SPEC`), or pass its run directory",
        )
    return max(candidates, key=lambda d: (d / "stats.json").stat().st_mtime_ns)


def load_stats(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "stats.json"
    if not run_dir.is_dir():
        raise SpecError(
            f"run directory `{run_dir}` does not exist", hint="pass a directory under .dataflow/runs/"
        )
    if not path.is_file():
        raise SpecError(
            f"`{run_dir}` has no stats.json: not a run directory, or its run never finished",
            hint="pass a directory under .dataflow/runs/ of a finished run",
        )
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataflowError(f"cannot read `{path}`: {exc}") from None
    if not isinstance(stats, dict) or not isinstance(stats.get("stages"), list):
        raise DataflowError(f"`{path}` is not a dataflow stats file (no `stages` list)")
    return stats


def load_resolved_spec(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / "spec.resolved.yaml"
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}  # only the description comes from it: the report stands without it
    return spec if isinstance(spec, dict) else {}


# --------------------------------------------------------------------------- the model


def build_report(run_dir: Path, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report of the run in `run_dir` (its `stats.json`, unless `stats` is given)."""
    stats = stats if stats is not None else load_stats(run_dir)
    spec = load_resolved_spec(run_dir)
    stages = stats["stages"]
    has_profiles = any("columns" in s for s in stages)
    return {
        "format": FORMAT,
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run": _run_section(stats, spec, run_dir),
        "funnel": [_funnel_row(s) for s in stages],
        "drops": [
            {
                "stage": s["name"],
                "rows_in": s["rows_in"],
                "rows_dropped": s["rows_dropped"],
                "reasons": [{"reason": r, "count": c} for r, c in s.get("dropped_by_reason", {}).items()],
            }
            for s in stages
            if s.get("rows_dropped")
        ],
        "scores": score_profiles(stages),
        "pass_rates": pass_rates(stages),
        "profiles_note": None
        if has_profiles
        else "this run's stats.json has no column profiles (written by an older dataflow): "
        "no score histograms or pass rates; rerun the pipeline to get them",
        "llm": _llm_section(stages),
        "slowest": _slowest(stages),
        "gates": stats.get("gates") or [],
        "gates_note": None
        if "gates" in stats
        else "this run's stats.json has no gate results (written by an older dataflow)",
        "stopped_by": stats.get("stopped_by"),
        "budget": stats.get("budget"),  # limits, spent, left (runs with a budget only)
        "samples": _samples(stats),
    }


def _run_section(stats: dict[str, Any], spec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    keys = (
        "name", "spec", "status", "output", "rejects", "rows_read", "rows_written", "rows_rejected",
        "rows_added_by_fanout", "batches", "seconds", "rows_per_second",
    )  # fmt: skip
    run = {k: stats.get(k) for k in keys}
    run["run_dir"] = str(run_dir)
    description = spec.get("description")
    run["description"] = " ".join(description.split()) if isinstance(description, str) else None
    return run


def _funnel_row(stage: dict[str, Any]) -> dict[str, Any]:
    rows_in, rows_out = stage["rows_in"], stage["rows_out"]
    return {
        "stage": stage["name"],
        "op": stage["op"],
        "kind": stage["kind"],
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_dropped": stage["rows_dropped"],
        "keep_ratio": round(rows_out / rows_in, 4) if rows_in else None,
    }


def score_profiles(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Numeric column profiles (evaluator scores first), as the stats hold them."""
    out = []
    for stage in stages:
        for column, profile in (stage.get("columns") or {}).items():
            if isinstance(profile, dict) and profile.get("type") == "numeric":
                out.append({"stage": stage["name"], "kind": stage["kind"], "column": column, **profile})
    out.sort(key=lambda p: p["kind"] != "evaluate")  # stable: stage order within each group
    return out


def pass_rates(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Boolean columns (verifier verdicts): share of true among non-null values."""
    out = []
    for stage in stages:
        for column, profile in (stage.get("columns") or {}).items():
            if not isinstance(profile, dict) or profile.get("type") != "bool":
                continue
            known = (profile.get("count") or 0) - (profile.get("nulls") or 0)
            true = profile.get("true") or 0
            out.append(
                {
                    "stage": stage["name"],
                    "column": column,
                    "true": true,
                    "known": known,
                    "nulls": profile.get("nulls") or 0,
                    "rate": round(true / known, 4) if known > 0 else None,
                }
            )
    return out


def _llm_section(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for stage in stages:
        llm = stage.get("llm")
        if not llm:
            continue
        requests = llm.get("requests", 0)
        calls = llm.get("calls", 0)
        row = {
            "stage": stage["name"],
            "requests": requests,
            "cache_hits": llm.get("cache_hits", 0),
            "cache_hit_rate": round(llm.get("cache_hits", 0) / requests, 4) if requests else None,
            "calls": calls,
            "retries": llm.get("retries", 0),
            "errors": llm.get("errors", 0),
            "prompt_tokens": llm.get("prompt_tokens", 0),
            "completion_tokens": llm.get("completion_tokens", 0),
            "cost": llm.get("cost", 0.0),
            "stage_seconds": stage.get("seconds", 0.0),
            # Wall time of the stage per backend call: with concurrency this is throughput, not
            # the latency of one request (kept apart below when the engine records that).
            "seconds_per_call": round(stage.get("seconds", 0.0) / calls, 4) if calls else None,
            "latency": {k: v for k, v in llm.items() if k.startswith("latency")},
        }
        out.append(row)
    return out


def _slowest(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    total = sum(s.get("seconds", 0.0) for s in stages)
    ranked = sorted(stages, key=lambda s: s.get("seconds", 0.0), reverse=True)[:SLOWEST]
    return [
        {
            "stage": s["name"],
            "op": s["op"],
            "seconds": s.get("seconds", 0.0),
            "share": round(s.get("seconds", 0.0) / total, 4) if total > 0 else None,
            "batches_reused": s.get("batches_reused", 0),
        }
        for s in ranked
    ]


# --------------------------------------------------------------------------- samples


def _samples(stats: dict[str, Any]) -> dict[str, Any]:
    notes: list[str] = []
    if stats.get("status") != "complete":
        # Such a run writes neither output nor rejects: files there are an earlier run's.
        notes.append(f"the run did not complete (status `{stats.get('status')}`): it wrote no rows to sample")
        return {"kept": [], "rejected": [], "notes": notes}
    kept = _read_rows(stats.get("output"), KEPT_SAMPLES, notes, "output")
    scanned = _read_rows(stats.get("rejects"), REJECTS_SCANNED, notes, "rejects")
    return {
        "kept": [_sample_row(r) for r in kept],
        "rejected": [_sample_row(r) for r in _spread_by_stage(scanned)],
        "notes": notes,
    }


def _read_rows(path: str | None, limit: int, notes: list[str], what: str) -> list[dict[str, Any]]:
    """The first `limit` rows of an output file, reading only what they take (the engine's
    readers parse whole multi-MB blocks and fix a schema first: too much for a few samples)."""
    if not path:
        return []
    import pyarrow as pa

    file = Path(path)
    if not file.is_file():
        notes.append(f"the {what} file `{path}` is gone: no samples from it")
        return []
    try:
        return _head_rows(file, limit)
    except (DataflowError, OSError, ValueError, pa.ArrowException) as exc:
        # Samples are an illustration: a file changed since the run must not cost the report.
        notes.append(f"could not read samples from the {what} file `{path}`: {exc}")
        return []


def _head_rows(file: Path, limit: int) -> list[dict[str, Any]]:
    from dataflow_cli.io.paths import format_for

    fmt = format_for(file)
    if fmt == "jsonl":
        rows = []
        with open(file, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    rows.append(json.loads(line))
                    if len(rows) >= limit:
                        break
        return rows
    if fmt == "parquet":
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(file).iter_batches(batch_size=min(limit, 1_000))
        rows = []
        for batch in batches:
            rows.extend(batch.to_pylist())
            if len(rows) >= limit:
                break
        return rows[:limit]
    if fmt == "csv":
        import csv
        import itertools

        with open(file, encoding="utf-8", newline="") as handle:
            return list(itertools.islice(csv.DictReader(handle), limit))
    if file.stat().st_size > MAX_JSON_ARRAY_BYTES:  # a JSON array cannot be read in part
        raise ValueError(f"a JSON array file over {MAX_JSON_ARRAY_BYTES // 1_000_000} MB is not sampled")
    rows = json.loads(file.read_text(encoding="utf-8"))
    return rows[:limit] if isinstance(rows, list) else []


def _spread_by_stage(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A few rejected rows of every stage (rejects are in batch order, so the first rows would
    often all come from one stage), then of every reason within it."""
    chosen: list[dict[str, Any]] = []
    per_stage: dict[str, int] = {}
    seen_reasons: set[tuple[Any, Any]] = set()
    for row in rows:  # first pass: one row per distinct (stage, reason)
        key = (row.get("_stage"), row.get("_reason"))
        if key in seen_reasons or per_stage.get(str(key[0]), 0) >= REJECTED_PER_STAGE:
            continue
        seen_reasons.add(key)
        per_stage[str(key[0])] = per_stage.get(str(key[0]), 0) + 1
        chosen.append(row)
        if len(chosen) >= REJECTED_SAMPLES:
            break
    return chosen


def _sample_row(row: dict[str, Any]) -> dict[str, Any]:
    cells = {k: _cell(v) for k, v in row.items() if k not in REJECT_COLUMNS}
    out: dict[str, Any] = {"cells": cells}
    for key in REJECT_COLUMNS:
        if row.get(key) is not None:
            out[key.lstrip("_")] = _cell(row[key])
    return out


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
