"""Compare two runs: counts and keep rates per stage, drop reasons, score distributions,
tokens and cost, and rows whose fate differs.

Everything but the rows comes from the two `stats.json` (column profiles included). Row fates
come from the runs' reject parts: a row is "dropped at <stage>: <reason>" in a run that rejected
it and "not dropped" in one that did not (kept, or turned into fan-out children there). A row
that one run never read (a smaller `--limit`) is not compared: with the engine's own ids
(`0`, `1`, ... in input order) that is known from the rows read.
"""

from __future__ import annotations

from typing import Any

from dataflow_cli.runinfo import RunDirError, RunInfo

LLM_COUNTERS = ("requests", "cache_hits", "calls", "prompt_tokens", "completion_tokens", "cost")


def _pair(a: Any, b: Any, digits: int = 6) -> dict[str, Any]:
    delta = None if a is None or b is None else round(b - a, digits)
    return {"a": a, "b": b, "delta": delta}


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _rate(stage: dict[str, Any] | None) -> float | None:
    if not stage or not stage.get("rows_in"):
        return None
    return round(stage["rows_out"] / stage["rows_in"], 6)


def _columns(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[dict[str, Any]]:
    ca, cb = (a or {}).get("columns") or {}, (b or {}).get("columns") or {}
    out = []
    for name in dict.fromkeys([*ca, *cb]):
        pa_, pb = ca.get(name) or {}, cb.get(name) or {}
        kind = pa_.get("type") or pb.get("type")
        entry: dict[str, Any] = {"column": name, "type": kind}
        rate = lambda p, k: (p[k] / p["count"]) if p.get("count") and p.get(k) is not None else None  # noqa: E731
        entry["null_rate"] = _pair(rate(pa_, "nulls"), rate(pb, "nulls"))
        if kind == "numeric":
            entry["mean"] = _pair(pa_.get("mean"), pb.get("mean"))
            qa, qb = pa_.get("quantiles") or {}, pb.get("quantiles") or {}
            entry["quantiles"] = {q: _pair(qa.get(q), qb.get(q)) for q in dict.fromkeys([*qa, *qb])}
        elif kind == "bool":
            entry["true_rate"] = _pair(rate(pa_, "true"), rate(pb, "true"))
        elif kind in ("string", "list"):
            entry["mean_length"] = _pair(pa_.get("mean_length"), pb.get("mean_length"))
        out.append(entry)
    return out


def _fates(info: RunInfo) -> dict[str, str]:
    table = info.rejects()
    return {
        i: f"dropped at {s}: {r}"
        for i, s, r in zip(
            table.column("_id").to_pylist(),
            table.column("_stage").to_pylist(),
            table.column("_reason").to_pylist(),
            strict=True,
        )
    }


def _read_by(info: RunInfo, row_id: str) -> bool:
    """Whether the run read the row (unknown for a user's own ids: assumed yes)."""
    root = row_id.split(".", 1)[0]
    return not root.isdigit() or int(root) < (info.stats or {}).get("rows_read", 0)


def _sort_key(row_id: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in row_id.split("."))


def diff_runs(a: RunInfo, b: RunInfo, sample: int = 20) -> dict[str, Any]:
    for info in (a, b):
        if info.stats is None:
            raise RunDirError(f"run `{info.root}` has no stats.json: it never finished a run")
    sa, sb = a.stats or {}, b.stats or {}
    out: dict[str, Any] = {"a": str(a.root), "b": str(b.root), "status": {"a": a.status, "b": b.status}}
    out["totals"] = {k: _pair(sa.get(k), sb.get(k)) for k in ("rows_read", "rows_written", "rows_rejected")}
    names = list(dict.fromkeys([s["name"] for s in sa["stages"]] + [s["name"] for s in sb["stages"]]))
    stages = []
    llm_total: dict[str, list] = {k: [0, 0] for k in LLM_COUNTERS}
    for name in names:
        x, y = a.stage_stats(name), b.stage_stats(name)
        entry: dict[str, Any] = {"stage": name, "in": {"a": x is not None, "b": y is not None}}
        entry["op"] = {"a": (x or {}).get("op"), "b": (y or {}).get("op")}
        entry["rows_in"] = _pair((x or {}).get("rows_in"), (y or {}).get("rows_in"))
        entry["rows_out"] = _pair((x or {}).get("rows_out"), (y or {}).get("rows_out"))
        entry["keep_rate"] = _pair(_rate(x), _rate(y))
        ra, rb = (x or {}).get("dropped_by_reason") or {}, (y or {}).get("dropped_by_reason") or {}
        entry["drop_reasons"] = [
            {"reason": r, **_pair(ra.get(r, 0), rb.get(r, 0))}
            for r in dict.fromkeys([*ra, *rb])
            if ra.get(r, 0) != rb.get(r, 0)
        ]
        entry["columns"] = _columns(x, y)
        la, lb = (x or {}).get("llm"), (y or {}).get("llm")
        if la or lb:
            entry["llm"] = {k: _pair((la or {}).get(k, 0), (lb or {}).get(k, 0)) for k in LLM_COUNTERS}
            for k in LLM_COUNTERS:
                llm_total[k][0] += (la or {}).get(k, 0) or 0
                llm_total[k][1] += (lb or {}).get(k, 0) or 0
        stages.append(entry)
    out["stages"] = stages
    out["llm"] = {k: _pair(_round(a_), _round(b_)) for k, (a_, b_) in llm_total.items()}

    fa, fb = _fates(a), _fates(b)
    differ = []
    for row_id in set(fa) | set(fb):
        if not (_read_by(a, row_id) and _read_by(b, row_id)):
            continue
        one, two = fa.get(row_id, "not dropped"), fb.get(row_id, "not dropped")
        if one != two:
            differ.append({"_id": row_id, "a": one, "b": two})
    differ.sort(key=lambda r: _sort_key(r["_id"]))
    counts = {
        "dropped_in_a_only": sum(r["b"] == "not dropped" for r in differ),
        "dropped_in_b_only": sum(r["a"] == "not dropped" for r in differ),
    }
    counts["dropped_differently"] = len(differ) - counts["dropped_in_a_only"] - counts["dropped_in_b_only"]
    out["rows"] = {"differ": len(differ), **counts, "sample": differ[:sample]}
    return out


__all__ = ["diff_runs"]
