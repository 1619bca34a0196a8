"""Quality gates: a stage's `expect:` checks, judged while the run goes and at its end.

    expect:
      - {check: keep_ratio, min: 0.5}                    # rows out / rows in
      - {check: null_rate, column: answer, max: 0.05}    # share of null values
      - {check: mean, column: score, min: 5}             # mean of a numeric column
      - {check: quantile, column: score, q: 0.5, min: 6} # a quantile of a numeric column
      - {check: pass_rate, column: passed, min: 0.8}     # share of true in a bool column
      - {check: pass_rate, min: 0.8, on_fail: warn}      # on a filter: the share it kept

Columns are measured over the rows that left the stage (its column profiles, `profile.py`).
`on_fail: fail` (the default) stops the run with exit 1 before the output is written (the
checkpoints stay, so a rerun with a relaxed gate redoes no work); `warn` reports and goes on.

While the run goes, a check is judged once `min_rows` rows (default 100) have reached it, and
fails early only when no rows still to come could bring it back within its bounds: that needs an
upper bound on those rows (Parquet inputs know their row count, `input.limit` caps it) and no
generator at or before the stage (fan-out has no bound). A mean has no such certainty with
unbounded values, so it is judged at the end only. At the end every check is judged on all rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataflow_cli.errors import DataflowError

if TYPE_CHECKING:
    from dataflow_cli.engine.profile import ColumnProfile, StageProfile
    from dataflow_cli.engine.stats import RunStats, StageStats
    from dataflow_cli.spec.model import Spec, Stage
    from dataflow_cli.spec.validate import Collector

log = logging.getLogger(__name__)

CHECKS = ("keep_ratio", "null_rate", "mean", "quantile", "pass_rate")
DEFAULT_MIN_ROWS = 100
_NUMERIC = ("int", "uint", "float", "double", "halffloat", "decimal")


@dataclass(frozen=True)
class Check:
    check: str
    column: str | None = None
    min: float | None = None
    max: float | None = None
    q: float | None = None
    on_fail: str = "fail"
    min_rows: int = DEFAULT_MIN_ROWS
    index: int = 0  # position under `expect:`

    def expected(self) -> str:
        if self.min is not None and self.max is not None:
            return f"in [{_fmt(self.min)}, {_fmt(self.max)}]"
        return f">= {_fmt(self.min)}" if self.min is not None else f"<= {_fmt(self.max)}"

    def label(self) -> str:
        if self.check == "quantile":
            return f"quantile q={_fmt(self.q)} of `{self.column}`"
        return f"{self.check} of `{self.column}`" if self.column else self.check

    def within(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


def _fmt(value: float | None) -> str:
    return "null" if value is None else f"{value:.4g}"


def parse_checks(raw: Any) -> list[Check]:
    """The `expect:` list as checks (the schema and `check_expectations` report bad entries)."""
    if not isinstance(raw, list):
        return []
    checks = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or entry.get("check") not in CHECKS:
            continue
        checks.append(
            Check(
                check=entry["check"],
                column=entry.get("column"),
                min=entry.get("min"),
                max=entry.get("max"),
                q=entry.get("q"),
                on_fail=entry.get("on_fail", "fail"),
                min_rows=entry.get("min_rows", DEFAULT_MIN_ROWS),
                index=index,
            )
        )
    return checks


# Static checks ----------------------------------------------------------------------------
def check_expectations(stage: Stage, after: dict[str, str], out: Collector) -> None:
    """Each check names a column the stage reads or writes and that leaves it, of a type the
    check can measure, with sane bounds. `after`: the columns (name -> type) after the stage."""
    raw = getattr(stage, "expect", None) or []
    op = stage.operator
    own = list(dict.fromkeys([*op.written_columns(), *op.required_columns()]))
    for check in raw:
        here = ("stages", stage.index, "expect", check.index)
        ratio = check.check in ("null_rate", "pass_rate") or (
            check.check == "keep_ratio" and stage.kind != "generate"
        )
        if check.min is None and check.max is None:
            out.add(here, f"`{check.check}` needs a bound: `min`, `max` or both")
        if check.min is not None and check.max is not None and check.min > check.max:
            out.add(here + ("min",), f"`min` ({_fmt(check.min)}) is greater than `max` ({_fmt(check.max)})")
        for key in ("min", "max"):
            value = getattr(check, key)
            if ratio and value is not None and not 0 <= value <= 1:
                out.add(here + (key,), f"`{check.check}` is a share of rows: `{key}` must be in [0, 1]")
            elif check.check == "keep_ratio" and value is not None and value < 0:
                out.add(here + (key,), "`keep_ratio` cannot be negative")
        if check.check == "quantile":
            if check.q is None:
                out.add(here, "`quantile` needs `q`, the quantile in [0, 1] (0.5 = median)")
            elif not 0 <= check.q <= 1:
                out.add(here + ("q",), f"`q` must be in [0, 1], got {_fmt(check.q)}")
        elif check.q is not None:
            out.add(here + ("q",), f"`q` applies to `quantile` checks only, not `{check.check}`", key=True)
        if check.check == "keep_ratio":
            if check.column is not None:
                out.add(here + ("column",), "`keep_ratio` counts rows: it takes no `column`", key=True)
            continue
        if check.column is None:
            if check.check == "pass_rate" and stage.kind == "filter":
                continue  # the share of rows the filter kept
            needs = "a bool `column`" if check.check == "pass_rate" else "a `column`"
            where = " (or put it on a filter stage: its kept share)" if check.check == "pass_rate" else ""
            out.add(here, f"`{check.check}` needs {needs}{where}")
            continue
        if check.column not in own or check.column not in after:
            from dataflow_cli.errors import did_you_mean

            choices = [c for c in own if c in after]
            names = ", ".join(f"`{c}`" for c in choices) or "none"
            out.add(
                here + ("column",),
                f"stage `{stage.name}` does not read or write a column `{check.column}`"
                f"{did_you_mean(check.column, choices)} (its columns: {names})",
            )
            continue
        kind = after.get(check.column, "")
        if check.check in ("mean", "quantile") and kind and not kind.startswith(_NUMERIC):
            out.add(here + ("column",), f"`{check.check}` needs a numeric column; `{check.column}` is {kind}")
        if check.check == "pass_rate" and kind and kind not in ("bool", "boolean"):
            out.add(here + ("column",), f"`pass_rate` needs a bool column; `{check.column}` is {kind}")


def gate_columns(stage: Stage) -> list[str]:
    """Columns a stage's checks measure (profiled even when the stage does not write them)."""
    return [c.column for c in getattr(stage, "expect", None) or [] if c.column]


# Judging ------------------------------------------------------------------------------------
class GateFailure(DataflowError):
    """A gate with `on_fail: fail` failed: the run stops before writing its output."""

    exit_code = 1


@dataclass
class _Observation:
    value: float | None
    rows: int


def _observe(check: Check, stats: StageStats, profile: ColumnProfile | None) -> _Observation:
    if check.column is None:  # keep_ratio, or pass_rate of a filter
        ratio = stats.rows_out / stats.rows_in if stats.rows_in else None
        return _Observation(ratio, stats.rows_in)
    if profile is None or profile.count == 0:
        return _Observation(None, 0)
    if check.check == "null_rate":
        return _Observation(profile.nulls / profile.count, profile.count)
    if check.check == "pass_rate":
        return _Observation(profile.trues / profile.count, profile.count)
    if check.check == "mean":
        return _Observation(profile.mean, profile.non_null)
    return _Observation(profile.quantile(check.q or 0.0), profile.non_null)


def _certainly_violated(
    check: Check, stats: StageStats, profile: ColumnProfile | None, still_to_come: int
) -> bool:
    """True when no `still_to_come` further rows (reaching the stage) could satisfy the check."""
    f = still_to_come
    if check.column is None:
        hits, total = stats.rows_out, stats.rows_in
    elif profile is None:
        return False
    elif check.check in ("null_rate", "pass_rate"):
        hits, total = (profile.nulls if check.check == "null_rate" else profile.trues), profile.count
    elif check.check == "quantile":
        if profile.sampled:
            return False  # a sample gives no certainty
        import numpy as np

        values, q = profile.values(), check.q or 0.0
        n = len(values) + f
        # +1 leaves room for the interpolation between neighbouring values.
        if check.max is not None and np.count_nonzero(values > check.max) > (1 - q) * n + 1:
            return True
        return bool(check.min is not None and np.count_nonzero(values < check.min) > q * n + 1)
    else:
        return False  # a mean of unbounded values can always come back
    if check.min is not None and (hits + f) / (total + f) < check.min:
        return True
    return check.max is not None and total + f > 0 and hits / (total + f) > check.max


class Gates:
    """The spec's checks, judged against the run's stats and column profiles."""

    def __init__(self, stages: list[Stage], profiles: list[StageProfile], spec: Spec):
        self.stages = stages
        self.profiles = profiles
        # An upper bound on the rows the input holds, if known (early failure needs one).
        self.input_rows = input_rows_bound(spec) if self else None
        self.failed_early: dict[tuple[int, int], dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return any(getattr(s, "expect", None) for s in self.stages)

    def _result(
        self, k: int, check: Check, stats: StageStats, final: bool, certain: bool = False
    ) -> dict[str, Any]:
        stage = self.stages[k]
        profile = self.profiles[k].profiles.get(check.column) if check.column else None
        seen = _observe(check, stats, profile)
        passed = seen.value is not None and check.within(seen.value)
        observed = None if seen.value is None else round(seen.value, 6)
        if seen.value is None:
            what = "no rows reached it" if check.column is None else f"no values of `{check.column}`"
            message = f"stage `{stage.name}`: {check.label()} cannot be judged: {what}"
        else:
            message = (
                f"stage `{stage.name}`: {check.label()} = {_fmt(seen.value)}, expected {check.expected()} "
                f"(over {seen.rows:,} rows{'' if final else ', failing whatever rows are still to come'})"
            )
        out: dict[str, Any] = {
            "stage": stage.name,
            "check": check.check,
            "observed": observed,
            "expected": check.expected(),
            "passed": passed and not certain,
            "on_fail": check.on_fail,
            "message": message,
            "rows": seen.rows,
            "final": final,
        }
        if check.column:
            out["column"] = check.column
        if check.q is not None:
            out["q"] = check.q
        return out

    def during(self, stats: RunStats) -> None:
        """Judge the checks that are certainly violated already; raise for a `fail` one."""
        if self.input_rows is None:
            return
        for k, stage in enumerate(self.stages):
            if any(s.kind == "generate" for s in self.stages[: k + 1]):
                break  # fan-out: no bound on the rows still to come
            still_to_come = max(self.input_rows - stats.rows_read, 0)
            for check in getattr(stage, "expect", None) or []:
                if (k, check.index) in self.failed_early:
                    continue
                profile = self.profiles[k].profiles.get(check.column) if check.column else None
                seen = _observe(check, stats.stages[k], profile)
                if seen.rows < check.min_rows or seen.value is None:
                    continue
                if _certainly_violated(check, stats.stages[k], profile, still_to_come):
                    result = self._result(k, check, stats.stages[k], final=False, certain=True)
                    self.failed_early[(k, check.index)] = result
                    log.warning("quality gate failed: %s", result["message"])
                    if check.on_fail == "fail":
                        stats.gates = list(self.failed_early.values())
                        raise _failure([result], early=True)

    def at_end(self, stats: RunStats) -> None:
        """Judge every check on all rows; record them in `stats.gates`; raise if a `fail` one failed."""
        results = [
            self._result(k, check, stats.stages[k], final=True)
            for k, stage in enumerate(self.stages)
            for check in getattr(stage, "expect", None) or []
        ]
        stats.gates = results
        failed = [r for r in results if not r["passed"] and r["on_fail"] == "fail"]
        if failed:
            raise _failure(failed, early=False)


def _failure(failed: list[dict[str, Any]], early: bool) -> GateFailure:
    lines = "\n".join(f"  {r['message']}" for r in failed)
    count = len(failed)
    when = "already certain, stopped early" if early else "at the end of the run"
    return GateFailure(
        f"{count} quality gate{'s' if count != 1 else ''} failed ({when}):\n{lines}",
        hint="no output was written; finished batches are checkpointed, so after fixing the pipeline "
        "or relaxing the gate (`min`/`max`, or `on_fail: warn`) a rerun redoes no work",
    )


def input_rows_bound(spec: Spec) -> int | None:
    """An upper bound on the input's rows, when cheap to know: Parquet footers, `input.limit`."""
    bound = None
    paths = spec.input_paths
    if paths and all(p.suffix.lower() == ".parquet" for p in paths):
        import pyarrow.parquet as pq

        try:
            bound = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
        except OSError:
            bound = None  # the reader reports the problem
    if spec.limit is not None:
        bound = spec.limit if bound is None else min(bound, spec.limit)
    return bound


def format_gate(result: dict[str, Any]) -> str:
    """One line for people: `FAILED (warn) stage `x`: keep_ratio = ...`."""
    status = "passed" if result["passed"] else f"FAILED ({result['on_fail']})"
    return f"gate {status}: {result['message']}"


__all__ = [
    "CHECKS",
    "Check",
    "GateFailure",
    "Gates",
    "check_expectations",
    "format_gate",
    "gate_columns",
    "input_rows_bound",
    "parse_checks",
]
