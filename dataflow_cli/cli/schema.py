"""`dataflow schema`: the editor schema (the spec JSON Schema with every installed operator's
params and every backend's settings)."""

from __future__ import annotations

from pathlib import Path

import typer

from dataflow_cli.cli.common import console, user_errors


@user_errors
def schema(
    distribution: list[str] = typer.Option(
        None, "--distribution", help="Only operators of this distribution (repeatable), e.g. dataflow-cli."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write the schema to this file instead of stdout."
    ),
) -> None:
    """Print the pipeline JSON Schema with operator params, for editor autocompletion and checking.

    Point a spec at it with a first line `# yaml-language-server: $schema=<path to the file>`
    (relative to the spec); `dataflow init` does this for you.
    """
    import sys

    from dataflow_cli.errors import DataflowError
    from dataflow_cli.spec.schema import full_schema, schema_text

    document, failed = full_schema(distribution or None)
    text = schema_text(document)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise DataflowError(f"cannot write `{output}`: {exc.strerror}") from None
        console().print(f"[green]wrote[/green] {output}")
    for name in failed:
        console().print(
            f"[yellow]warning[/yellow]: operator `{name}` failed to load; its params are not in the schema"
        )
