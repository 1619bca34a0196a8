"""`dataflow init [DIR]`: scaffold a runnable pipeline from a ready one."""

from __future__ import annotations

from pathlib import Path

import typer

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def init(
    directory: Path = typer.Argument(Path("."), help="Where to create the pipeline."),
    template: str = typer.Option(None, "--template", "-t", help="Ready pipeline to start from."),
    list_templates: bool = typer.Option(False, "--list-templates", help="List ready pipelines and exit."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    json_output: bool = typer.Option(False, "--json", help="With --list-templates: print as JSON on stdout."),
) -> None:
    """Create a runnable pipeline (spec, sample input, prompts) from a ready pipeline."""
    from dataflow_cli.scaffold import DEFAULT_TEMPLATE, scaffold, templates

    if list_templates:
        found = templates()
        if json_output:
            print_json([{"name": t.name, "description": t.description} for t in found])
            return
        for t in found:
            marker = " (default)" if t.name == DEFAULT_TEMPLATE else ""
            typer.echo(f"{t.name}{marker}\t{t.description}")
        return
    written = scaffold(directory, template or DEFAULT_TEMPLATE, force=force)
    out = console()
    for path in written:
        out.print(f"  created {path}")
    spec = directory / "pipeline.yaml"
    out.print(f"[green]ready[/green]: run it with `dataflow run {spec}`")
