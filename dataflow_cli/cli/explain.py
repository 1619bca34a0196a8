"""`dataflow explain RUN_DIR ROW_ID`: one row's journey through a run, stage by stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def explain(
    run_dir: Path = typer.Argument(..., help="Run directory (the --run-dir of `dataflow run`)."),
    row_id: str = typer.Argument(..., help="The row's `_id` (fan-out children: `<parent>.<k>`)."),
    json_output: bool = typer.Option(False, "--json", help="Print the journey as JSON on stdout."),
) -> None:
    """Show what every stage decided about one row: kept, dropped and why, scores, rewrites."""
    from dataflow_cli.runinfo import RunInfo
    from dataflow_cli.runinfo.explain import explain_row

    journey = explain_row(RunInfo.load(run_dir), row_id)
    if json_output:
        print_json(journey)
    else:
        _show(journey)


def _short(value: Any, width: int = 100) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _show(journey: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    fate = journey["fate"]
    head = f"row [bold]{escape(journey['row_id'])}[/bold]"
    if journey.get("parent_id"):
        head += f" (child of {escape(journey['parent_id'])})"
    if fate == "dropped":
        where = journey["dropped_at"]
        head += f": [red]dropped[/red] at `{escape(where['stage'])}`: {escape(where['reason'])}"
    elif fate == "fanned_out":
        head += ": [cyan]fanned out[/cyan] into child rows (explain one of them to follow it)"
    else:
        head += ": [green]kept[/green] (in the output)"
    out.print(head, soft_wrap=True)
    table = Table(show_lines=False, pad_edge=False)
    for name in ("stage", "op", "decision", "what it wrote / why"):
        table.add_column(name, overflow="fold")
    colours = {
        "dropped": "red",
        "rewritten": "yellow",
        "fanned_out": "cyan",
        "not_reached": "dim",
        "in_children": "dim",
    }
    for step in journey["stages"]:
        details = []
        if "reason" in step:
            details.append(f"reason: {step['reason']}")
        for column, value in (step.get("values") or {}).items():
            if "before" in step:
                details.append(f"{column}: {_short(step['before'].get(column), 45)} -> {_short(value, 45)}")
            else:
                details.append(f"{column} = {_short(value)}")
        if step.get("children") is not None:
            details.append(f"children: {', '.join(step['children']) or 'none'}")
            if step.get("row"):
                details.append(f"following {step['row']}")
        if llm := step.get("llm"):
            sha = (llm.get("prompt_sha256") or "")[:12]
            details.append(f"model {llm.get('model')} ({llm.get('backend')}), prompt sha256 {sha}")
        if step.get("raw_output") is not None:
            details.append(f"raw answer: {_short(step['raw_output'], 200)}")
        colour = colours.get(step["decision"], "green")
        table.add_row(
            escape(step["stage"]),
            escape(step["op"]),
            f"[{colour}]{step['decision'].replace('_', ' ')}[/{colour}]",
            escape("\n".join(details)),
        )
    out.print(table)
