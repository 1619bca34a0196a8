"""Result equivalence: when a predicted query's result is the gold query's result.

The rule (used by voting, execution difficulty and the tests):

- A query that failed (error, timeout, too many rows) is equivalent to nothing, not even to
  another failure.
- Two empty results are equivalent (whatever their columns).
- Otherwise the column counts and the row counts must be equal; columns are compared by
  position, never by name.
- Rows are compared as an ordered list when the gold query has an ORDER BY on its outermost
  query (decided on the sqlglot AST: one inside a subquery, CTE, window or string does not
  count); otherwise as a multiset (order ignored, duplicates counted).
- Values: NULL equals NULL only; two integers are equal when identical; numbers of which one
  is a float are equal within a relative tolerance of 1e-6 (so 600 == 600.0), with an absolute
  floor of 1e-9 so rounding noise around zero (5.6e-17 vs 0.0) is not a difference; text is
  compared exactly (case and spaces included); text never equals a number ('1' != 1), nor a
  blob; blobs are compared byte for byte.

A multiset with floats is matched row to row (a perfect matching under the tolerance), so the
result does not depend on how near-equal floats happen to sort.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dataflow_cli.sandbox.sql import SqlResult

REL_TOL = 1e-6
ABS_TOL = 1e-9
# Larger groups of float rows are compared after sorting only (an exact matching is cubic).
MATCHING_LIMIT = 300


@dataclass(frozen=True)
class Comparison:
    equivalent: bool
    ordered: bool
    reason: str  # why, for audits: "equal", "row count 3 != 4", "prediction failed: sql timeout"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_equal(a: Any, b: Any) -> bool:
    """One value of the gold result against one of the prediction, by the rule above."""
    if a is None or b is None:
        return a is None and b is None
    a_num, b_num = _is_number(a), _is_number(b)
    if a_num and b_num:
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if a_num or b_num:
        return False
    return type(a) is type(b) and a == b


def rows_equal(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))


def compare_results(gold: SqlResult, predicted: SqlResult, ordered: bool) -> Comparison:
    """Whether `predicted` answers like `gold`; `ordered` says whether row order counts
    (use `outer_order_by(gold_sql)`)."""
    if not gold.ok:
        return Comparison(False, ordered, f"gold failed: {gold.error}")
    if not predicted.ok:
        return Comparison(False, ordered, f"prediction failed: {predicted.error}")
    if not gold.rows and not predicted.rows:
        return Comparison(True, ordered, "both empty")
    if gold.column_count != predicted.column_count:
        return Comparison(False, ordered, f"column count {predicted.column_count} != {gold.column_count}")
    if len(gold.rows) != len(predicted.rows):
        return Comparison(False, ordered, f"row count {len(predicted.rows)} != {len(gold.rows)}")
    if ordered:
        for i, (g, p) in enumerate(zip(gold.rows, predicted.rows, strict=True)):
            if not rows_equal(g, p):
                return Comparison(False, True, f"row {i + 1} differs (order counts)")
        return Comparison(True, True, "equal")
    if multisets_equal(gold.rows, predicted.rows):
        return Comparison(True, False, "equal")
    return Comparison(False, False, "rows differ")


def multisets_equal(gold: list[tuple], predicted: list[tuple]) -> bool:
    if len(gold) != len(predicted):
        return False
    # Python's equality and hashing agree with the rule whenever values are exactly equal
    # (600 == 600.0, same hash): identical multisets are settled here.
    if Counter(gold) == Counter(predicted):
        return True
    if not any(isinstance(v, float) for rows in (gold, predicted) for row in rows for v in row):
        return False  # without floats every comparison is exact: the counters decided
    groups: dict[tuple, tuple[list, list]] = {}
    for side, rows in ((0, gold), (1, predicted)):
        for row in rows:
            key = tuple(_signature(v) for v in row)
            groups.setdefault(key, ([], []))[side].append(tuple(v for v in row if _is_number(v)))
    return all(_numbers_match(g, p) for g, p in groups.values())


def _signature(value: Any) -> Any:
    """A row's non-numeric content: rows can only match within one signature."""
    if _is_number(value):
        return ("number",)
    return (type(value).__name__, value)


def _numbers_match(gold: list[tuple], predicted: list[tuple]) -> bool:
    if len(gold) != len(predicted):
        return False
    gold, predicted = sorted(gold), sorted(predicted)
    if all(rows_equal(g, p) for g, p in zip(gold, predicted, strict=True)):
        return True
    if len(gold) > MATCHING_LIMIT:
        return False
    # A perfect matching (Kuhn's augmenting paths): near-equal floats may sort differently.
    match: list[int | None] = [None] * len(predicted)

    def augment(i: int, seen: set[int]) -> bool:
        for j, p in enumerate(predicted):
            if j in seen or not rows_equal(gold[i], p):
                continue
            seen.add(j)
            if match[j] is None or augment(match[j], seen):
                match[j] = i
                return True
        return False

    return all(augment(i, set()) for i in range(len(gold)))
