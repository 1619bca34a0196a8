"""`dataflow schema`: the spec JSON Schema with every installed operator's params."""

from __future__ import annotations

from dataflow_cli.cli.common import console, print_json, user_errors


@user_errors
def schema() -> None:
    """Print the pipeline JSON Schema (with operator params) for editor autocompletion."""
    from dataflow_cli.spec.schema import full_schema

    document, failed = full_schema()
    print_json(document)
    for name in failed:
        console().print(
            f"[yellow]warning[/yellow]: operator `{name}` failed to load; its params are not in the schema"
        )
