"""`dataflow validate SPEC`: check a spec without reading data or calling models."""

from __future__ import annotations

from pathlib import Path

import typer

from dataflow_cli.cli.common import print_json, user_errors


@user_errors
def validate(
    spec: Path = typer.Argument(..., help="Pipeline spec (YAML)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a value: path=value (YAML-typed). Repeatable."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Validate a pipeline spec: structure, operators, params and column flow."""
    from dataflow_cli.spec.build import load_spec
    from dataflow_cli.spec.model import SpecErrors

    try:
        loaded = load_spec(spec, set_)
    except SpecErrors as errors:
        if json_output:
            print_json(
                {
                    "valid": False,
                    "errors": [
                        {"location": i.location, "path": i.path, "message": i.message} for i in errors.issues
                    ],
                }
            )
            raise typer.Exit(2) from None
        raise
    if json_output:
        print_json(
            {
                "valid": True,
                "name": loaded.name,
                "stages": [{"name": s.name, "op": s.op_name, "kind": s.kind} for s in loaded.stages],
            }
        )
    else:
        # Plain click output: importing rich for one line would cost a tenth of the command.
        typer.secho("ok", fg="green", err=True, nl=False)
        typer.echo(f": `{spec}` is valid ({len(loaded.stages)} stages)", err=True)
