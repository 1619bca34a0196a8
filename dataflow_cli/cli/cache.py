"""`dataflow cache stats|clear`: the LLM request cache."""

from __future__ import annotations

import typer

from dataflow_cli.cli.common import console, print_json, user_errors

app = typer.Typer(help="Inspect or clear the LLM request cache.", no_args_is_help=True, rich_markup_mode=None)


def _open(path):
    from pathlib import Path

    from dataflow_cli.llm.cache import RequestCache, default_cache_path

    return RequestCache(Path(path) if path else default_cache_path())


@app.command("stats")
@user_errors
def stats(
    path: str = typer.Option(
        None, "--path", help="Cache file [default: $DATAFLOW_CACHE_DIR or .dataflow/llm-cache.sqlite]."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON on stdout."),
) -> None:
    """Show how many completions are cached, per model, and their tokens."""
    info = _open(path).stats()
    if json_output:
        print_json(info)
        return
    typer.echo(f"{info['path']}: {info['entries']:,} completions, {info['bytes'] / 1e6:.1f} MB")
    typer.echo(f"tokens: {info['prompt_tokens']:,} prompt, {info['completion_tokens']:,} completion")
    for model, count in info["models"].items():
        typer.echo(f"  {count:>10,}  {model}")


@app.command("clear")
@user_errors
def clear(
    path: str = typer.Option(
        None, "--path", help="Cache file [default: $DATAFLOW_CACHE_DIR or .dataflow/llm-cache.sqlite]."
    ),
    model: str = typer.Option(
        None, "--model", help="Only entries of this model identity (as `cache stats` shows)."
    ),
) -> None:
    """Delete cached completions (all, or one model's)."""
    removed = _open(path).clear(model)
    console().print(f"removed {removed:,} cached completion(s)")
