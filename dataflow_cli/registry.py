"""Operator discovery through entry points (group `dataflow.operators`).

Names are listed without importing anything; an operator class is imported only when a spec
uses it (or `operators show` describes it, or the cached catalogue of `dataflow_cli.catalog` is
rebuilt after a change). Built-ins take the same path as plugins.
`DATAFLOW_PLUGINS=dist-a,dist-b` restricts which distributions load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from dataflow_cli.errors import DataflowError, SpecError, did_you_mean

if TYPE_CHECKING:
    from dataflow_cli.operator import Operator

GROUP = "dataflow.operators"


@dataclass(frozen=True)
class Entry:
    name: str
    distribution: str
    entry_point: EntryPoint


class PluginLoadError(DataflowError):
    """A plugin's operator could not be imported."""


def _allowed_distributions() -> set[str] | None:
    raw = os.environ.get("DATAFLOW_PLUGINS", "").strip()
    if not raw:
        return None
    return {_normalize(d) for d in raw.split(",") if d.strip()}


def _normalize(dist: str) -> str:
    return dist.strip().lower().replace("_", "-").replace(".", "-")


def discover(group: str, what: str) -> dict[str, Entry]:
    """The entry points of `group` that DATAFLOW_PLUGINS lets load, by name, without importing
    any; a name claimed by two distributions is an error naming both. `what`: "operator", ..."""
    allowed = _allowed_distributions()
    found: dict[str, Entry] = {}
    names: dict[int, str] = {}  # `Distribution.name` parses METADATA on every call: once per dist
    for ep in entry_points(group=group):
        if ep.dist is None:
            dist = "unknown"
        else:
            dist = names.get(id(ep.dist)) or names.setdefault(id(ep.dist), ep.dist.name)
        if allowed is not None and _normalize(dist) not in allowed:
            continue
        previous = found.get(ep.name)
        if previous is not None and previous.distribution != dist:
            raise DataflowError(
                f"{what} `{ep.name}` is registered by two distributions: "
                f"`{previous.distribution}` ({previous.entry_point.value}) and `{dist}` ({ep.value})",
                hint="uninstall one of them, or restrict plugins with DATAFLOW_PLUGINS=<dist>,...",
            )
        found[ep.name] = Entry(ep.name, dist, ep)
    return dict(sorted(found.items()))


@lru_cache(maxsize=1)
def entries() -> dict[str, Entry]:
    """Every operator name visible to this process, without importing any of them."""
    return discover(GROUP, "operator")


@cache
def load(name: str):
    """The operator class registered as `name`; a clear error if unknown or broken."""
    known = entries()
    if name not in known:
        raise SpecError(f"unknown operator `{name}`{did_you_mean(name, known)}")
    entry = known[name]
    try:
        cls = entry.entry_point.load()
    except Exception as exc:  # a broken plugin must not look like a bug in dataflow
        raise PluginLoadError(
            f"operator `{name}` from `{entry.distribution}` failed to load: {type(exc).__name__}: {exc}",
            hint=f"reinstall or fix the `{entry.distribution}` package",
        ) from None
    from dataflow_cli.operator import KINDS, Operator

    where = f"operator `{name}` from `{entry.distribution}` ({entry.entry_point.value})"
    if not (isinstance(cls, type) and issubclass(cls, Operator)) or cls.kind not in KINDS:
        raise PluginLoadError(f"{where} is not a dataflow Generator, Evaluator, Filter or Refiner")
    missing = unimplemented(cls)
    if missing:
        raise PluginLoadError(
            f"{where} does not implement `{missing}` (needed to {cls.kind} rows)",
            hint=f"define `{missing}` in class `{cls.__name__}`"
            + (" and list LLMOperator first among its bases" if cls.uses_llm else ""),
        )
    return cls


def unimplemented(cls: type[Operator]) -> str | None:
    """The method `cls` must define and does not: its kind's method (`process_all` for a global
    operator), or `parse` for an LLM operator that relies on the base class's kind method."""
    from dataflow_cli import operator

    method = "process_all" if cls.scope == "global" else cls.kind
    stub = {
        "process_all": operator.Operator,
        "generate": operator.Generator,
        "evaluate": operator.Evaluator,
        "filter": operator.Filter,
        "refine": operator.Refiner,
    }[method]
    if getattr(cls, method, None) is getattr(stub, method):
        return method
    if cls.uses_llm and method != "process_all":
        from dataflow_cli.llm.operator import LLMOperator

        inherited = getattr(cls, method) is getattr(LLMOperator, method, None)
        if inherited and getattr(cls, "parse", None) is LLMOperator.parse:
            return "parse"
    return None
