"""Default prompt templates: Jinja files in each domain's `prompts/` folder."""

from __future__ import annotations

from importlib.resources import files


def default_prompt(name: str, domain: str = "llm") -> str:
    """The template `<domain>/prompts/<name>.jinja` (shown by `dataflow operators show`)."""
    return (
        files(f"dataflow_operators.{domain}").joinpath("prompts", f"{name}.jinja").read_text(encoding="utf-8")
    )
