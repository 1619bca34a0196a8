"""Step 7: operator synthesis, when no installed operator fits a sub-goal.

The model writes two things only: a small stdlib-only module with one function (`check(value)
-> bool` for a filter, `measure(value)` for an evaluator) and unit tests for it. The agent
wraps the function in an operator class from a fixed template (so the plugin's contract with
the engine is not model-written), adds a `pyproject.toml` with the entry point, and:

1. checks the module statically: only allow-listed stdlib imports, no `open`/`exec`/`eval`/
   `__import__`/dunder attribute tricks (the code will later run in the user's process);
2. runs the tests in the code sandbox (`dataflow_cli.sandbox`: bubblewrap, no network, private
   scratch filesystem, no secrets in the environment, time and memory limits), with the verdict
   taken where the code under test never ran, and refuses tests a trivial stub passes;
3. writes the package beside the spec (the user sees the code) and installs it with
   `pip install --no-deps` only when both passed and the user agreed (`--yes` agrees).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.agent.model import ModelClient

ALLOWED_IMPORTS = frozenset(
    "re math string unicodedata json collections itertools functools statistics difflib html "
    "textwrap fractions decimal operator datetime hashlib typing dataclasses enum".split()
)
FORBIDDEN_CALLS = frozenset(
    "open exec eval compile __import__ globals locals vars getattr setattr delattr input breakpoint "
    "memoryview help exit quit".split()
)

SPEC_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,40}_(filter|evaluator)$"},
        "summary": {"type": "string", "minLength": 8, "maxLength": 160},
        "input": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "output": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "output_type": {"type": "string", "enum": ["int64", "float64", "string", "bool"]},
        "code": {"type": "string", "minLength": 10},
        "tests": {"type": "string", "minLength": 10},
    },
    "required": ["name", "summary", "input", "code", "tests"],
    "additionalProperties": False,
}


@dataclass
class Synthesis:
    name: str
    kind: str  # filter | evaluate
    summary: str
    input: str
    code: str
    tests: str
    output: str | None = None
    output_type: str = "float64"
    accepted: bool = False
    installed: bool = False
    reasons: list[str] = field(default_factory=list)  # why it was refused
    tests_passed: int = 0
    tests_total: int = 0
    package_dir: str | None = None
    isolation: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ask_plugin(goal_text: str, columns: str, model: ModelClient) -> Synthesis:
    prompt = (
        f"No installed operator can do this step: {goal_text}\n\nInput columns:\n{columns}\n\n"
        "Write a small Python module using only the standard library. For a filter, define "
        "`check(value)` returning True to keep the row; for an evaluator (name ending in _evaluator), "
        "define `measure(value)` returning the score. Write unit tests as plain `assert` statements or "
        "`test_*` functions calling the function directly (no import line). No files, network or "
        "environment variables. Answer in JSON with name, summary (imperative, ends with '.'), input "
        "(the column), output and output_type (evaluators), code, tests."
    )
    answer = model.ask("operator synthesis", prompt, SPEC_SCHEMA, max_tokens=1500)
    kind = "filter" if answer["name"].endswith("_filter") else "evaluate"
    return Synthesis(
        name=answer["name"],
        kind=kind,
        summary=answer["summary"],
        input=answer["input"],
        code=answer["code"],
        tests=answer["tests"],
        output=answer.get("output") or ("score" if kind == "evaluate" else None),
        output_type=answer.get("output_type") or "float64",
    )


def static_problems(code: str, function: str) -> list[str]:
    """Why this module must not be installed (empty: nothing found)."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"syntax error: {exc.msg} (line {exc.lineno})"]
    problems = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        for name in names:
            if name not in ALLOWED_IMPORTS:
                problems.append(f"line {line}: imports `{name}` (allowed: standard text/math modules only)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            problems.append(f"line {line}: calls `{node.func.id}`")
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            problems.append(f"line {line}: uses `{node.attr}`")
        if isinstance(node, ast.Name) and node.id in ("__builtins__", "__loader__", "__spec__"):
            problems.append(f"line {line}: uses `{node.id}`")
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if function not in defined:
        problems.append(f"defines no `{function}` function")
    return list(dict.fromkeys(problems))


def test_in_sandbox(synthesis: Synthesis) -> None:
    """Run the tests in the code sandbox and fill in the verdict (never raises for bad code)."""
    from dataflow_cli.sandbox.process import Sandbox, SandboxError, SandboxPolicy
    from dataflow_cli.sandbox.verify import TestRunner

    try:
        sandbox = Sandbox(SandboxPolicy(timeout_s=20, memory_mb=512, processes=8))
    except SandboxError as exc:
        synthesis.reasons.append(f"no sandbox to test it in: {exc.reason}")
        return
    synthesis.isolation = sandbox.isolation.as_dict()
    runner = TestRunner(sandbox)
    report = runner.run(synthesis.code, synthesis.tests)
    synthesis.tests_passed, synthesis.tests_total = report.passed, report.total
    if not report.all_passed:
        synthesis.reasons.append(
            f"tests failed in the sandbox: {report.passed}/{report.total} passed"
            + (f" ({report.detail or report.reason})" if report.reason else "")
        )
        return
    guard = runner.check_tests(synthesis.tests)
    if guard.reason:
        synthesis.reasons.append(
            f"tests refused: {guard.reason}" + (f" ({guard.detail})" if guard.detail else "")
        )


def vet(synthesis: Synthesis) -> Synthesis:
    """Static check, then the sandboxed tests; `accepted` only when both pass."""
    function = "check" if synthesis.kind == "filter" else "measure"
    problems = static_problems(synthesis.code, function)
    if problems:
        synthesis.reasons.append("unsafe or unusable code: " + "; ".join(problems))
    # The tests run even when the static check refused the code: the trace then shows what the
    # sandbox did with it (and the sandbox, not the static check, is what holds untrusted code).
    test_in_sandbox(synthesis)
    synthesis.accepted = not synthesis.reasons
    return synthesis


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def write_package(synthesis: Synthesis, folder: Path) -> Path:
    """The plugin package under `folder/<dist>/`: pyproject, logic module, operator, tests."""
    package = synthesis.name + "_plugin"
    dist = package.replace("_", "-")
    root = folder / dist
    (root / package).mkdir(parents=True, exist_ok=True)
    (root / "tests").mkdir(exist_ok=True)
    cls = _class_name(synthesis.name)
    (root / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1.0"
description = "{synthesis.summary.replace('"', "'")} (written by `dataflow agent`)"
requires-python = ">=3.10"
dependencies = ["dataflow-cli"]

[project.entry-points."dataflow.operators"]
{synthesis.name} = "{package}.operator:{cls}"

[tool.hatch.build.targets.wheel]
packages = ["{package}"]
""",
        encoding="utf-8",
    )
    (root / package / "__init__.py").write_text(f'"""{synthesis.summary}"""\n', encoding="utf-8")
    (root / package / "logic.py").write_text(
        f'"""Model-written by `dataflow agent`; tested in the sandbox before install."""\n\n{synthesis.code.strip()}\n',
        encoding="utf-8",
    )
    (root / package / "operator.py").write_text(_operator_source(synthesis, cls), encoding="utf-8")
    (root / "tests" / f"test_{synthesis.name}.py").write_text(
        f"from {package}.logic import *  # noqa: F403\n\n{synthesis.tests.strip()}\n", encoding="utf-8"
    )
    synthesis.package_dir = str(root)
    return root


def _operator_source(s: Synthesis, cls: str) -> str:
    summary = s.summary.strip().rstrip(".") + "."
    if s.kind == "filter":
        return f'''"""The operator around the tested `check` function (written from a fixed template)."""

from dataflow_cli.operator import Filter, Port, Verdict

from .logic import check


class {cls}(Filter):
    """{summary}

    Inputs:
        {s.input}: the column to check.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        (none)
    """

    name = "{s.name}"
    inputs = {{"{s.input}": Port("the column to check")}}

    def filter(self, batch):
        keep = [v is not None and bool(check(v)) for v in batch.column("{s.input}").to_pylist()]
        return Verdict(keep, [None if k else "{s.name} check failed" for k in keep])
'''
    return f'''"""The operator around the tested `measure` function (written from a fixed template)."""

from dataflow_cli.operator import Evaluator, Port

from .logic import measure


class {cls}(Evaluator):
    """{summary}

    Inputs:
        {s.input}: the column to measure.
    Outputs:
        {s.output}: the measured value.
    Params:
        (none)
    """

    name = "{s.name}"
    inputs = {{"{s.input}": Port("the column to measure")}}
    outputs = {{"{s.output}": Port("the measured value", "{s.output_type}")}}

    def evaluate(self, batch):
        return {{"{s.output}": [None if v is None else measure(v) for v in batch.column("{s.input}").to_pylist()]}}
'''


def install(package_dir: Path, target: Path | None = None) -> tuple[bool, str]:
    """`pip install --no-deps` into this environment (or into `target`, a folder, for tests);
    then the registry sees the new operator."""
    where = ["--target", str(target)] if target is not None else []
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            *where,
            str(package_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        return False, (result.stderr or result.stdout)[-800:]
    refresh_registry()
    return True, ""


def refresh_registry() -> None:
    """Forget what this process knows of the installed operators (a plugin was just added)."""
    import importlib

    from dataflow_cli import registry
    from dataflow_cli.agent.draft import operators

    importlib.invalidate_caches()
    registry.entries.cache_clear()
    registry.load.cache_clear()
    operators.cache_clear()
