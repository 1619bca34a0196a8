"""Run each row's code against its tests in the sandbox, with a verdict the code cannot forge."""

from __future__ import annotations

import json

import pyarrow as pa

from dataflow_cli.operator import Batch, Evaluator, Partial, Port
from dataflow_operators.code._sandbox import SandboxParams, SandboxUser, run_all


class CodeTestExecutionEvaluator(SandboxUser, Evaluator):
    """Run each row's code against its tests in the sandbox and count the tests that pass.

    The tests are Python: `assert` lines (one test each), `test_*` functions or `Test*` classes
    (unittest or pytest style; `pytest.raises` and `pytest.approx` work, the standard library is
    all there is). The code runs in a fresh sandboxed process (see `dataflow_cli.sandbox`) with
    the tests' expected values stripped; each call to it is recorded as plain data; the original
    tests then run in another fresh process where every call is answered from that record. The
    verdict is taken there, where the code never ran: exiting early with status 0, printing
    "PASSED", patching `unittest` or `AssertionError`, returning an object that equals anything
    or reading the expected value from the caller all fail. A test passes when it finishes and ran
    at least one check. Functions must return plain data (numbers, strings, bytes, lists, tuples,
    dicts, sets, generators of those); other objects cannot be checked.

    Every row gets its counts and per-test outcomes; a failure is named ("assertion failed",
    "timeout (10 s)", "memory limit", "output limit (256 KiB)", "solution raised ValueError",
    "solution exited before the tests ended", "solution syntax error", "tests syntax error").
    Rows with null code or tests go to rejects. The run stats record the sandbox policy and the
    isolation in force on this machine.

    Inputs:
        code: the solution (Python source).
        tests: the tests (Python source).
    Outputs:
        tests_passed: tests that passed.
        tests_total: tests found (0 if the tests could not be read).
        test_results: JSON list of {name, passed, reason, detail, time_s} per test.
        test_failure: the first failure's reason (null when every test passed).
        exec_time_s: wall-clock seconds of the code's run.
        peak_memory_mb: peak resident memory of the code's run, in MiB.
        stderr_excerpt: the end of what the code wrote to stderr.
    Params:
        sandbox: limits and isolation of every run: `timeout_s` (10), `cpu_s`, `memory_mb` (1024),
            `max_output_kb` (256), `processes` (32), `file_size_mb` (16), `open_files` (64),
            `disk_mb` (64), `network` (`off`: no network or the stage fails; `best_effort`),
            `filesystem` (`isolated`: needs bubblewrap, or the stage fails; `best_effort`).
    """

    name = "code_test_execution_evaluator"
    inputs = {"code": Port("the solution (Python source)"), "tests": Port("the tests (Python source)")}
    outputs = {
        "tests_passed": Port("tests that passed", "int64"),
        "tests_total": Port("tests found", "int64"),
        "test_results": Port("JSON list of per-test outcomes"),
        "test_failure": Port("the first failure's reason (null when all passed)"),
        "exec_time_s": Port("wall-clock seconds of the code's run", "float64"),
        "peak_memory_mb": Port("peak resident memory of the code's run (MiB)", "float64"),
        "stderr_excerpt": Port("the end of the code's stderr"),
    }
    Params = SandboxParams

    def evaluate(self, batch: Batch) -> dict | Partial:
        rows = list(zip(batch.values("code"), batch.values("tests"), strict=True))
        runnable = [i for i, (code, tests) in enumerate(rows) if code is not None and tests is not None]
        reports = dict(zip(runnable, run_all(lambda i: self.runner.run(*rows[i]), runnable), strict=True))
        columns: dict[str, list] = {name: [] for name in self.outputs}
        failed = []
        for i, (code, _tests) in enumerate(rows):
            report = reports.get(i)
            failed.append(None if report else f"null `{'code' if code is None else 'tests'}`")
            values = (
                {
                    "tests_passed": report.passed,
                    "tests_total": report.total,
                    "test_results": json.dumps([o.as_dict() for o in report.outcomes], ensure_ascii=False),
                    "test_failure": report.reason,
                    "exec_time_s": report.time_s,
                    "peak_memory_mb": report.peak_memory_mb,
                    "stderr_excerpt": report.stderr or None,
                }
                if report
                else {}
            )
            for name, column in columns.items():
                column.append(values.get(name))
        result = {
            name: pa.array(values, pa.type_for_alias(self.outputs[name].type))
            for name, values in columns.items()
        }
        return Partial(result, failed) if any(failed) else result
