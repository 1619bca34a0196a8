"""Threshold checks shared by the Gopher and FineWeb rule filters."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from dataflow_cli.operator import Verdict
from dataflow_operators._lib.arrow import reasons
from dataflow_operators._lib.textstats import TextBatch
from dataflow_operators.core.range_filter import format_bound

Check = tuple[str, Callable[[TextBatch], np.ndarray]]  # reason, rows to drop


def threshold(signal: str, side: str, bound, values: Callable[[TextBatch], np.ndarray]) -> Check:
    """Drop rows whose `values` are below (side "<") or above (">") `bound`."""
    compare = np.less if side == "<" else np.greater
    return f"{signal} {side} {format_bound(bound)}", lambda tb: compare(values(tb), bound)


def apply_checks(tb: TextBatch, checks: list[Check], null_message: str) -> Verdict:
    """Drop null texts (with `null_message`), then rows on the first check that fires."""
    conditions = [] if tb.null_mask is None else [(tb.null_mask, null_message)]
    conditions += [(drop(tb), reason) for reason, drop in checks]
    dropped = np.zeros(tb.n, bool)
    for condition, _ in conditions:
        dropped |= condition
    arrays = [(pa.array(condition, pa.bool_()), reason) for condition, reason in conditions]
    return Verdict(keep=~dropped, reason=reasons(arrays, tb.n))


def check_bound(value, name: str):
    if value is not None and value < 0:
        raise ValueError(f"`{name}` must not be negative (use null to switch the rule off)")
    return value


def null_reason(op) -> str:
    return f"`{op.input_columns['text']}` is null"
