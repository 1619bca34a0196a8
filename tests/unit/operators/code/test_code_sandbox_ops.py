"""The operators that execute code: execution evaluator, pass filter, weak-test guard; their
sandbox policy in a spec, in the fingerprint and in the run stats."""

from __future__ import annotations

import json

import pytest
from dataflow_operators.code.test_execution import CodeTestExecutionEvaluator
from dataflow_operators.code.test_pass import CodeTestPassFilter
from dataflow_operators.code.weak_tests import CodeWeakTestFilter

from dataflow_cli.operator import Partial
from dataflow_cli.sandbox.process import SandboxPolicy
from tests.conftest import read_jsonl, write_jsonl
from tests.support.llm_ops import batch
from tests.unit.sandbox.isolation import require

TESTS = "assert add(2, 3) == 5\nassert add(-1, 4) == 3\n"
GOOD = "def add(a, b):\n    return a + b\n"


@pytest.fixture(autouse=True)
def bwrap():
    require("bwrap")


def test_execution_evaluator_counts_and_explains():
    op = CodeTestExecutionEvaluator(CodeTestExecutionEvaluator.Params(sandbox=SandboxPolicy(timeout_s=3)))
    codes = [GOOD, "def add(a, b):\n    return a * b\n", "import sys\nsys.exit(0)\n", None]
    result = op.process(batch(code=codes, tests=[TESTS] * 4))
    assert isinstance(result, Partial)
    assert result.failed == [None, None, None, "null `code`"]
    columns = {name: values.to_pylist() for name, values in result.result.items()}
    assert columns["tests_passed"][:3] == [2, 0, 0]
    assert columns["tests_total"][:3] == [2, 2, 2]
    assert columns["test_failure"][:3] == [None, "assertion failed", "solution raised SystemExit on load"]
    outcomes = json.loads(columns["test_results"][1])
    assert [(o["name"], o["passed"], o["reason"]) for o in outcomes] == [
        ("line 1", False, "assertion failed"),
        ("line 2", False, "assertion failed"),
    ]
    assert all(t > 0 for t in columns["exec_time_s"][:3]) and all(
        m > 1 for m in columns["peak_memory_mb"][:3]
    )
    assert set(result.result) == set(CodeTestExecutionEvaluator.outputs)


def test_execution_evaluator_keeps_stderr_and_records_its_limits():
    op = CodeTestExecutionEvaluator(
        CodeTestExecutionEvaluator.Params(sandbox={"timeout_s": 2, "memory_mb": 256})
    )
    code = "import sys\nprint('debug info', file=sys.stderr)\n" + GOOD
    result = op.process(batch(code=[code], tests=[TESTS]))
    assert result["stderr_excerpt"].to_pylist() == ["debug info\n"]
    limits = op.run_limits()["sandbox"]
    assert limits["timeout_s"] == 2 and limits["memory_mb"] == 256 and limits["network"] == "off"
    assert limits["isolation"]["mechanism"] == "bwrap" and limits["isolation"]["network"] == "isolated"


def test_pass_filter():
    op = CodeTestPassFilter(CodeTestPassFilter.Params(min_pass_rate=0.5, min_tests=2))
    verdict = op.process(batch(passed=[2, 1, 0, 1, None], total=[2, 2, 2, 1, None]))
    assert verdict.keep == [True, True, False, False, False]
    assert verdict.reason.to_pylist() == [None, None, "pass rate < 0.5", "no tests", "no tests"]
    assert verdict.detail.to_pylist() == [None, None, "0/2 tests passed", "1 tests", "0 tests"]
    strict = CodeTestPassFilter().process(batch(passed=[2, 1], total=[2, 2]))
    assert strict.keep == [True, False] and strict.reason.to_pylist() == [None, "pass rate < 1"]


def test_weak_test_filter():
    op = CodeWeakTestFilter(CodeWeakTestFilter.Params(sandbox={"timeout_s": 3}))
    verdict = op.process(
        batch(tests=[TESTS, "assert add(1, 1) is None or True\n", "assert add(1,\n", "x = 1\n", None])
    )
    assert verdict.keep == [True, False, False, False, False]
    assert verdict.reason.to_pylist() == [
        None,
        "tests too weak",
        "tests syntax error",
        "no tests",
        "null `tests`",
    ]
    assert verdict.detail.to_pylist()[1] == "a stub that returns None passes them"


SPEC = """
version: 1
name: exec
input: {path: rows.jsonl}
output: {path: out/kept.jsonl}
stages:
  - name: guard
    op: code_weak_test_filter
    params: {sandbox: {timeout_s: 3}}
  - name: execute
    op: code_test_execution_evaluator
    params: {sandbox: {timeout_s: 3, memory_mb: 512}}
  - name: passing
    op: code_test_pass_filter
    inputs: {passed: tests_passed, total: tests_total}
"""


def rows() -> list[dict]:
    cheat = "class A:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return A()\n"
    return [
        {"code": GOOD, "tests": TESTS},
        {"code": cheat, "tests": TESTS},
        {"code": GOOD, "tests": "assert add(0, 0) == 0\n"},  # a stub returning 0 passes it
        {"code": "import time\ndef add(a, b):\n    time.sleep(60)\n", "tests": TESTS},
    ]


def test_pipeline_accounts_for_every_row_and_records_the_isolation(cli, tmp_path):
    write_jsonl(tmp_path / "rows.jsonl", rows())
    (tmp_path / "spec.yaml").write_text(SPEC)
    stats = cli.json("run", tmp_path / "spec.yaml")
    assert stats["rows_read"] == 4 and stats["rows_written"] == 1 and stats["rows_rejected"] == 3
    kept = read_jsonl(tmp_path / "out" / "kept.jsonl")
    assert [(r["tests_passed"], r["tests_total"]) for r in kept] == [(2, 2)]
    rejects = {
        r["_stage"] + ": " + r["_reason"]
        for r in read_jsonl(tmp_path / "out" / "rejects" / "kept.rejects.jsonl")
    }
    assert rejects == {
        "guard: tests too weak: a stub that returns its input passes them",
        "passing: pass rate < 1: 0/2 tests passed",
    }
    execute = next(s for s in stats["stages"] if s["name"] == "execute")
    assert execute["limits"]["sandbox"]["memory_mb"] == 512
    assert execute["limits"]["sandbox"]["isolation"]["mechanism"] == "bwrap"


def test_policy_is_validated_with_the_spec(cli, tmp_path):
    write_jsonl(tmp_path / "rows.jsonl", rows())
    (tmp_path / "spec.yaml").write_text(SPEC.replace("timeout_s: 3, memory_mb", "timeout: 3, memory_mb"))
    result = cli("validate", tmp_path / "spec.yaml", expect=2)
    assert "spec.yaml:12:24: stages[1].params.sandbox.timeout: unknown parameter `timeout`" in result.stderr


def test_a_required_isolation_that_cannot_hold_stops_the_run(cli, tmp_path, monkeypatch):
    write_jsonl(tmp_path / "rows.jsonl", rows())
    (tmp_path / "spec.yaml").write_text(SPEC)
    monkeypatch.setenv("DATAFLOW_SANDBOX", "none")  # as on a machine without namespaces
    result = cli("run", tmp_path / "spec.yaml", expect=1)
    assert (
        "the sandbox policy requires `network: off` but this machine cannot give a run its own network"
        in (result.stderr)
    )
    assert "install bubblewrap" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "kept.jsonl").exists()


def test_the_policy_is_part_of_the_fingerprint(cli, tmp_path):
    write_jsonl(tmp_path / "rows.jsonl", rows()[:1])
    (tmp_path / "spec.yaml").write_text(SPEC)
    cli("run", tmp_path / "spec.yaml", "--quiet")
    again = cli.json("run", tmp_path / "spec.yaml")
    assert [s["batches_reused"] for s in again["stages"]] == [1, 1, 1]
    changed = cli.json("run", tmp_path / "spec.yaml", "--set", "stages.execute.params.sandbox.timeout_s=4")
    assert [(s["batches_reused"], s["batches_computed"]) for s in changed["stages"]] == [
        (1, 0),
        (0, 1),
        (0, 1),
    ]
    execute = next(s for s in changed["stages"] if s["name"] == "execute")
    assert execute["limits"]["sandbox"]["timeout_s"] == 4
