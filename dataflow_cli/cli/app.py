"""`dataflow` command-line entry point. Heavy imports live inside the commands."""

from __future__ import annotations

import typer

from dataflow_cli import __version__
from dataflow_cli.cli import cache, init, operators, run, schema, validate
from dataflow_cli.cli import report as report_command
from dataflow_cli.cli.agent import agent as agent_command
from dataflow_cli.cli.diff import diff as diff_command
from dataflow_cli.cli.estimate import estimate as estimate_command
from dataflow_cli.cli.explain import explain as explain_command

app = typer.Typer(
    name="dataflow",
    help="Turn raw data into LLM training data with declarative, resumable pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dataflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Turn raw data into LLM training data with declarative, resumable pipelines."""


app.command("run")(run.run)
app.command("validate")(validate.validate)
app.command("init")(init.init)
app.command("schema")(schema.schema)
app.command("estimate")(estimate_command)
app.command("report")(report_command.report)
app.command("explain")(explain_command)
app.command("diff")(diff_command)
app.command("agent")(agent_command)
app.add_typer(operators.app, name="operators")
app.add_typer(cache.app, name="cache")


def main() -> None:
    app()
