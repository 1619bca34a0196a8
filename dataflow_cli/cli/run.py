"""`dataflow run SPEC`: validate, then stream the data through every stage (resuming by default)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def run(
    spec: Path = typer.Argument(..., help="Pipeline spec (YAML)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Process only the first N input rows."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a value: path=value (YAML-typed). Repeatable."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore checkpoints from earlier runs."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Run directory [default: .dataflow/runs/<name>]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary on stderr."),
    json_output: bool = typer.Option(False, "--json", help="Print run statistics as JSON on stdout."),
    workers: int = typer.Option(2, "--workers", min=1, help="Threads working on batches."),
) -> None:
    """Run a pipeline: read, generate/evaluate/filter/refine, write output and rejects."""
    from dataflow_cli.cli.progress import RichProgress, print_summary
    from dataflow_cli.engine.executor import Executor
    from dataflow_cli.engine.runlog import run_logging
    from dataflow_cli.spec.build import load_spec

    overrides = list(set_) + ([f"input.limit={limit}"] if limit else [])
    loaded = load_spec(spec, overrides)
    directory = run_dir or Path(".dataflow") / "runs" / loaded.name
    progress = None if quiet else RichProgress(console())
    executor = Executor(loaded, directory, fresh=fresh, progress=progress, workers=workers)
    try:
        with run_logging(directory, loaded):
            stats = executor.run()
    finally:
        if progress is not None:
            progress.close()
    if not quiet:
        print_summary(console(), stats)
    if json_output:
        print_json(stats.to_dict())
