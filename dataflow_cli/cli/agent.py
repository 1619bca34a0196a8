"""`dataflow agent "REQUEST"`: a request (and a sample) in, a validated, dry-run, explained spec out."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def agent(
    request: str = typer.Argument(..., help="What the pipeline should do, in plain words."),
    sample: Path = typer.Option(
        None, "--sample", help="A sample of your data (any input format dataflow reads)."
    ),
    output: Path = typer.Option(Path("pipeline.yaml"), "--output", "-o", help="Where to write the spec."),
    backend: str = typer.Option(
        None,
        "--backend",
        help="`local` (embedded model, default), `fake`, or a YAML file of backend configs.",
    ),
    model: str = typer.Option(
        None, "--model", help="A litellm/OpenAI model id (a capable model plans whole specs)."
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="Rows of the sample the dry run processes."),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Never ask: design missing inputs, agree to installs."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the whole result as JSON on stdout."),
) -> None:
    """Write a pipeline spec from a request: retrieve, plan, validate, repair, dry-run, explain.

    Exit codes: 0 ready; 1 incomplete (errors left, dry run kept nothing, a step not covered);
    2 cannot be served (images, audio, ...) or too ambiguous, or a usage error.
    """
    from dataflow_cli.agent.report import render, show_code
    from dataflow_cli.agent.session import AgentOptions, run_agent

    interactive = not yes and sys.stdin.isatty()
    options = AgentOptions(
        request=request,
        sample=sample,
        output=output,
        backend=backend,
        model=model,
        limit=limit,
        yes=yes,
        ask_user=(lambda question: typer.prompt(question, default="", show_default=False, err=True))
        if interactive
        else None,
    )
    if not yes and not interactive and sample is None:
        # Nobody to ask and no permission to invent the input: say what is missing.
        from dataflow_cli.errors import SpecError

        raise SpecError(
            "no `--sample` and no terminal to ask for one",
            hint="pass `--sample FILE`, or `--yes` to let the agent design the input columns",
        )
    if output.exists() and not yes:
        from dataflow_cli.errors import SpecError

        if not interactive or not typer.confirm(f"`{output}` exists; overwrite it?", err=True):
            raise SpecError(f"`{output}` exists", hint="choose another `-o`, or pass `--yes` to overwrite it")
    result = run_agent(options)
    if json_output:
        print_json(result.as_dict())
    else:
        out = console()
        from rich.markup import escape

        for line in show_code(result):
            out.print(escape(line), soft_wrap=True)
        for line in render(result):
            out.print(escape(line), soft_wrap=True)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
