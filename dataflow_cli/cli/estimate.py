"""`dataflow estimate SPEC`: what a full run will cost, from a seeded sample run through every stage."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def estimate(
    spec: Path = typer.Argument(..., help="Pipeline spec (YAML)."),
    sample: int = typer.Option(20, "--sample", min=1, help="Input rows to run through the pipeline."),
    seed: int = typer.Option(0, "--seed", help="Seed of the row sample."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a value: path=value (YAML-typed). Repeatable."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the estimate as JSON on stdout."),
) -> None:
    """Estimate requests, tokens, cost and wall time of a full run from a sample (answers cached)."""
    from dataflow_cli.cost.estimate import estimate as run_estimate
    from dataflow_cli.spec.build import load_spec

    loaded = load_spec(spec, set_)
    result = run_estimate(loaded, sample, seed)
    _print_table(result)
    if json_output:
        print_json(result)


def _print_table(result: dict) -> None:
    from rich.table import Table

    from dataflow_cli.cost.prices import fmt_usd

    table = Table(
        title=f"estimate for {result['input_rows']:,} input rows (sample of {result['sample_rows']}, seed {result['seed']})",
        title_justify="left",
    )
    columns: list[tuple[str, Literal["left", "right"]]] = [
        ("stage", "left"),
        ("keep", "right"),
        ("rows in", "right"),
        ("requests", "right"),
        ("tokens in", "right"),
        ("tokens out", "right"),
        ("cost", "right"),
        ("price /Mtok in/out", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    for s in result["stages"]:
        p = s["projected"]
        llm = "requests" in p
        price = s.get("price")
        price_text = ""
        if llm:
            price_text = (
                "unknown"
                if price is None
                else f"${price['input_per_mtok']:g}/${price['output_per_mtok']:g} ({price['source']})"
            )
            if s["mode"] == "batch":
                price_text += " batch"
        table.add_row(
            s["name"],
            f"{s['keep_rate']:.0%}",
            f"{p['rows_in']:,}",
            f"{p['requests']:,}" if llm else "",
            f"{p['prompt_tokens']:,}" if llm else "",
            f"{p['completion_tokens']:,}" if llm else "",
            fmt_usd(p["cost_usd"]) if llm else "",
            price_text,
        )
    total = result["total"]
    cost = fmt_usd(total["cost_usd"])
    if total["cost_usd"] is None and total["cost_usd_known_part"]:
        cost = f"unknown (known part {fmt_usd(total['cost_usd_known_part'])})"
    table.add_row(
        "total", "", "", f"{total['requests']:,}", f"{total['prompt_tokens']:,}", f"{total['completion_tokens']:,}", cost, "",
        style="bold",
    )  # fmt: skip
    out = console()
    out.print(table)
    for name, b in result["backends"].items():
        latency = "unknown (all answers cached)" if b["latency_s"] is None else f"{b['latency_s']:.3f} s"
        when = "unknown" if b["seconds"] is None else f"{_duration(b['seconds'])} (bound by {b['bound_by']})"
        out.print(
            f"backend [bold]{name}[/bold]: {b['requests']:,} requests at concurrency {b['max_concurrency']}"
            f"{_limits(b)}; "
            f"latency {latency}; wall time {when}",
            soft_wrap=True,
        )
    batch = ", ".join(total["batch_stages"])
    out.print(
        f"estimated wall time: [bold]{_duration(total['seconds'])}[/bold]"
        + (f" plus the batch jobs of {batch} (within their 24 h completion window)" if batch else ""),
        soft_wrap=True,
    )
    if total["cost_unknown_stages"]:
        out.print(
            f"[yellow]cost unknown[/yellow] for {', '.join(total['cost_unknown_stages'])}: set "
            "`backends.<name>.price: {input_per_mtok: ..., output_per_mtok: ...}`",
            soft_wrap=True,
        )


def _limits(backend: dict) -> str:
    rpm = f", rpm {backend['rpm']:g}" if backend["rpm"] else ""
    tpm = f", tpm {backend['tpm']:g}" if backend["tpm"] else ""
    return rpm + tpm


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
