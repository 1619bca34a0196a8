"""The README's "write your own operator" examples are real code: run verbatim, installed as a
plugin distribution, end to end through `dataflow run`, and checked against the conventions."""

from __future__ import annotations

import json
import re
import sys

import pyarrow as pa
import pytest

from dataflow_cli import registry
from dataflow_cli.engine.delta import apply_delta, make_delta
from dataflow_cli.operator import Batch
from dataflow_cli.spec.model import Stage
from tests.conftest import REPO, read_jsonl, write_jsonl
from tests.support.conventions import check_conventions
from tests.support.llm_ops import bound

SECTION = (REPO / "README.md").read_text(encoding="utf-8").split("## Write your own operator", 1)[1]
SECTION = SECTION.split("\n## ", 1)[0]
RULE, LLM = re.findall(r"```python\n(.*?)```", SECTION, re.DOTALL)
ENTRY_POINTS = re.search(r"```toml\n(.*?)```", SECTION, re.DOTALL).group(1)


def run_block(code: str, class_name: str) -> type:
    namespace: dict = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace[class_name]


def body_lines(code: str) -> int:
    """Non-blank lines of the class body, beyond its docstring (the "15 lines" of the README)."""
    body = code.split('"""', 2)[2]
    return len([line for line in body.splitlines() if line.strip()])


@pytest.mark.parametrize(("code", "class_name"), [(RULE, "MaxDigitsFilter"), (LLM, "PolitenessEvaluator")])
def test_readme_examples_follow_the_conventions_in_15_lines(code, class_name):
    assert body_lines(code) <= 15
    check_conventions(run_block(code, class_name), where="README.md")


def test_readme_rule_filter_runs():
    op_class = run_block(RULE, "MaxDigitsFilter")
    op = op_class(op_class.Params(max=2))
    table = pa.table({"_id": ["0", "1", "2"], "text": ["no digits", "call 555 1234", "a1b2"]})
    verdict = op.process(Batch(table, op.input_columns))
    stage = Stage(0, "digits", op.name, op)
    kept, rejected = apply_delta(stage, table, make_delta(stage, table, verdict))
    assert kept.column("_id").to_pylist() == ["0", "2"]
    assert rejected.column("_reason").to_pylist() == ["more than 2 digits"]


def test_readme_llm_evaluator_prompt_and_parse():
    op_class = run_block(LLM, "PolitenessEvaluator")
    op = op_class(inputs={"reply": "body"})
    assert op.required_columns() == ["body"]
    assert op.build_messages({"reply": "Thanks!"}) == [
        {"role": "user", "content": "How polite is this reply, 1-5? Answer with one digit.\n\nThanks!"}
    ]
    assert op.parse("4\n", {}) == {"politeness": 4}
    table = pa.table({"_id": ["0", "1"], "body": ["Thanks!", "Go away."]})
    with bound(op, replies=["5", "rude"]):
        result = op.process(Batch(table, op.input_columns))
    assert result.result == {"politeness": [5, None]}
    assert result.failed == [None, "parse error: not a digit from 1 to 5"]
    assert result.raw == [None, "rude"]


@pytest.fixture
def readme_plugin(tmp_path, monkeypatch):
    """Both examples installed as the distribution `readme-ops`, with the README's entry points."""
    root = tmp_path / "site"
    (root / "my_package").mkdir(parents=True)
    (root / "my_package" / "__init__.py").write_text("")
    (root / "my_package" / "filters.py").write_text(RULE)
    (root / "my_package" / "judges.py").write_text(LLM)
    info = root / "readme_ops-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: readme-ops\nVersion: 1.0\n")
    # The README's TOML table, as the entry_points.txt that `pip install` writes from it.
    group, *lines = ENTRY_POINTS.strip().splitlines()
    assert group == '[project.entry-points."dataflow.operators"]'
    (info / "entry_points.txt").write_text(
        "[dataflow.operators]\n" + "\n".join(lines).replace('"', "") + "\n"
    )
    monkeypatch.syspath_prepend(str(root))
    registry.entries.cache_clear()
    registry.load.cache_clear()
    yield tmp_path
    registry.entries.cache_clear()
    registry.load.cache_clear()
    for name in [m for m in sys.modules if m == "my_package" or m.startswith("my_package.")]:
        del sys.modules[name]


def test_readme_examples_run_end_to_end_as_a_plugin(readme_plugin, cli):
    work = readme_plugin
    rows = [{"body": "Thank you so much!"}, {"body": "Call 555 1234"}, {"body": "whatever"}, {"body": None}]
    write_jsonl(work / "in.jsonl", rows)
    reply = "{% if 'Thank' in prompt %}5{% elif 'Call' in prompt %}3{% else %}meh{% endif %}"
    (work / "spec.yaml").write_text(
        "version: 1\nname: readme\ninput: {path: in.jsonl}\noutput: {path: out.jsonl}\n"
        f"backends: {{default: {{provider: fake, reply_template: {json.dumps(reply)}}}}}\n"
        "stages:\n"
        "  - {name: polite, op: politeness_evaluator, inputs: {reply: body}}\n"
        "  - {name: digits, op: max_digits_filter, inputs: {text: body}, params: {max: 2}}\n"
    )
    listed = {r["name"]: r for r in cli.json("operators", "list")}
    assert listed["politeness_evaluator"]["distribution"] == "readme-ops"
    assert listed["max_digits_filter"]["status"] == "ok", listed["max_digits_filter"]["error"]
    cli("validate", work / "spec.yaml")
    cli("run", work / "spec.yaml", "--run-dir", work / "run")
    assert [(r["body"], r["politeness"]) for r in read_jsonl(work / "out.jsonl")] == [
        ("Thank you so much!", 5)
    ]
    stats = json.loads((work / "run" / "stats.json").read_text())
    assert [stage["dropped_by_reason"] for stage in stats["stages"]] == [
        {"parse error: not a digit from 1 to 5": 1, "null `reply` in prompt": 1},
        {"more than 2 digits": 1},
    ]
    rejects = [r for path in work.rglob("*rejects*.jsonl") for r in read_jsonl(path)]
    assert {(r["body"], r["_reason"], r.get("_raw_output")) for r in rejects} == {
        ("whatever", "parse error: not a digit from 1 to 5", "meh"),
        (None, "null `reply` in prompt", None),
        ("Call 555 1234", "more than 2 digits", None),
    }
