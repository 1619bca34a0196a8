"""A stage's effect on one batch, as a small table that can be checkpointed and replayed.

Checkpointing whole batches after every stage would rewrite the dataset once per stage; a
delta holds only what the stage decided:

| kind               | delta columns                                       |
|--------------------|-----------------------------------------------------|
| evaluate, generate | the new output columns (row-aligned with the batch) |
| generate (fan-out) | the new columns plus `_src`, the source row index   |
| refine             | rewritten columns (only changed rows, with `_row`, |
|                    | when most rows are unchanged), or the whole table   |
| filter             | `_keep`, `_reason`, `_detail`                       |
| any, partial       | the above plus `_failed` (reason) and `_raw`        |

`apply_delta(stage, table, delta)` turns the batch before the stage into the batch after it,
plus the rows the stage rejected (with `_stage` and `_reason`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.operator import Fanout, Partial, Verdict
from dataflow_cli.spec.model import Stage

KEEP, REASON, DETAIL, SOURCE = "_keep", "_reason", "_detail", "_src"
FAILED, RAW = "_failed", "_raw"
REASON_KEY = "_reason_key"
ROW = "_row"  # positions of the changed rows in a sparse refine delta
FULL_TABLE = b"dataflow.full_table"  # schema metadata marking a refine delta that replaces the table
REJECT_COLUMNS = ("_stage", "_reason")


class OperatorContractError(RuntimeError):
    """An operator returned something that breaks its contract: a bug in that operator."""


def _as_array(values: Any, length: int, what: str, type_name: str | None = None) -> pa.Array:
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) != length:
        raise OperatorContractError(f"{what}: returned {len(array)} values for {length} rows")
    if type_name is not None and str(array.type) != type_name:
        array = array.cast(pa.type_for_alias(type_name))
    return array


def make_delta(stage: Stage, table: pa.Table, result: Any, *, sparse: bool = True) -> pa.Table:
    """Check an operator's result against its kind's contract and encode it as a delta.

    `sparse=False` keeps refine deltas row-aligned (needed when failures are added per row)."""
    op = stage.operator
    n = table.num_rows
    who = f"operator `{stage.op_name}` in stage `{stage.name}`"
    if isinstance(result, Partial):
        return _partial_delta(stage, table, result, who)
    if op.kind == "filter":
        if not isinstance(result, Verdict):
            raise OperatorContractError(f"{who}: filter must return a Verdict, got {type(result).__name__}")
        keep = _as_array(result.keep, n, who, "bool")
        if keep.null_count:
            raise OperatorContractError(f"{who}: keep mask contains nulls")
        reason = _as_array(result.reason, n, who, "string")
        detail = _as_array(result.detail if result.detail is not None else [None] * n, n, who, "string")
        dropped_without_reason = pc.sum(pc.and_(pc.invert(keep), pc.is_null(reason))).as_py() or 0
        if dropped_without_reason:
            raise OperatorContractError(f"{who}: {dropped_without_reason} dropped rows have no reason")
        columns = {KEEP: keep, REASON: reason, DETAIL: detail}
        if op.active_outputs():
            columns.update(_output_columns(op, result.columns or {}, n, who))
        return pa.table(columns)

    if op.kind == "refine" and isinstance(result, pa.Table):
        if result.num_rows != n:
            raise OperatorContractError(f"{who}: returned {result.num_rows} rows for {n}")
        if "_id" not in result.column_names:
            result = result.append_column("_id", table.column("_id"))
        return result.replace_schema_metadata({FULL_TABLE: b"1"})

    if op.kind == "generate" and isinstance(result, Fanout):
        source = _as_array(result.source_index, len(_first(result.columns)), who, "int64")
        columns = _output_columns(op, result.columns, len(source), who)
        columns[SOURCE] = source
        return pa.table(columns)

    if not isinstance(result, dict):
        raise OperatorContractError(
            f"{who}: {op.kind} must return a dict of columns, got {type(result).__name__}"
        )
    if op.kind == "refine":
        columns = {}
        for logical, values in result.items():
            column = op.input_columns.get(logical) or logical
            original = table.column(column)
            array = _as_array(values, n, who)
            columns[column] = (original, array.cast(original.type) if pa.types.is_null(array.type) else array)
        if not columns:
            return pa.table({"_id": table.column("_id")})
        return _refine_delta(columns, n) if sparse else pa.table({c: new for c, (_, new) in columns.items()})
    return pa.table(_output_columns(op, result, n, who))


def _refine_delta(columns: dict[str, tuple[Any, pa.Array]], n: int) -> pa.Table:
    """Rewritten columns; when most rows are unchanged (typical for cleaning steps), only the
    changed rows, with their positions in `ROW`, so checkpoints stay small."""
    changed = np.zeros(n, dtype=bool)
    for original, new in columns.values():
        if original.type != new.type:
            changed[:] = True
            break
        differs = pc.fill_null(pc.not_equal(original, new), True)
        same_null = pc.equal(pc.is_null(original), pc.is_null(new))
        both_null = pc.and_(pc.is_null(original), pc.is_null(new))
        changed |= pc.or_(pc.and_(differs, pc.invert(both_null)), pc.invert(same_null)).to_numpy(
            zero_copy_only=False
        )
    if changed.sum() * 2 >= n:
        return pa.table({name: new for name, (_, new) in columns.items()})
    rows = np.flatnonzero(changed)
    out = {name: pc.take(new, pa.array(rows)) for name, (_, new) in columns.items()}
    out[ROW] = pa.array(rows.astype(np.int64))
    return pa.table(out)


def _partial_delta(stage: Stage, table: pa.Table, result: Partial, who: str) -> pa.Table:
    n = table.num_rows
    failed = _as_array(result.failed, n, who, "string")
    raw = _as_array(result.raw if result.raw is not None else [None] * n, n, who, "string")
    inner = make_delta(stage, table, result.result, sparse=False)
    if SOURCE not in inner.column_names:
        return inner.append_column(FAILED, failed).append_column(RAW, raw)
    # Fan-out: outputs are per generated row, failures per input row; failures become extra
    # delta rows (outputs null) pointing at their source row.
    bad = np.flatnonzero(failed.is_valid().to_numpy(zero_copy_only=False))
    extra = {f.name: pa.nulls(len(bad), f.type) for f in inner.schema}
    extra[SOURCE] = pa.array(bad, pa.int64())
    nulls = pa.nulls(inner.num_rows, pa.string())
    inner = inner.append_column(FAILED, nulls).append_column(RAW, nulls)
    extra[FAILED] = pc.take(failed, pa.array(bad, pa.int64()))
    extra[RAW] = pc.take(raw, pa.array(bad, pa.int64()))
    return pa.concat_tables([inner, pa.table(extra, schema=inner.schema)])


def _first(columns: dict[str, Any]) -> Any:
    return next(iter(columns.values())) if columns else []


def _output_columns(op, result: dict[str, Any], n: int, who: str) -> dict[str, pa.Array]:
    active = op.active_outputs()
    missing = [k for k in active if k not in result]
    if missing:
        raise OperatorContractError(f"{who}: missing outputs {missing}")
    return {
        op.output_columns[logical]: _as_array(result[logical], n, who, op.outputs[logical].type)
        for logical in active
    }


def apply_delta(stage: Stage, table: pa.Table, delta: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    """The batch after `stage`, and the rows it rejected (None if none)."""
    if FAILED in delta.column_names:
        return _apply_partial(stage, table, delta)
    kind = stage.operator.kind
    if kind == "filter":
        for column in delta.column_names:
            if column not in (KEEP, REASON, DETAIL):  # the filter's outputs
                table = table.append_column(column, delta.column(column))
        keep = delta.column(KEEP)
        if pc.all(keep).as_py() is not False:
            return table, None
        dropped = pc.invert(keep)
        reason, detail = pc.filter(delta.column(REASON), dropped), pc.filter(delta.column(DETAIL), dropped)
        return table.filter(keep), _reject(stage, table.filter(dropped), reason, detail)

    if kind == "refine":
        if (delta.schema.metadata or {}).get(FULL_TABLE):
            return delta.replace_schema_metadata(None), None
        if delta.column_names == ["_id"]:
            return table, None
        mask = None
        if ROW in delta.column_names:
            mask = np.zeros(table.num_rows, dtype=bool)
            mask[delta.column(ROW).to_numpy()] = True
            mask = pa.array(mask)
        for column in delta.column_names:
            if column == ROW:
                continue
            values = delta.column(column).combine_chunks()
            if mask is not None:
                values = pc.replace_with_mask(table.column(column).combine_chunks(), mask, values)
            table = table.set_column(table.schema.get_field_index(column), column, values)
        return table, None

    if SOURCE in delta.column_names:  # fan-out generator
        return _apply_fanout(stage, table, delta)
    for column in delta.column_names:
        table = table.append_column(column, delta.column(column))
    return table, None


def _reject(stage: Stage, rejected: pa.Table, reason: Any, detail: Any) -> pa.Table:
    """A filter's rejected rows with `_stage`, `_reason` ("reason: detail") and `REASON_KEY`."""
    full_reason = pc.if_else(pc.is_null(detail), reason, pc.binary_join_element_wise(reason, detail, ": "))
    return _with_reject_columns(rejected, stage.name, full_reason, reason)


def composable(stage: Stage, delta: pa.Table) -> bool:
    """Can `replay` apply this delta: it adds row-aligned columns and/or keeps a subset of rows
    (evaluate, generate without fan-out, filter), with no per-row failures."""
    if FAILED in delta.column_names or SOURCE in delta.column_names:
        return False
    return stage.operator.kind in ("evaluate", "generate", "filter")


class Replayed:
    """A stage's effect in `replay`: rows in and out, its rejected rows (None if none), and the
    batch as it left the stage, column by column (`columns`), without building it whole."""

    def __init__(self, rows_in: int, rows_out: int, rejected: pa.Table | None, view: _View) -> None:
        self.rows_in = rows_in
        self.rows_out = rows_out
        self.rejected = rejected
        self._view = view

    def columns(self, names: list[str]) -> pa.Table:
        """The columns called `names` (those that exist) of the batch after the stage."""
        return self._view.table([n for n in names if n in self._view.names])


class _View:
    """A batch as: the table before a run of stages, the columns the run added (each aligned
    with the rows present when it was added) and the rows still present (positions in the
    table, ascending; None: all of them)."""

    def __init__(
        self, table: pa.Table, added: list[tuple[str, Any, np.ndarray | None]], rows: np.ndarray | None
    ):
        self.base = table
        self.added = list(added)
        self.rows = rows
        self.names = set(table.column_names) | {name for name, _, _ in added}

    def table(self, only: list[str] | None = None) -> pa.Table:
        return self.take(self.rows, only)

    def take(self, rows: np.ndarray | None, only: list[str] | None = None) -> pa.Table:
        """The rows at `rows` (positions in the base table; None: all), in the order a stage by
        stage replay would give their columns: the base table's, then the added ones."""
        wanted = None if only is None else set(only)
        fields, columns = [], []
        index = None if rows is None else pa.array(rows, pa.int64())
        for field, column in zip(self.base.schema, self.base.columns, strict=True):
            if wanted is None or field.name in wanted:
                fields.append(field)
                columns.append(column if index is None else column.take(index))
        for name, column, at in self.added:
            if wanted is None or name in wanted:
                fields.append(pa.field(name, column.type))  # as `append_column` names it
                if rows is None or (at is not None and len(at) == len(rows)):
                    columns.append(column)  # added when exactly these rows were present
                else:
                    local = rows if at is None else np.searchsorted(at, rows)
                    columns.append(column.take(pa.array(local, pa.int64())))
        return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=self.base.schema.metadata))


def replay(stages: list[Stage], table: pa.Table, deltas: list[pa.Table]) -> tuple[pa.Table, list[Replayed]]:
    """`apply_delta` over a run of `composable` deltas, with the same result: the batch after
    the last stage and each stage's `Replayed`. The batch is built once at the end instead of
    once per filter (a filter copies every column of the rows it keeps); rejected rows are
    taken from the original batch."""
    added: list[tuple[str, Any, np.ndarray | None]] = []
    rows: np.ndarray | None = None
    out: list[Replayed] = []
    for stage, delta in zip(stages, deltas, strict=True):
        rows_in = table.num_rows if rows is None else len(rows)
        for column in delta.column_names:
            if column not in (KEEP, REASON, DETAIL):
                added.append((column, delta.column(column), rows))
        rejected = None
        if stage.operator.kind == "filter":
            keep = delta.column(KEEP).to_numpy()
            if not keep.all():
                dropped = np.flatnonzero(~keep)
                at = dropped if rows is None else rows[dropped]
                view = _View(table, added, rows)
                index = pa.array(dropped, pa.int64())
                reason, detail = pc.take(delta.column(REASON), index), pc.take(delta.column(DETAIL), index)
                rejected = _reject(stage, view.take(at), reason, detail)
                rows = np.flatnonzero(keep) if rows is None else rows[keep]
        out.append(
            Replayed(
                rows_in, table.num_rows if rows is None else len(rows), rejected, _View(table, added, rows)
            )
        )
    return _View(table, added, rows).table(), out


def _apply_partial(stage: Stage, table: pa.Table, delta: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    failed_rows = delta.column(FAILED).is_valid()
    if SOURCE in delta.column_names:
        failures = delta.filter(failed_rows)
        out, rejected = _apply_fanout(
            stage, table, delta.filter(pc.invert(failed_rows)).drop_columns([FAILED, RAW]), failures
        )
        return out, rejected
    ok = pc.invert(failed_rows)
    kept, rejected = apply_delta(stage, table.filter(ok), delta.filter(ok).drop_columns([FAILED, RAW]))
    if not pc.any(failed_rows).as_py():
        return kept, rejected
    failed = _with_reject_columns(
        table.filter(failed_rows), stage.name, pc.filter(delta.column(FAILED), failed_rows)
    )
    failed = failed.append_column("_raw_output", pc.filter(delta.column(RAW), failed_rows))
    parts = [t for t in (rejected, failed) if t is not None]
    return kept, pa.concat_tables(parts, promote_options="permissive")


def _apply_fanout(
    stage: Stage, table: pa.Table, delta: pa.Table, failures: pa.Table | None = None
) -> tuple[pa.Table, pa.Table | None]:
    source = delta.column(SOURCE).to_numpy()
    out = table.take(pa.array(source))
    parent_ids = out.column("_id")
    # Children get ids `<parent>.<k>`, k counting the parent's outputs in order.
    order = np.zeros(len(source), dtype=np.int64)
    seen: dict[int, int] = {}
    for j, s in enumerate(source.tolist()):
        order[j] = seen.get(s, 0)
        seen[s] = order[j] + 1
    child_ids = pc.binary_join_element_wise(parent_ids, pc.cast(pa.array(order), pa.string()), ".")
    out = out.set_column(out.schema.get_field_index("_id"), "_id", child_ids)
    if "_parent_id" in out.column_names:
        out = out.drop_columns(["_parent_id"])
    out = out.append_column("_parent_id", parent_ids)
    for column in delta.column_names:
        if column != SOURCE:
            out = out.append_column(column, delta.column(column))
    childless = np.setdiff1d(np.arange(table.num_rows), source)
    if len(childless) == 0:
        return out, None
    rejected = table.take(pa.array(childless))
    reasons = ["generated no rows"] * len(childless)
    raw: list = [None] * len(childless)
    if failures is not None and failures.num_rows:
        why = dict(zip(failures.column(SOURCE).to_pylist(), failures.column(FAILED).to_pylist(), strict=True))
        text = dict(zip(failures.column(SOURCE).to_pylist(), failures.column(RAW).to_pylist(), strict=True))
        positions = childless.tolist()
        reasons = [why.get(p, r) for p, r in zip(positions, reasons, strict=True)]
        raw = [text.get(p) for p in positions]
    rejected = _with_reject_columns(rejected, stage.name, pa.array(reasons, pa.string()))
    if any(r is not None for r in raw):
        rejected = rejected.append_column("_raw_output", pa.array(raw, pa.string()))
    return out, rejected


def _with_reject_columns(
    rejected: pa.Table, stage_name: str, reason: pa.Array, reason_key: pa.Array | None = None
) -> pa.Table:
    """Add `_stage` and `_reason`, plus `REASON_KEY`: the low-cardinality reason (without the
    per-row detail) that the executor counts for the stats and drops before writing."""
    rejected = rejected.append_column("_stage", pa.array([stage_name] * rejected.num_rows, pa.string()))
    rejected = rejected.append_column("_reason", reason)
    return rejected.append_column(REASON_KEY, reason if reason_key is None else reason_key)
