"""The operator conventions (STYLE.md §12, README), as one check usable on any operator class:
the built-ins (tests/unit/operators/test_conventions.py) and the README's examples.

Every failure names the class and its file and says what to fix.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

from dataflow_cli.operator import Operator

SUFFIX = {"generate": "generator", "evaluate": "evaluator", "filter": "filter", "refine": "refiner"}
SECTIONS = ("Inputs:", "Outputs:", "Params:")
REPO = Path(__file__).resolve().parents[2]


def source_of(cls: type) -> str:
    try:
        path = Path(inspect.getsourcefile(cls) or "?")
    except TypeError:  # defined by exec'd code
        return "?"
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def check_conventions(cls: type, name: str | None = None, where: str | None = None) -> None:
    """Assert that operator class `cls` (registered as `name`) follows the conventions."""
    at = f"class `{cls.__name__}` in {where or source_of(cls)}"
    assert isinstance(cls, type) and issubclass(cls, Operator), f"{at}: not an Operator subclass"
    name = name or cls.name
    assert cls.name == name, f"{at}: `name` is `{cls.name}`, registered as `{name}`"
    suffix = SUFFIX[cls.kind]
    assert name.endswith("_" + suffix), f"{at}: a {cls.kind} operator's name ends in `_{suffix}`"
    pascal = "".join(part.capitalize() for part in name.split("_"))
    assert cls.__name__ == pascal, f"{at}: the class of `{name}` is named `{pascal}`"

    doc = inspect.cleandoc(cls.__doc__ or "")
    summary = cls.summary()
    assert summary, f"{at}: no docstring"
    assert summary[0].isupper() and summary.endswith("."), (
        f"{at}: the docstring's first line starts with a capital and ends with '.': {summary!r}"
    )
    first = summary.split()[0]
    assert not re.fullmatch(r"[A-Z][a-z]+[^s]s", first), (
        f"{at}: the docstring's first line is imperative (`{first[:-1]}`, not `{first}`)"
    )
    lines = [line.strip() for line in doc.splitlines()]
    for section in SECTIONS:
        assert section in lines, f"{at}: the docstring has no `{section}` section (a line of its own)"
    positions = [lines.index(section) for section in SECTIONS]
    assert positions == sorted(positions), f"{at}: docstring sections are not in order {', '.join(SECTIONS)}"
    documented = {
        section: "\n".join(lines[start + 1 : end])
        for section, start, end in zip(SECTIONS, positions, [*positions[1:], len(lines)], strict=True)
    }

    assert cls.Params.model_config.get("extra") == "forbid", (
        f"{at}: `Params` must forbid unknown keys (subclass `NoParams`, or `model_config = "
        'ConfigDict(extra="forbid")`)'
    )
    for field_name, field in cls.Params.model_fields.items():
        assert field.description, f"{at}: param `{field_name}` has no `description=`"
        assert re.search(rf"\b{re.escape(field_name)}\b", documented["Params:"]), (
            f"{at}: param `{field_name}` is not under `Params:` in the docstring"
        )
    json.dumps(cls.Params.model_json_schema())
    for section, ports in (("Inputs:", cls.inputs), ("Outputs:", cls.outputs)):
        for port_name, port in ports.items():
            assert port.description, f"{at}: port `{port_name}` has no description"
            assert port_name in documented[section], (
                f"{at}: `{port_name}` is not under `{section}` in the docstring"
            )
