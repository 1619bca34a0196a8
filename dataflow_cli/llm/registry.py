"""Backend discovery through entry points (group `dataflow.backends`), like operators: the same
DATAFLOW_PLUGINS filter and the same error for a name two distributions claim."""

from __future__ import annotations

from functools import cache, lru_cache

from dataflow_cli.errors import DataflowError, SpecError, did_you_mean
from dataflow_cli.registry import Entry, discover

GROUP = "dataflow.backends"


@lru_cache(maxsize=1)
def _entries() -> dict[str, Entry]:
    return discover(GROUP, "backend")


def providers() -> list[str]:
    return sorted(_entries())


@cache
def backend_class(provider: str):
    entries = _entries()
    if provider not in entries:
        raise SpecError(f"unknown provider `{provider}`{did_you_mean(provider, entries)}")
    entry = entries[provider]
    try:
        return entry.entry_point.load()
    except Exception as exc:  # a broken plugin must not look like a bug in dataflow
        raise DataflowError(
            f"backend `{provider}` from `{entry.distribution}` failed to load: {type(exc).__name__}: {exc}",
            hint=f"reinstall or fix the `{entry.distribution}` package",
        ) from None
