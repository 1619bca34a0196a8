"""Operators described as data: docstring sections, domains, param texts and example stages."""

from __future__ import annotations

import itertools
from importlib.metadata import EntryPoint

import pytest
from pydantic import ValidationError

from dataflow_cli import catalog, operator, registry
from dataflow_cli.catalog.describe import describe, domain_of, param_text, split_doc

BUILTINS = sorted(n for n, e in registry.entries().items() if e.distribution == "dataflow-cli")


def test_kinds_match_the_operator_contract():
    assert catalog.KINDS == operator.KINDS


def test_split_doc_separates_prose_from_sections():
    doc = """Keep rows within [min, max].

    More prose.

    Inputs:
        value: a numeric column
            spanning two lines.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min: lower bound (default 0).
        template, system: see LLM params.
    Trailing prose.
    """
    prose, sections = split_doc(doc)
    assert prose == "Keep rows within [min, max].\n\nMore prose.\n\nTrailing prose."
    assert sections["Inputs"] == [("value", "a numeric column spanning two lines.")]
    assert sections["Outputs"] == [(None, "(none: rows are kept or dropped)")]
    assert sections["Params"] == [
        ("min", "lower bound (default 0)."),
        ("template, system", "see LLM params."),
    ]


def test_split_doc_reads_inline_and_two_space_sections():
    prose, sections = split_doc("Upper-case text.\n\n  Inputs:\n    text: the column.\n  Params: (none)\n")
    assert prose == "Upper-case text."
    assert sections == {"Inputs": [("text", "the column.")], "Params": [(None, "(none)")]}


@pytest.mark.parametrize(
    ("details", "default", "shown"),
    [
        ("fewest words (default 5).", 5, "fewest words."),
        ("fewest words (50).", 50, "fewest words."),
        ("keep it (default true).", True, "keep it."),
        ("share (default 0.9; null switches it off).", 0.9, "share (null switches it off)."),
        ("languages (default: every language of the model).", None, None),  # explains null: kept
        ("weight (default 0.5: equal weights).", 0.5, None),  # says more than the value: kept
        ("bound (default 3).", 4, None),  # disagrees with the real default: kept, not hidden
    ],
)
def test_param_text_drops_only_a_restated_default(details, default, shown):
    param = {"details": details, "description": "x", "required": False, "default": default}
    assert param_text(param) == (details if shown is None else shown)


def test_domains():
    entries = registry.entries()
    assert domain_of(entries["minhash_dedup_filter"]) == "text"
    assert domain_of(entries["range_filter"]) == "core"
    assert domain_of(entries["prompted_evaluator"]) == "llm"
    plugin = registry.Entry(
        "shout_refiner", "my-plugin", EntryPoint("shout_refiner", "my_plugin.ops:Shout", "g")
    )
    assert domain_of(plugin) == "my-plugin"

    class Declared:
        domain = "math"

    assert domain_of(plugin, Declared) == "math"


def test_show_facts_once_range_filter():
    info = describe("range_filter")
    assert info["summary"] == "Keep rows whose numeric value lies within [min, max]."
    assert "Inputs:" not in info["description"] and "Params:" not in info["description"]
    assert info["description"].startswith("Keep rows whose numeric value lies within [min, max].")
    params = {p["name"]: p for p in info["params"]}
    assert params["max"]["details"].startswith("upper bound")
    assert info["notes"]["outputs"] == ["(none: rows are kept or dropped)"]


@pytest.mark.parametrize("name", BUILTINS)
def test_example_stage_is_minimal_and_realistic(name):
    """No param set to null just because it exists: the example holds required params and those
    with an example value, and it is a configuration the operator accepts (or shows a `<type>`
    placeholder for a value only the user can give)."""
    info = describe(name)
    stage = info["example"]
    assert stage["op"] == name
    params = stage.get("params", {})
    assert None not in params.values()
    assert {p["name"] for p in info["params"] if p["required"]} <= set(params)
    for section in ("inputs", "outputs"):
        ports = [p["name"] for p in info[section] if p["name"].isidentifier()]
        assert stage.get(section, {}) == {port: port for port in ports}
    # A `<type>` placeholder is a value only the user can give: filled with some value of that
    # type, the stage must be a configuration the operator accepts.
    holes = _holes(params)
    fillings = itertools.product((1, 0.5, "x", True), repeat=len(holes))
    assert any(_accepts(name, _fill(params, dict(zip(holes, values, strict=True)))) for values in fillings)


def _holes(value, path=()):
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        return [path]
    if isinstance(value, dict):
        return [h for k, v in value.items() for h in _holes(v, (*path, k))]
    if isinstance(value, list):
        return [h for i, v in enumerate(value) for h in _holes(v, (*path, i))]
    return []


def _fill(value, fillings, path=()):
    if path in fillings:
        return fillings[path]
    if isinstance(value, dict):
        return {k: _fill(v, fillings, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, fillings, (*path, i)) for i, v in enumerate(value)]
    return value


def _accepts(name: str, params: dict) -> bool:
    try:
        registry.load(name).Params(**params)
    except ValidationError:
        return False
    return True


def test_example_stage_takes_values_from_a_shipped_pipeline():
    # range_filter needs one of min/max, which no single field says; a shipped pipeline shows it.
    params = describe("range_filter")["example"]["params"]
    assert len(params) == 1 and set(params) <= {"min", "max"}  # the smallest shipped use
    assert all(isinstance(v, (int, float)) for v in params.values())
    registry.load("range_filter").Params(**params)
    with pytest.raises(ValidationError):
        registry.load("range_filter").Params()
    assert describe("regex_filter")["example"]["params"]["pattern"]  # required, from a pipeline
