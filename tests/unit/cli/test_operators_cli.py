"""`dataflow operators list|search|show|docs` as a user sees them."""

from __future__ import annotations

import re

import pytest
import yaml

from dataflow_cli.cli.app import app
from tests.conftest import REPO


def run(cli, *args: str, columns: int = 80, expect: int = 0):
    result = cli.runner.invoke(app, list(args), env={"COLUMNS": str(columns)}, catch_exceptions=False)
    assert result.exit_code == expect, result.stderr
    return result


def test_list_groups_by_domain_then_kind(cli):
    out = run(cli, "operators", "list", columns=120).stdout
    titles = [line.strip() for line in out.splitlines() if line.strip() in ("core", "text", "sft", "llm")]
    assert titles == ["core", "text", "sft", "llm"]
    text = out.split("\ntext")[1].split("\nsft")[0]
    # Kinds in contract order, each named once at the head of its group.
    kinds = [
        line.split()[0]
        for line in text.splitlines()
        if re.match(r"^(generate|evaluate|filter|refine) ", line)
    ]
    assert kinds == ["evaluate", "filter", "refine"]
    assert text.index("length_evaluator") < text.index("minhash_dedup_filter") < text.index("pii_refiner")


def test_list_filters_by_domain_and_kind(cli):
    rows = cli.json("operators", "list", "--domain", "sft", "--kind", "filter")
    assert rows and {(r["domain"], r["kind"]) for r in rows} == {("sft", "filter")}
    assert "refusal_filter" in {r["name"] for r in rows}
    assert {r["domain"] for r in cli.json("operators", "list")} >= {"core", "text", "sft", "llm"}


def test_list_unknown_domain_suggests(cli):
    result = run(cli, "operators", "list", "--domain", "txt", expect=2)
    assert "unknown domain `txt`; did you mean `text`?" in result.stderr
    assert "`core`" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("columns", [80, 60])
def test_names_never_wrap_in_a_narrow_terminal(cli, columns):
    out = run(cli, "operators", "list", columns=columns).stdout
    words = set(out.split())
    for row in cli.json("operators", "list"):
        assert row["name"] in words, f"{row['name']} is broken across lines at {columns} columns"
    if columns == 80:
        assert max(len(line.rstrip()) for line in out.splitlines()) <= 80


def test_bracketed_docstring_text_is_printed(cli):
    listing = " ".join(run(cli, "operators", "list", "--domain", "core", columns=200).stdout.split())
    assert "Keep rows whose numeric value lies within [min, max]." in listing
    shown = run(cli, "operators", "show", "range_filter", columns=200).stdout
    assert "lies within [min, max]." in shown
    assert "[red]" not in shown


def test_search(cli):
    hits = cli.json("operators", "search", "near duplicate documents", "--limit", "3")
    assert len(hits) == 3 and hits[0]["name"] == "minhash_dedup_filter"
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"] > 0
    assert {"name", "score", "domain", "kind", "summary"} <= set(hits[0])
    table = run(cli, "operators", "search", "emails phone numbers", columns=100).stdout
    assert table.splitlines()[1].split()[0] in ("pii_refiner", "pii_evaluator")
    none = run(cli, "operators", "search", "xylophone")
    assert none.stdout == "" and "no operator matches" in none.stderr


def test_show_prints_each_fact_once(cli):
    out = run(cli, "operators", "show", "response_copies_instruction_filter", columns=200).stdout
    assert "Inputs:" not in out and "Outputs:" not in out and "Params:" not in out
    # The docstring's param texts are the table's descriptions, not a second listing.
    assert out.count("Rewriting tasks") == 1 and out.count("fewest tokens") == 1
    assert out.count("the prompt or instruction") == 1
    params = out.split("\nParams\n")[1].split("\nExample stage")[0]
    min_words = next(line for line in params.splitlines() if line.startswith("min_words"))
    assert min_words.split()[1:3] == ["int", "5"] and "(default 5)" not in min_words


def test_show_example_stage_is_minimal(cli):
    out = run(cli, "operators", "show", "range_filter", columns=120).stdout
    (stage,) = yaml.safe_load(out.split("Example stage", 1)[1])
    assert stage["op"] == "range_filter" and stage["inputs"] == {"value": "value"}
    assert stage["params"] and set(stage["params"]) <= {"min", "max"}
    assert None not in stage["params"].values()
    out = run(cli, "operators", "show", "length_evaluator").stdout
    (stage,) = yaml.safe_load(out.split("Example stage", 1)[1])
    assert "params" not in stage  # no param is required: none is listed
    out = run(cli, "operators", "show", "prompted_evaluator").stdout
    (stage,) = yaml.safe_load(out.split("Example stage", 1)[1])
    assert stage["backend"] == "default" and "params" not in stage


def test_docs_command_writes_the_committed_page(cli):
    out = run(cli, "operators", "docs", "--distribution", "dataflow-cli").stdout
    assert out == (REPO / "docs" / "operators.md").read_text(encoding="utf-8")
