"""`dataflow diff RUN_A RUN_B`: what changed between two runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def diff(
    run_a: Path = typer.Argument(..., help="First run directory."),
    run_b: Path = typer.Argument(..., help="Second run directory."),
    rows: int = typer.Option(20, "--rows", min=0, help="Rows whose fate differs to list."),
    json_output: bool = typer.Option(False, "--json", help="Print the comparison as JSON on stdout."),
) -> None:
    """Compare two runs: counts, keep rates, drop reasons, score shifts, tokens/cost, row fates."""
    from dataflow_cli.runinfo import RunInfo
    from dataflow_cli.runinfo.diff import diff_runs

    result = diff_runs(RunInfo.load(run_a), RunInfo.load(run_b), sample=rows)
    if json_output:
        print_json(result)
    else:
        _show(result)


def _num(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{value:.1%}"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def _delta(pair: dict[str, Any], pct: bool = False) -> str:
    d = pair["delta"]
    if d is None:
        return ""
    if pct:
        return f"{d * 100:+.1f} pt"
    return f"{d:+,}" if isinstance(d, int) else f"{d:+,.4g}"


def _show(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    out.print(f"A = {escape(result['a'])}\nB = {escape(result['b'])}", soft_wrap=True)
    table = Table(title="stages", pad_edge=False)
    for name in ("stage", "rows in A", "rows in B", "out A", "out B", "keep A", "keep B", "Δ keep"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for s in result["stages"]:
        missing = "" if all(s["in"].values()) else (" (only in A)" if s["in"]["a"] else " (only in B)")
        table.add_row(
            escape(s["stage"] + missing),
            _num(s["rows_in"]["a"]), _num(s["rows_in"]["b"]),
            _num(s["rows_out"]["a"]), _num(s["rows_out"]["b"]),
            _num(s["keep_rate"]["a"], True), _num(s["keep_rate"]["b"], True),
            _delta(s["keep_rate"], True),
        )  # fmt: skip
    out.print(table)
    reasons = [(s["stage"], r) for s in result["stages"] for r in s["drop_reasons"]]
    if reasons:
        t = Table(title="drop reasons that changed", pad_edge=False)
        for name in ("stage", "reason", "A", "B", "Δ"):
            t.add_column(name, justify="right" if name in ("A", "B", "Δ") else "left", overflow="fold")
        for stage, r in reasons:
            t.add_row(escape(stage), escape(r["reason"]), _num(r["a"]), _num(r["b"]), _delta(r))
        out.print(t)
    shifts = Table(title="column distributions that moved (mean, p50; bool: true rate)", pad_edge=False)
    for name in ("stage", "column", "A", "B", "Δ"):
        shifts.add_column(name, justify="right" if name in ("A", "B", "Δ") else "left")
    shown = 0
    for s in result["stages"]:
        for c in s["columns"]:
            for label, pair, pct in _measures(c):
                if pair["a"] == pair["b"]:
                    continue  # unchanged: the JSON has every column
                shifts.add_row(escape(s["stage"]), escape(f"{c['column']} {label}"),
                               _num(pair["a"], pct), _num(pair["b"], pct), _delta(pair, pct))  # fmt: skip
                shown += 1
    if shown:
        out.print(shifts)
    llm = result["llm"]
    if any(p["a"] or p["b"] for p in llm.values()):
        out.print(
            "LLM: "
            + ", ".join(
                f"{k} {_num(p['a'])} -> {_num(p['b'])} ({_delta(p) or '±0'})" for k, p in llm.items()
            ),
            soft_wrap=True,
        )
    rows = result["rows"]
    out.print(
        f"rows whose fate differs: [bold]{rows['differ']:,}[/bold] (dropped only in A {rows['dropped_in_a_only']:,}, "
        f"only in B {rows['dropped_in_b_only']:,}, differently {rows['dropped_differently']:,})"
    )
    for r in rows["sample"]:
        out.print(f"  {escape(r['_id'])}: A {escape(r['a'])} | B {escape(r['b'])}", soft_wrap=True)


def _measures(column: dict[str, Any]):
    if "mean" in column:
        yield "mean", column["mean"], False
        if "p50" in (column.get("quantiles") or {}):
            yield "p50", column["quantiles"]["p50"], False
    if "true_rate" in column:
        yield "true rate", column["true_rate"], True
    if "mean_length" in column:
        yield "mean length", column["mean_length"], False
