"""docs/operators.md is generated from the installed built-ins and kept current."""

from __future__ import annotations

import re

from dataflow_cli.catalog.docs import md, render
from dataflow_cli.catalog.index import describe_all
from tests.conftest import REPO

DOCS = REPO / "docs" / "operators.md"
COMMAND = "dataflow operators docs --distribution dataflow-cli"


def builtins() -> list[dict]:
    return [op for op in describe_all() if op["distribution"] == "dataflow-cli"]


def declared_builtins() -> set[str]:
    """Operator names pyproject.toml registers (what a reinstall would make visible)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    table = text.split('[project.entry-points."dataflow.operators"]', 1)[1].split("\n[", 1)[0]
    return {m.group(1) for m in re.finditer(r"^([\w-]+)\s*=", table, re.MULTILINE)}


def test_docs_are_current():
    installed = {op["name"] for op in builtins()}
    assert installed == declared_builtins(), (
        "the installed entry points differ from pyproject.toml: reinstall first "
        "(`pip install --no-deps -e .`; `make docs` does it), then regenerate the docs"
    )
    assert all(op["status"] == "ok" for op in builtins())
    expected = render(builtins(), COMMAND)
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    assert current == expected, (
        "docs/operators.md is stale (an operator was added, removed or its docstring, params or "
        f"ports changed): regenerate it with `make docs` (or `{COMMAND} > docs/operators.md`)"
    )


def test_docs_cover_every_builtin_by_domain_and_kind():
    text = render(builtins(), COMMAND)
    for op in builtins():
        assert f'<a id="{op["name"]}"></a>' in text
        assert f"[`{op['name']}`](#{op['name']})" in text.split("\n<a id=")[0]  # overview table
    overview = text.split("\n<a id=")[0]
    assert "| domain | generate | evaluate | filter | refine |" in overview
    row = next(line for line in overview.splitlines() if line.startswith("| [text]"))
    cells = row.split(" | ")
    assert "minhash_dedup_filter" in cells[3] and "length_evaluator" in cells[2]
    range_page = text.split('<a id="range_filter"></a>')[1].split("<a id=")[0]
    assert "lies within \\[min, max\\]" in range_page
    assert "| `inclusive` | bool | `true` |" in range_page
    assert "```yaml\n- name: range\n  op: range_filter\n" in range_page
    assert not re.search(r"^\s+\w+: null$", range_page, re.MULTILINE)


def test_markdown_shows_docstring_text_as_written():
    assert md("of _id <kept id>") == "of \\_id \\<kept id\\>"
    assert md("(a*x + b) mod 2**32") == "(a\\*x + b) mod 2\\*\\*32"
    assert md("`a*b|c` and [min, max]") == "`a*b|c` and \\[min, max\\]"
    assert md("`a|b`", cell=True) == "`a\\|b`"
