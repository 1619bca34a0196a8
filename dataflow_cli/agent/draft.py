"""The spec the agent is writing: its data, why each stage is there, and its YAML rendering.

The agent renders the YAML itself (never the model), with a comment above each stage saying
why it is there, and validates the written file with the product's own `load_spec`, so the
locations it reports (`file:line:col: path: message`) are the ones a user would see.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.spec.model import Issue


@dataclass
class Draft:
    data: dict[str, Any]  # the spec as YAML data (version, name, input, output, backends, stages)
    why: dict[str, str] = field(default_factory=dict)  # stage name -> why it is there
    source: str = "composed"  # "pipeline:<name>" when it started from a ready pipeline
    header: list[str] = field(default_factory=list)  # comment lines at the top
    serves: dict[str, str] = field(default_factory=dict)  # stage name -> the sub-goal it serves

    @property
    def stages(self) -> list[dict[str, Any]]:
        return self.data.setdefault("stages", [])

    def copy(self) -> Draft:
        return Draft(
            copy.deepcopy(self.data), dict(self.why), self.source, list(self.header), dict(self.serves)
        )

    def render(self) -> str:
        import yaml

        def dump(value: Any) -> str:
            return yaml.safe_dump(
                value, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
            )

        lines = [f"# {h}" for h in self.header]
        head = {k: v for k, v in self.data.items() if k != "stages"}
        lines.append(dump(head).rstrip("\n"))
        lines.append("stages:")
        if not self.stages:
            lines[-1] = "stages: []"
        for stage in self.stages:
            reason = self.why.get(str(stage.get("name")), "")
            for part in _wrap(reason):
                lines.append(f"  # {part}")
            body = dump([stage]).rstrip("\n").splitlines()
            lines.extend("  " + line for line in body)
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        tmp.replace(path)


def _wrap(text: str, width: int = 96) -> list[str]:
    import textwrap

    return textwrap.wrap(" ".join(text.split()), width) if text else []


def validate(draft: Draft, path: Path) -> list[Issue]:
    """Write the draft to `path` and run the product's validator on it: every problem, located."""
    from dataflow_cli.errors import DataflowError
    from dataflow_cli.spec.build import load_spec
    from dataflow_cli.spec.model import SpecErrors

    draft.write(path)
    try:
        load_spec(path)
    except SpecErrors as errors:
        return list(errors.issues)
    except DataflowError as exc:  # e.g. an input file the reader refuses
        return [Issue(exc.location or str(path), "(root)", exc.reason)]
    return []


@functools.lru_cache(maxsize=1)
def operators() -> dict[str, dict[str, Any]]:
    """Installed operators by name, from the cached catalogue (read once per process; the
    synthesis step clears it after installing a plugin)."""
    from dataflow_cli.catalog.index import load

    return {op["name"]: op for op in load()["operators"] if op.get("status", "ok") == "ok"}


def parse_path(text: str) -> tuple:
    """`stages[2].params.min` -> ("stages", 2, "params", "min") (the inverse of format_path)."""
    import re

    parts: list[Any] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", text):
        parts.append(int(index) if index else name)
    return tuple(parts)


def stage_index(issue_path: str) -> int | None:
    parts = parse_path(issue_path)
    return parts[1] if len(parts) >= 2 and parts[0] == "stages" and isinstance(parts[1], int) else None
