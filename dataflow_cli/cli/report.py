"""`dataflow report [RUN_DIR]`: the run report as one self-contained HTML file (or its model as JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def report(
    run_dir: Path = typer.Argument(
        None, help="Run directory [default: the most recent run under .dataflow/runs/]."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write the HTML here [default: RUN_DIR/report.html]."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print the report's data as JSON on stdout (HTML only with -o)."
    ),
) -> None:
    """Report what a run did: funnel, drop reasons, scores, model usage, gates, sample rows."""
    from dataflow_cli.errors import DataflowError
    from dataflow_cli.io.writers import atomic_write_text
    from dataflow_cli.redact import redact_json
    from dataflow_cli.report.html import render_html
    from dataflow_cli.report.model import build_report, latest_run_dir

    directory = run_dir if run_dir is not None else latest_run_dir()
    model = redact_json(build_report(directory))
    if json_output:
        print_json(model)
    if output is None and json_output:
        return
    target = output if output is not None else directory / "report.html"
    try:
        atomic_write_text(target, render_html(model))
    except OSError as exc:
        raise DataflowError(
            f"cannot write `{target}`: {exc.strerror or exc}", hint="pass -o with a writable path"
        ) from None
    console().print(f"report: {target}", soft_wrap=True, highlight=False)
