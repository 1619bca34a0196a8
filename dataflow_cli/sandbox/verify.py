"""Run a solution against its tests so that the solution cannot forge the verdict.

A solution and the tests that call it must share a process, so whatever that process reports
can be forged by the solution (it can exit early with status 0, print "PASSED", patch
`unittest` or `AssertionError`, return an object whose `__eq__` is always true, or read the
expected values out of the caller's frame). So no verdict is taken from it:

1. **Record** (sandboxed, the solution's process): the tests run with every check reduced to the
   calls it makes (`testplan.py`: literal expected values are not in this process), each call to
   the solution is logged with its arguments and what it returned, as plain data (`_codec.py`:
   no object of the solution's survives), or the kind of exception it raised.
2. **Judge** (sandboxed, a fresh process that never runs solution code): the original tests run
   with each solution function replaced by a replay of the logged calls. Its per-test outcome
   is the verdict: a test passes when it completes and ran at least one check.

Whatever the solution writes into the log is only "what my functions returned", which an honest
solution can do too; a call that is missing from the log (the solution exited, timed out, ran
out of memory, flooded its output) fails its test with the reason the record run ended.

`TestRunner.check_tests` is the test-quality guard: it runs the tests in the judge against
trivially wrong stubs (returns None, raises, returns its input, returns a constant) and names
the first stub that passes every test: such a suite would accept a wrong solution.
"""

from __future__ import annotations

import json
import marshal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.sandbox.process import Sandbox
from dataflow_cli.sandbox.testplan import TestPlan, TestsInvalid, bound_names, build_plan

_HERE = Path(__file__).parent
_PROGRAMS: dict[str, str] = {}


def _program(entry: str) -> str:
    if entry not in _PROGRAMS:
        parts = [(_HERE / name).read_text(encoding="utf-8") for name in ("_codec.py", "_harness.py")]
        _PROGRAMS[entry] = "\n\n".join(parts) + f"\n\n{entry}()\n"
    return _PROGRAMS[entry]


@dataclass
class TestOutcome:
    __test__ = False  # a library class, not a pytest test class
    name: str
    passed: bool
    reason: str | None = None
    detail: str | None = None
    time_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class TestReport:
    __test__ = False  # a library class, not a pytest test class
    outcomes: list[TestOutcome] = field(default_factory=list)
    reason: str | None = None  # the first failure's reason; None when every test passed
    detail: str | None = None
    time_s: float | None = None  # wall time of the solution's run
    peak_memory_mb: float | None = None
    stderr: str = ""  # the end of the solution's stderr

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def all_passed(self) -> bool:
        return bool(self.outcomes) and self.passed == self.total


@dataclass
class GuardResult:
    weak_stub: str | None = None  # a trivially wrong stub that passes every test
    reason: str | None = None  # why the tests cannot be used (None: they are strong enough)
    detail: str | None = None


def _events(channel: bytes, limit: int = 1_000_000) -> list[dict[str, Any]]:
    events = []
    for line in channel.decode("utf-8", "replace").splitlines()[:limit]:
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # whatever the solution's process wrote: no answer
            continue
        if isinstance(event, dict) and isinstance(event.get("ev"), str):
            events.append(event)
    return events


class TestRunner:
    """Runs solutions against tests in a sandbox (thread-safe)."""

    __test__ = False  # a library class, not a pytest test class

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    def run(self, solution: str, tests: str) -> TestReport:
        try:
            plan = build_plan(tests)
        except TestsInvalid as exc:
            return TestReport(reason=exc.reason, detail=exc.detail)
        try:
            names = bound_names(solution)
        except (SyntaxError, ValueError) as exc:
            return self._all_failed(plan, "solution syntax error", str(exc))
        candidates = sorted(names & plan.identifiers)
        record_plan = {"candidates": candidates, "steps": plan.record_steps}
        record = self.sandbox.run_python(
            _program("record_main"),
            files={"solution.py": solution, "plan.bin": marshal.dumps(record_plan)},
            filename="harness.py",
            channel=True,
            trusted_program=True,
        )
        events = _events(record.channel)
        report = TestReport(
            time_s=round(record.wall_s, 4),
            peak_memory_mb=round(record.peak_memory_mb, 1) if record.peak_memory_mb is not None else None,
            stderr=record.excerpt(),
        )
        load_error = next((e for e in events if e["ev"] == "load_error"), None)
        if load_error is not None:
            kind = _exception_name(load_error.get("exc"))
            message = str((load_error.get("exc") or {}).get("msg", ""))[:300]
            return self._all_failed(plan, f"solution raised {kind} on load", message, report)
        if not any(e["ev"] == "names" for e in events):
            why = record.reason or "solution exited before the tests ran"
            return self._all_failed(plan, why, record.excerpt(300), report)
        done = any(e["ev"] == "done" for e in events)
        started = [int(e["s"]) for e in events if e["ev"] == "step" and isinstance(e.get("s"), int)]
        last = max(started, default=-1)
        cut_short = record.reason or "solution exited before the tests ended"
        times = {e["s"]: e.get("t") for e in events if e["ev"] == "end" and isinstance(e.get("s"), int)}

        judge_plan = {"mode": "replay", "steps": plan.judge_steps, "tests": plan.tests, "records": events}
        judge = self.sandbox.run_python(
            _program("judge_main"),
            files={"plan.bin": _marshal(judge_plan)},
            filename="harness.py",
            channel=True,
            trusted_program=True,
        )
        results = {e.get("s"): e for e in _events(judge.channel) if e["ev"] == "result"}
        for step, name in zip(plan.tests, plan.names, strict=True):
            result = results.get(step)
            elapsed = times.get(step)
            outcome = TestOutcome(
                name, False, time_s=round(elapsed, 4) if isinstance(elapsed, float) else None
            )
            if result is None:
                outcome.reason = f"tests {judge.reason or 'ended early'}"
                outcome.detail = judge.excerpt(300) or None
            elif result.get("passed") is True:
                outcome.passed = True
            else:
                outcome.reason = str(result.get("reason") or "failed")[:100]
                outcome.detail = str(result.get("detail") or "")[:300] or None
                if outcome.reason == "unrecorded":
                    # The call never reached the record: the record run ended first, or the
                    # tests took another path when replayed (they are not deterministic).
                    ended_here = not (record.ok and done) and step >= last
                    outcome.reason = cut_short if ended_here else "replay mismatch"
                    outcome.detail = f"no recorded result for a call to `{outcome.detail}`"
            report.outcomes.append(outcome)
        first = next((o for o in report.outcomes if not o.passed), None)
        if first is not None:
            report.reason, report.detail = first.reason, f"{first.name}: {first.detail or first.reason}"
        return report

    def check_tests(self, tests: str) -> GuardResult:
        """Whether the tests can tell a wrong solution: the first trivial stub they accept."""

        try:
            plan = build_plan(tests)
        except TestsInvalid as exc:
            return GuardResult(reason=exc.reason, detail=exc.detail)
        if not plan.free_names:
            return GuardResult(reason="tests call no function under test")
        return self._stubs(plan)

    def _stubs(self, plan: TestPlan) -> GuardResult:
        stub_plan = {
            "mode": "stubs",
            "steps": plan.judge_steps,
            "tests": plan.tests,
            "candidates": plan.free_names,
        }
        judge = self.sandbox.run_python(
            _program("judge_main"),
            files={"plan.bin": marshal.dumps(stub_plan)},
            filename="harness.py",
            channel=True,
            trusted_program=True,
        )
        stubs = [e for e in _events(judge.channel) if e["ev"] == "stub"]
        for event in stubs:
            results = event.get("results")
            if (
                isinstance(results, list)
                and len(results) == len(plan.tests)
                and all(isinstance(r, dict) and r.get("passed") is True for r in results)
            ):
                stub = str(event.get("stub"))
                return GuardResult(
                    weak_stub=stub, reason="tests too weak", detail=f"a stub that {stub} passes them"
                )
        if not stubs and not judge.ok:
            return GuardResult(reason=f"tests {judge.reason}", detail=judge.excerpt(300) or None)
        return GuardResult()

    @staticmethod
    def _all_failed(plan: TestPlan, reason: str, detail: str, report: TestReport | None = None) -> TestReport:
        report = report or TestReport()
        report.outcomes = [TestOutcome(name, False, reason) for name in plan.names]
        report.reason, report.detail = reason, detail or None
        return report


def _marshal(plan: dict[str, Any]) -> bytes:
    try:
        return marshal.dumps(plan)
    except ValueError:  # JSON nested deeper than marshal allows: such records are no answer
        return marshal.dumps({**plan, "records": [e for e in plan["records"] if e["ev"] != "call"]})


def _exception_name(info: Any) -> str:
    if isinstance(info, dict) and isinstance(info.get("mro"), list) and info["mro"]:
        return str(info["mro"][0])[:60]
    return "an exception"
