"""Backend discovery through entry points (group `dataflow.backends`), like operators."""

from __future__ import annotations

from functools import cache, lru_cache
from importlib.metadata import entry_points

from dataflow_cli.errors import DataflowError, SpecError, did_you_mean

GROUP = "dataflow.backends"


@lru_cache(maxsize=1)
def _entries() -> dict:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def providers() -> list[str]:
    return sorted(_entries())


@cache
def backend_class(provider: str):
    entries = _entries()
    if provider not in entries:
        raise SpecError(f"unknown provider `{provider}`{did_you_mean(provider, entries)}")
    try:
        return entries[provider].load()
    except Exception as exc:  # a broken plugin must not look like a bug in dataflow
        raise DataflowError(f"backend `{provider}` failed to load: {type(exc).__name__}: {exc}") from None
