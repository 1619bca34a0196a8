"""A row's journey through a run: what each stage decided about it and what it wrote.

Replayed from the run directory (`RunInfo.replay`): the input batch holding the row (or, for a
fan-out child `<parent>.<k>`, its ancestor), then every stage's checkpointed delta. Each step is
one of: kept (the row passed, with the values the stage wrote), rewritten (a refine stage changed
it: before and after), dropped (stage and reason, and the raw model answer when the engine kept
one), fanned_out (a generator turned it into child rows; the journey follows the child asked
for), not_reached (it was dropped earlier), in_children (its fan-out children went on).
"""

from __future__ import annotations

from typing import Any

from dataflow_cli.runinfo import RunDirError, RunInfo, StageInfo

# Delta columns that are the engine's bookkeeping, not values a stage wrote.
_BOOKKEEPING = {"_keep", "_reason", "_detail", "_src", "_failed", "_raw", "_row", "_id", "_parent_id"}


def _candidates(row_id: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `a.b`, `a`]: the row itself, then its fan-out ancestors."""
    parts = row_id.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _find(info: RunInfo, row_id: str) -> tuple[int, Any, str]:
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = _candidates(row_id)
    for i, table in info.input_batches():
        hits = table.filter(pc.is_in(table.column("_id"), value_set=pa.array(wanted, pa.string())))
        if hits.num_rows:
            found = set(hits.column("_id").to_pylist())
            return i, table, next(c for c in wanted if c in found)
    raise RunDirError(
        f"no row `{row_id}` in the run at `{info.root}`",
        hint="row ids are the `_id` column of the rejects file (and of the output with "
        "`output.internal_columns: true`); fan-out children are `<parent id>.<k>`",
    )


def _row(table: Any, row_id: str) -> dict[str, Any] | None:
    import pyarrow.compute as pc

    hits = table.filter(pc.equal(table.column("_id"), row_id))
    return hits.slice(0, 1).to_pylist()[0] if hits.num_rows else None


def _written(stage: StageInfo, delta: Any) -> list[str]:
    return [c for c in delta.column_names if c not in _BOOKKEEPING]


def _llm(stage: StageInfo) -> dict[str, Any] | None:
    if not stage.uses_llm:
        return None
    return {"backend": stage.backend, "model": stage.model, "prompt_sha256": stage.prompt_sha256}


def explain_row(info: RunInfo, row_id: str) -> dict[str, Any]:
    """The journey of row `row_id` (JSON-ready)."""
    i, table, found = _find(info, row_id)
    current: str | None = found
    steps: list[dict[str, Any]] = []
    fate, dropped_at, parent = "kept", None, None
    reached = found == row_id
    for stage, delta, after, rejected in info.replay(i, table):
        step: dict[str, Any] = {"stage": stage.name, "op": stage.op, "kind": stage.kind}
        if llm := _llm(stage):
            step["llm"] = llm
        steps.append(step)
        if current is None:
            step["decision"] = "in_children" if fate == "fanned_out" else "not_reached"
            table = after
            continue
        before = _row(table, current)
        columns = _written(stage, delta)
        dropped = _row(rejected, current) if rejected is not None else None
        kept = _row(after, current)
        if dropped is not None:
            step["decision"] = "dropped"
            step["reason"] = dropped["_reason"]
            step["values"] = {c: dropped[c] for c in columns if c in dropped}
            if dropped.get("_raw_output") is not None:
                step["raw_output"] = dropped["_raw_output"]
            fate, dropped_at = "dropped", {"stage": stage.name, "reason": dropped["_reason"]}
            current = None
        elif kept is not None:
            if stage.kind == "refine":
                changed = {
                    c: (before or {}).get(c)
                    for c in kept
                    if (before or {}).get(c) != kept[c] or c not in (before or {})
                }
                step["decision"] = "rewritten" if changed else "unchanged"
                if changed:
                    step["before"] = changed
                    step["values"] = {c: kept.get(c) for c in changed}
            else:
                step["decision"] = "kept"
                step["values"] = {c: kept[c] for c in columns if c in kept}
        else:
            import pyarrow.compute as pc

            children = (
                after.filter(pc.equal(after.column("_parent_id"), current))
                if "_parent_id" in after.column_names
                else None
            )
            ids = children.column("_id").to_pylist() if children is not None else []
            step["decision"] = "fanned_out"
            step["children"] = ids
            follow = next((c for c in ids if row_id == c or row_id.startswith(c + ".")), None)
            if follow is None:
                fate, current = "fanned_out", None
            else:
                child = _row(after, follow)
                step["row"] = follow
                step["values"] = {c: child[c] for c in columns if child and c in child}
                parent, current = current, follow
                reached = reached or follow == row_id
            if not ids:  # a generator that produced nothing rejects the row; kept for safety
                fate, current = "dropped", None
        table = after
    if not reached:
        last = next((s for s in reversed(steps) if s.get("decision") in ("dropped", "fanned_out")), None)
        what = (
            f"; its ancestor was {last['decision'].replace('_', ' ')} at stage `{last['stage']}`"
            if last
            else ""
        )
        raise RunDirError(
            f"no row `{row_id}` in the run at `{info.root}`{what}",
            hint="fan-out children are `<parent id>.<k>`, k counting from 0; "
            "`dataflow explain` on the ancestor lists them",
        )
    out: dict[str, Any] = {"run_dir": str(info.root), "row_id": row_id, "batch": i, "fate": fate}
    if parent is not None:
        out["parent_id"] = parent
    out["dropped_at"] = dropped_at
    if fate == "kept" and current is not None:
        out["row"] = _row(table, current)
    out["stages"] = steps
    return out


__all__ = ["explain_row"]
