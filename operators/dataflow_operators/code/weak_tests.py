"""Drop rows whose tests would accept a trivially wrong solution."""

from __future__ import annotations

import pyarrow as pa

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators.code._sandbox import SandboxParams, SandboxUser, run_all


class CodeWeakTestFilter(SandboxUser, Filter):
    """Drop rows whose tests pass a trivially wrong stub or cannot be run at all.

    The tests run in the sandbox (no solution needed) against stubs standing in for every
    function they call: one that returns None, one that raises, one that returns its first
    argument, and ones that return a constant (0, 1, -1, True, False, "", [], {}). A suite that
    one of them passes entirely would accept a wrong solution: the row is dropped with reason
    "tests too weak" and the stub as detail ("a stub that returns None passes them"). Tests that
    cannot be read are dropped too ("tests syntax error", "no tests", "tests call no function
    under test"). A null `tests` value is rejected.

    Inputs:
        tests: the tests (Python source).
    Outputs:
        (none: rows are kept or dropped)
    Params:
        sandbox: limits and isolation of every run: `timeout_s` (10), `cpu_s`, `memory_mb` (1024),
            `max_output_kb` (256), `processes` (32), `file_size_mb` (16), `open_files` (64),
            `disk_mb` (64), `network` (`off`: no network or the stage fails; `best_effort`),
            `filesystem` (`isolated`: needs bubblewrap, or the stage fails; `best_effort`).
    """

    name = "code_weak_test_filter"
    inputs = {"tests": Port("the tests (Python source)")}
    Params = SandboxParams

    def filter(self, batch: Batch) -> Verdict:
        tests = batch.values("tests")
        results = run_all(lambda t: self.runner.check_tests(t) if t is not None else None, tests)
        keep, reason, detail = [], [], []
        for result in results:
            if result is None:
                keep.append(False), reason.append("null `tests`"), detail.append(None)
            else:
                keep.append(result.reason is None), reason.append(result.reason), detail.append(result.detail)
        return Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))
