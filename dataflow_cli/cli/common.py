"""What every command shares: the stderr console and turning user errors into exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import typer

from dataflow_cli.errors import DataflowError

_console = None


def console():
    """The one console for people: stderr, so stdout stays clean for data."""
    global _console
    if _console is None:
        import shutil

        from rich.console import Console

        # Not a terminal (CI logs, pipes): rich would assume 80 columns and wrap the tables.
        width = None if sys.stderr.isatty() else max(shutil.get_terminal_size((160, 24)).columns, 160)
        _console = Console(stderr=True, highlight=False, width=width)
    return _console


def print_json(payload: Any) -> None:
    """Machine-readable output: stdout, nothing else on it (secrets masked)."""
    from dataflow_cli import redact

    text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    if redact.active():  # masked in parsed values, so JSON escaping cannot hide a secret
        text = json.dumps(redact.redact_json(json.loads(text)), indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def report_error(error: DataflowError) -> None:
    from rich.markup import escape

    from dataflow_cli.redact import redact

    lines = redact(error.render()).splitlines()
    out = console()
    for line in lines:
        if line.lstrip().startswith("hint:"):
            out.print(f"[dim]{escape(line)}[/dim]", soft_wrap=True)
        else:
            out.print(f"[bold red]error:[/bold red] {escape(line)}", soft_wrap=True)


def user_errors(fn: Callable) -> Callable:
    """Print a `DataflowError` as one clear message (no traceback) and exit with its code.
    Anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DataflowError as error:
            report_error(error)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            console().print(
                "[yellow]interrupted[/yellow]: finished batches are checkpointed; run again to resume"
            )
            raise typer.Exit(130) from None

    return wrapper
