"""The labelled set: every correct solution accepted, every subtly wrong one rejected."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from dataflow_cli.sandbox.process import Sandbox, SandboxPolicy
from dataflow_cli.sandbox.verify import TestRunner
from tests.unit.sandbox.isolation import require
from tests.unit.sandbox.labelled_solutions import PROBLEMS

ITEMS = [
    (name, label, passes, code, spec["tests"])
    for name, spec in PROBLEMS.items()
    for label, passes, code in spec["solutions"]
]


def test_the_set_is_big_and_mixed():
    assert len(ITEMS) >= 60
    assert sum(passes for *_, passes, _, _ in ITEMS) >= 20
    assert sum(not passes for *_, passes, _, _ in ITEMS) >= 40


@pytest.mark.slow
def test_no_false_accept_and_no_false_reject():
    require("bwrap")
    runner = TestRunner(Sandbox(SandboxPolicy(timeout_s=4)))
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda item: runner.run(item[3], item[4]), ITEMS))
    wrong = [
        f"{name} / {label}: labelled {'pass' if passes else 'fail'}, got {report.passed}/{report.total} "
        f"({report.reason}: {report.detail})"
        for (name, label, passes, _, _), report in zip(ITEMS, reports, strict=True)
        if report.all_passed != passes
    ]
    assert not wrong, "\n".join(wrong)
    # Every test file is strong enough for the guard too.
    weak = {name: runner.check_tests(spec["tests"]) for name, spec in PROBLEMS.items()}
    assert {name: g.detail for name, g in weak.items() if g.reason} == {}
