"""`dataflow operators list|search|show|docs`: what is installed and how to use it.

Docstrings and other user text are printed as `rich.text.Text`, never parsed as markup: a
docstring's "[min, max]" would otherwise vanish as an unknown style tag.
"""

from __future__ import annotations

import typer

from dataflow_cli.cli.common import console, print_json, user_errors

app = typer.Typer(
    help="List, search and describe installed operators.", no_args_is_help=True, rich_markup_mode=None
)


def _check_choice(option: str, value: str | None, choices) -> None:
    if value is not None and value not in choices:
        from dataflow_cli.errors import SpecError, did_you_mean

        raise SpecError(
            f"unknown {option} `{value}`{did_you_mean(value, choices)}",
            hint="choose one of " + ", ".join(f"`{c}`" for c in choices),
        )


def _stdout():
    """The console for data (stdout): the listing is the command's output."""
    from rich.console import Console

    return Console(highlight=False)


@app.command("list")
@user_errors
def list_operators(
    domain: str = typer.Option(None, "--domain", help="Only this domain (core, text, sft, llm, ...)."),
    kind: str = typer.Option(None, "--kind", help="Only this kind: generate, evaluate, filter or refine."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """List installed operators by domain and kind (plugins that fail to import are shown as failed)."""
    from dataflow_cli.catalog import KINDS
    from dataflow_cli.catalog.docs import domain_key, kind_key
    from dataflow_cli.catalog.index import describe_all

    _check_choice("kind", kind, KINDS)
    everything = describe_all()
    _check_choice("domain", domain, sorted({r["domain"] for r in everything}, key=domain_key))
    rows = [
        r
        for r in everything
        if (kind is None or r["kind"] == kind) and (domain is None or r["domain"] == domain)
    ]
    rows.sort(key=lambda r: (domain_key(r["domain"]), kind_key(r["kind"]), r["name"]))
    if json_output:
        keys = (
            "name",
            "domain",
            "kind",
            "scope",
            "distribution",
            "entry_point",
            "status",
            "error",
            "summary",
        )
        print_json([{k: r.get(k) for k in keys} for r in rows])
        return
    from rich.table import Table
    from rich.text import Text

    out = _stdout()
    name_width = max((len(r["name"]) for r in rows), default=0)  # one column line for all domains
    for group in dict.fromkeys((r["domain"], r["distribution"]) for r in rows):
        members = [r for r in rows if (r["domain"], r["distribution"]) == group]
        title = group[0] if group[1] == "dataflow-cli" else f"{group[0]} (from {group[1]})"
        table = Table(box=None, pad_edge=False, show_header=False, title=Text(title, style="bold"))
        table.title_justify = "left"
        # Names and kinds never wrap (they are what a user copies); descriptions take the rest.
        table.add_column("kind", no_wrap=True, style="cyan", min_width=len("evaluate"))
        table.add_column("name", no_wrap=True, min_width=name_width)
        table.add_column("description", ratio=1)
        previous = None
        for r in members:
            label = (r["kind"] or "failed") if r["kind"] != previous else ""
            previous = r["kind"]
            if r["status"] == "ok":
                text = Text(r["summary"])
                if r["scope"] == "global":
                    text.append(" (global)", style="dim")
            else:
                text = Text("failed to load: ", style="red") + Text(r["error"] or "")
            table.add_row(label, r["name"], text)
        out.print(table)
        out.print()
    failed = sum(r["status"] != "ok" for r in rows)
    if failed:
        console().print(f"[yellow]{failed} operator(s) failed to load[/yellow]")


@app.command("search")
@user_errors
def search_operators(
    query: str = typer.Argument(..., help="Words to look for (name, description, params, columns)."),
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="Most results to show."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Rank installed operators by how well their name, docstring, params and columns match QUERY."""
    from dataflow_cli.catalog.index import describe_all
    from dataflow_cli.catalog.search import search

    by_name = {r["name"]: r for r in describe_all()}
    hits = [(by_name[name], score) for name, score in search(query, limit)]
    if json_output:
        print_json(
            [
                {
                    "name": r["name"],
                    "score": s,
                    "domain": r["domain"],
                    "kind": r["kind"],
                    "summary": r["summary"],
                }
                for r, s in hits
            ]
        )
        return
    if not hits:
        console().print(f"no operator matches {query!r}; `dataflow operators list` shows them all")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("domain", no_wrap=True, style="cyan")
    table.add_column("score", no_wrap=True, justify="right")
    table.add_column("description", ratio=1)
    for r, score in hits:
        table.add_row(r["name"], r["domain"], f"{score:.1f}", Text(r["summary"]))
    _stdout().print(table)


@app.command("show")
@user_errors
def show(
    name: str = typer.Argument(..., help="Operator registry name."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Show what an operator does, its inputs, outputs and params, and an example stage."""
    from dataflow_cli.catalog.describe import describe, example_stage, param_text

    info = describe(name)
    if json_output:
        print_json(info)
        return
    from rich.table import Table
    from rich.text import Text

    out = _stdout()
    scope = "global: sees every row" if info["scope"] == "global" else "row-local"
    head = Text(info["name"], style="bold") + Text(
        f"  {info['kind']}, {scope}, domain {info['domain']}, from {info['distribution']}"
    )
    out.print(head)
    if info["requires"]:
        out.print(Text(f"needs: pip install {' '.join(info['requires'])}", style="yellow"))
    if info["description"]:
        out.print()
        out.print(Text(info["description"]))
    # Each fact once: the docstring's Inputs/Outputs/Params entries become the tables' descriptions
    # (the declared description when the docstring has none); what fits no row follows as notes.
    for section in ("inputs", "outputs", "params"):
        items, notes = info[section], info["notes"][section]
        if not items and not notes:
            continue
        out.print()
        out.print(Text(section.capitalize(), style="bold"))
        if items:
            table = Table(box=None, pad_edge=False, show_header=section == "params")
            table.add_column("name", no_wrap=True, style="cyan")
            if section == "outputs":
                table.add_column("type", no_wrap=True)
            if section == "params":
                table.add_column("type", no_wrap=True)
                table.add_column("default", no_wrap=True)
            table.add_column("description", ratio=1)
            for item in items:
                cells = [Text(item["name"])]
                if section == "outputs":
                    cells.append(Text(item["type"]))
                if section == "params":
                    default = "(required)" if item["required"] else _yaml_value(item["default"])
                    cells += [Text(item["type"]), Text(default)]
                text = param_text(item) if section == "params" else item["details"] or item["description"]
                cells.append(Text(text))
                table.add_row(*cells)
            out.print(table)
        for note in notes:
            out.print(Text(note))
    if info.get("default_template"):
        out.print()
        out.print(
            Text("Default prompt template", style="bold")
            + Text(" (override with the stage's `prompt:` or `params.template`)")
        )
        out.print(Text(info["default_template"].rstrip()))
    out.print()
    out.print(Text("Example stage", style="bold"))
    out.print(Text(example_stage(info)))


@app.command("docs")
@user_errors
def docs(
    distribution: list[str] = typer.Option(
        None, "--distribution", help="Only operators of this distribution (repeatable), e.g. dataflow-cli."
    ),
) -> None:
    """Print the operator catalogue as Markdown (`make docs` writes docs/operators.md with it)."""
    from dataflow_cli.catalog.docs import render
    from dataflow_cli.catalog.index import describe_all
    from dataflow_cli.errors import DataflowError

    ops = [r for r in describe_all() if not distribution or r["distribution"] in distribution]
    failed = [r for r in ops if r["status"] != "ok"]
    if failed:
        raise DataflowError(
            "cannot document operators that fail to load: "
            + "; ".join(f"`{r['name']}`: {r['error']}" for r in failed),
            hint="fix them (`dataflow operators show NAME` shows the error), or leave their "
            "distribution out with --distribution",
        )
    command = "dataflow operators docs" + "".join(f" --distribution {d}" for d in distribution or [])
    import sys

    sys.stdout.write(render(ops, command))


def _yaml_value(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
