"""Keep rows whose tests pass at a required rate."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Filter, NoParams, Port, Verdict


class CodeTestPassFilter(Filter):
    """Keep rows whose code passed at least `min_pass_rate` of its tests.

    Reads the counts written by `code_test_execution_evaluator`. A dropped row says why: "no
    tests" (fewer than `min_tests` tests ran) or "pass rate < 1" with the counts as detail
    ("3/5 tests passed").

    Inputs:
        passed: tests that passed.
        total: tests found.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min_pass_rate: lowest fraction of tests that must pass (default 1: all of them).
        min_tests: fewest tests a row must have.
    """

    name = "code_test_pass_filter"
    inputs = {"passed": Port("tests that passed"), "total": Port("tests found")}

    class Params(NoParams):
        min_pass_rate: float = Field(1.0, ge=0, le=1, description="Lowest fraction of tests that must pass.")
        min_tests: int = Field(1, ge=1, description="Fewest tests a row must have.")

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        keep, reason, detail = [], [], []
        for passed, total in zip(batch.values("passed"), batch.values("total"), strict=True):
            passed, total = passed or 0, total or 0
            if total < p.min_tests:
                keep.append(False), reason.append("no tests"), detail.append(f"{total} tests")
            elif passed < p.min_pass_rate * total:
                keep.append(False), reason.append(f"pass rate < {p.min_pass_rate:g}")
                detail.append(f"{passed}/{total} tests passed")
            else:
                keep.append(True), reason.append(None), detail.append(None)
        return Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))
