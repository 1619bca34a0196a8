"""`dataflow run SPEC`: validate, then stream the data through every stage (resuming by default)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataflow_cli.cli.common import console, print_json, user_errors
from dataflow_cli.errors import DataflowError, SpecError


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
    processes: int = typer.Option(
        None,
        "--processes",
        min=1,
        help="Worker processes for Python-heavy stages (`processes: auto`) [default: CPUs]; 1: none.",
    ),
    max_usd: float = typer.Option(
        None, "--max-usd", help="Stop (exit 3) once LLM requests cost this many USD."
    ),
    max_tokens: int = typer.Option(
        None, "--max-tokens", help="Stop (exit 3) once LLM requests used this many tokens."
    ),
    max_requests: int = typer.Option(
        None, "--max-requests", help="Stop (exit 3) once this many LLM requests were sent."
    ),
    executor_type: str = typer.Option(
        None, "--executor", help="local or ray (default: the spec's `executor:`, else local)."
    ),
    address: str = typer.Option(None, "--address", help="Ray cluster address (with --executor ray)."),
) -> None:
    """Run a pipeline: read, generate/evaluate/filter/refine, write output and rejects."""
    from dataflow_cli.cli.progress import RichProgress, print_summary
    from dataflow_cli.engine.executor import Executor
    from dataflow_cli.engine.runlog import run_logging
    from dataflow_cli.spec.build import load_spec

    overrides = list(set_) + ([f"input.limit={limit}"] if limit else [])
    caps = {"max_usd": max_usd, "max_tokens": max_tokens, "max_requests": max_requests}
    overrides += [f"budget.{cap}={value}" for cap, value in caps.items() if value is not None]
    loaded = load_spec(spec, overrides)
    directory = run_dir or Path(".dataflow") / "runs" / loaded.name
    progress = None if quiet else RichProgress(console())
    chosen = {**loaded.executor, **({"type": executor_type} if executor_type else {})}
    if address:
        chosen["address"] = address
    if chosen["type"] == "ray":
        from dataflow_cli.engine.ray_executor import RayExecutor

        executor: Executor = RayExecutor(
            loaded, directory, fresh=fresh, progress=progress, workers=workers, overrides=overrides,
            address=chosen.get("address"), checkpoint_dir=chosen.get("checkpoint_dir"),
        )  # fmt: skip
    elif chosen["type"] == "local":
        ignored = [key for key in ("address", "checkpoint_dir") if chosen.get(key)]
        if ignored and not quiet:
            # Said out loud: a user who set a shared checkpoint location expects it to be used.
            console().print(f"note: {' and '.join(ignored)} apply only to --executor ray; ignored here")
        executor = Executor(
            loaded, directory, fresh=fresh, progress=progress, workers=workers, processes=processes
        )
    else:
        raise SpecError(f"unknown executor `{chosen['type']}`", hint="use --executor local or --executor ray")
    try:
        with run_logging(directory, loaded):
            stats = executor.run()
    except DataflowError:
        if executor.stats.stopped_by is not None:  # a budget cap: show what was done and what is left
            if progress is not None:
                progress.close()
            _print_stopped(executor.stats, quiet, json_output)
        raise
    finally:
        if progress is not None:
            progress.close()
    if not quiet:
        print_summary(console(), stats)
    _print_gates(stats.gates)
    if json_output:
        print_json(stats.to_dict())


def _print_stopped(stats, quiet: bool, json_output: bool) -> None:
    """A run stopped by a budget cap (exit 3): the summary so far, what was spent and what is left."""
    from dataflow_cli.cli.progress import print_summary
    from dataflow_cli.cost.budget import summary_line

    if not quiet:
        print_summary(console(), stats)
        console().print(
            f"[bold yellow]stopped by budget[/bold yellow] `{stats.stopped_by['cap']}`: "
            f"{summary_line(stats.budget)}; output not written, checkpoints and cached answers kept",
            soft_wrap=True,
        )
    if json_output:
        print_json(stats.to_dict())


def _print_gates(gates: list[dict]) -> None:
    """Failed `warn` gates always reach stderr (even with --quiet): the run went on past them."""
    from rich.markup import escape

    from dataflow_cli.engine.gates import format_gate

    for gate in gates:
        if not gate["passed"]:
            console().print(
                f"[bold yellow]warning:[/bold yellow] {escape(format_gate(gate))}", soft_wrap=True
            )
