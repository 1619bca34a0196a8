"""Operator synthesis: plugins are tested in the real code sandbox before anything is installed."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from dataflow_cli.agent.synth import Synthesis, install, static_problems, vet, write_package

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="needs bubblewrap (make test installs it)"
)

GOOD_CODE = "import re\n\n\ndef check(value):\n    return len(re.findall(r'\\w+', value)) >= 3\n"
GOOD_TESTS = "assert check('one two three')\nassert not check('one two')\n\n\ndef test_empty():\n    assert not check('')\n"


def plugin(code: str, tests: str = GOOD_TESTS, kind: str = "filter") -> Synthesis:
    return Synthesis(
        name="min_words_filter",
        kind=kind,
        summary="Keep texts of at least three words.",
        input="text",
        code=code,
        tests=tests,
    )


def test_accepts_a_plugin_whose_tests_pass_and_installs_a_working_operator(tmp_path):
    made = vet(plugin(GOOD_CODE))
    assert made.accepted, made.reasons
    assert (made.tests_passed, made.tests_total) == (3, 3)
    assert made.isolation["network"] == "isolated"
    root = write_package(made, tmp_path / "plugins")
    assert (
        'min_words_filter = "min_words_filter_plugin.operator:MinWordsFilter"'
        in (root / "pyproject.toml").read_text()
    )
    target = tmp_path / "site"
    ok, output = install(root, target=target)
    assert ok, output
    sys.path.insert(0, str(target))
    try:
        import pyarrow as pa
        from min_words_filter_plugin.operator import MinWordsFilter  # type: ignore[import-not-found]

        from dataflow_cli.operator import Batch

        op = MinWordsFilter(MinWordsFilter.Params(), inputs={"text": "body"}, outputs={})
        verdict = op.filter(
            Batch(pa.table({"_id": ["0", "1"], "body": ["a b c d", "too short"]}), {"text": "body"})
        )
        assert list(verdict.keep) == [True, False]
        assert list(verdict.reason) == [None, "min_words_filter check failed"]
    finally:
        sys.path.remove(str(target))
        for name in [m for m in sys.modules if m.startswith("min_words_filter_plugin")]:
            del sys.modules[name]
    entry = next(target.glob("min_words_filter_plugin-*.dist-info")) / "entry_points.txt"
    assert "dataflow.operators" in entry.read_text()


def test_refuses_a_plugin_whose_tests_fail(tmp_path):
    wrong = "def check(value):\n    return len(value.split()) >= 4\n"
    made = vet(plugin(wrong))
    assert not made.accepted
    assert made.tests_passed < made.tests_total
    assert any("tests failed in the sandbox" in r for r in made.reasons)


def test_refuses_tests_a_trivial_stub_passes(tmp_path):
    made = vet(plugin(GOOD_CODE, tests="assert check('one two three') is not None\n"))
    assert not made.accepted
    assert any("too weak" in r for r in made.reasons)


def test_a_plugin_cannot_write_outside_its_scratch(tmp_path):
    target = tmp_path / "escaped.txt"
    code = f"def check(value):\n    with open({str(target)!r}, 'w') as f:\n        f.write('x')\n    return True\n"
    made = vet(plugin(code, tests="assert check('a b c')\nassert not check('a')\n"))
    assert not made.accepted
    assert not target.exists()
    assert made.tests_passed == 0  # the write failed inside the sandbox, not only the static check
    assert any("calls `open`" in r for r in made.reasons)


def test_a_plugin_has_no_network(tmp_path):
    code = (
        "import socket\n\n\ndef check(value):\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2).close()\n    return len(value) > 2\n"
    )
    made = vet(plugin(code, tests="assert check('abc')\nassert not check('a')\n"))
    assert not made.accepted
    assert made.tests_passed == 0
    assert any("imports `socket`" in r for r in made.reasons)


def test_a_plugin_cannot_read_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAFLOW_AGENT_TEST_SECRET", "s3cret")
    code = (
        "import os\n\n\ndef check(value):\n    return os.environ.get('DATAFLOW_AGENT_TEST_SECRET') == value\n"
    )
    made = vet(plugin(code, tests="assert check('s3cret')\nassert not check('guess')\n"))
    assert not made.accepted
    assert made.tests_passed == 1  # only the negative test: the secret is not in the sandbox
    assert any("imports `os`" in r for r in made.reasons)


def test_static_check_names_what_it_refuses():
    assert static_problems(GOOD_CODE, "check") == []
    problems = static_problems("import subprocess\ndef f(x):\n    return eval(x).__class__\n", "check")
    assert sorted(problems) == [
        "defines no `check` function",
        "line 1: imports `subprocess` (allowed: standard text/math modules only)",
        "line 3: calls `eval`",
        "line 3: uses `__class__`",
    ]
    assert json.dumps(problems)
