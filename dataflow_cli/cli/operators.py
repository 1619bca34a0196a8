"""`dataflow operators list|show`: what is installed and how to use it."""

from __future__ import annotations

import typer

from dataflow_cli.cli.common import console, print_json, user_errors

app = typer.Typer(help="List and describe installed operators.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
@user_errors
def list_operators(
    kind: str = typer.Option(None, "--kind", help="Only this kind: generate, evaluate, filter or refine."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """List installed operators (plugins that fail to import are shown as failed)."""
    from dataflow_cli.catalog import describe_all

    if kind is not None and kind not in ("generate", "evaluate", "filter", "refine"):
        from dataflow_cli.errors import SpecError, did_you_mean

        choices = ("generate", "evaluate", "filter", "refine")
        raise SpecError(
            f"unknown kind `{kind}`{did_you_mean(kind, choices)}", hint="choose one of " + ", ".join(choices)
        )
    rows = [r for r in describe_all() if kind is None or r["kind"] == kind]
    if json_output:
        print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, box=None, pad_edge=False)
    for column in ("name", "kind", "scope", "plugin", "description"):
        table.add_column(column, overflow="fold")
    for r in rows:
        description = r["summary"] if r["status"] == "ok" else f"[red]failed to load[/red]: {r['error']}"
        table.add_row(r["name"], r["kind"] or "-", r["scope"] or "-", r["distribution"], description)
    Console().print(table)  # stdout: the listing is the command's data
    failed = sum(r["status"] != "ok" for r in rows)
    if failed:
        console().print(f"[yellow]{failed} operator(s) failed to load[/yellow]")


@app.command("show")
@user_errors
def show(
    name: str = typer.Argument(..., help="Operator registry name."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Show an operator's params, inputs, outputs and an example stage."""
    from dataflow_cli.catalog import describe, example_stage

    info = describe(name)
    if json_output:
        print_json(info)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    out.print(f"[bold]{info['name']}[/bold] ({info['kind']}, {info['scope']}) from {info['distribution']}")
    if info["doc"]:
        out.print(escape(info["doc"]))
    for section in ("inputs", "outputs"):
        if info[section]:
            out.print(f"\n[bold]{section.capitalize()}[/bold]")
            for port in info[section]:
                suffix = f" ({port['type']})" if section == "outputs" else ""
                out.print(f"  {port['name']}{suffix}: {escape(port['description'])}")
    if info["params"]:
        table = Table(title="Params", title_justify="left", show_edge=False)
        for column in ("name", "type", "default", "description"):
            table.add_column(column, overflow="fold")
        for p in info["params"]:
            default = "(required)" if p["required"] else repr(p["default"])
            table.add_row(p["name"], p["type"], escape(default), escape(p["description"]))
        out.print()
        out.print(table)
    if info.get("default_template"):
        out.print(
            "\n[bold]Default prompt template[/bold] (override with the stage's `prompt:` or `params.template`)"
        )
        out.print(escape(info["default_template"].rstrip()), highlight=False)
    out.print("\n[bold]Example stage[/bold]")
    out.print(escape(example_stage(info)), highlight=False)
