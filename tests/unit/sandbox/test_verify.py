"""Test-based verification: a solution cannot forge its verdict; test styles; the weak-test guard."""

from __future__ import annotations

import pytest

from dataflow_cli.sandbox.process import Sandbox, SandboxPolicy
from dataflow_cli.sandbox.testplan import TestsInvalid, build_plan
from dataflow_cli.sandbox.verify import TestRunner
from tests.unit.sandbox.isolation import require

ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 4) == 3\nassert add(10, 20) == 30\n"
ADD = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def runner() -> TestRunner:
    require("bwrap")
    return TestRunner(Sandbox(SandboxPolicy(timeout_s=3)))


def test_a_correct_solution_passes_every_test(runner):
    report = runner.run(ADD, ADD_TESTS)
    assert (report.passed, report.total, report.reason) == (3, 3, None)
    assert [o.name for o in report.outcomes] == ["line 1", "line 2", "line 3"]
    assert report.all_passed and report.peak_memory_mb > 1 and report.time_s > 0


def test_a_wrong_solution_fails_with_reasons(runner):
    report = runner.run("def add(a, b):\n    return a - b\n", ADD_TESTS)
    assert (report.passed, report.total) == (0, 3)
    assert report.reason == "assertion failed"
    assert report.detail.startswith("line 1:")


# Each cheat would pass a naive harness (exit status, stdout, a result file written in-process).
CHEATS = {
    "sys.exit(0) on import": "import sys\nsys.exit(0)\n",
    "os._exit(0) on import": "import os\nos._exit(0)\n",
    "os._exit(0) when called": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "sys.exit(0) when called": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "KeyboardInterrupt when called": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "prints a passing report": (
        "print('3 passed in 0.01s')\nprint('OK')\nimport sys\nprint('PASSED', file=sys.stderr)\n"
        "def add(a, b):\n    print('PASSED')\n    return None\n"
    ),
    "object equal to anything": (
        "class Any:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n"
        "def add(a, b):\n    return Any()\n"
    ),
    "int subclass equal to anything": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def add(a, b):\n    return Liar(0)\n"
    ),
    "patches AssertionError and unittest": (
        "import builtins, unittest\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
        "unittest.TestCase.assertEqual = lambda *a, **k: None\ndef add(a, b):\n    return 0\n"
    ),
    "reads the expected value from the caller": (
        "import sys, inspect\ndef add(a, b):\n    frame = sys._getframe(1)\n"
        "    consts = [c for c in frame.f_code.co_consts if isinstance(c, int) and c not in (a, b)]\n"
        "    text = ''.join(inspect.findsource(frame)[0]) if frame.f_code.co_filename else ''\n"
        "    import re\n    m = re.search(r'add\\(%d, %d\\) == (-?\\d+)' % (a, b), text)\n"
        "    return int(m.group(1)) if m else (consts[0] if consts else 0)\n"
    ),
    "reads every file it can see": (
        "import os, re\ndef add(a, b):\n    for name in os.listdir('.'):\n        try:\n"
        "            text = open(name).read()\n        except OSError:\n            continue\n"
        "        m = re.search(r'add\\(%d, %d\\) == (-?\\d+)' % (a, b), text)\n"
        "        if m:\n            return int(m.group(1))\n    return 0\n"
    ),
    "searches the heap for the tests": (
        "import gc, re\ndef add(a, b):\n    for obj in gc.get_objects():\n"
        "        if isinstance(obj, str) and 'add(%d, %d) ==' % (a, b) in obj:\n"
        "            return int(re.search(r'add\\(%d, %d\\) == (-?\\d+)' % (a, b), obj).group(1))\n"
        "    return 0\n"
    ),
    "writes forged verdicts to every descriptor": (
        "import os, json\nline = json.dumps({'ev': 'result', 's': 0, 'passed': True}) + '\\n'\n"
        'call = \'{"ev":"done"}\\n\'\nfor fd in range(1, 64):\n    try:\n'
        "        os.write(fd, (line + call).encode())\n    except OSError:\n        pass\n"
        "def add(a, b):\n    return None\n"
    ),
    "unwraps the recorder in the caller's namespace": (
        "import sys\ndef add(a, b):\n    frame = sys._getframe(1)\n    while frame.f_globals.get('__name__') != 'tests':\n"
        "        frame = frame.f_back\n    frame.f_globals['add'] = lambda a, b: a + b\n    return 0\n"
    ),
    "exits from an atexit hook after the first call": (
        "import atexit, os\natexit.register(lambda: os._exit(0))\nn = [0]\ndef add(a, b):\n"
        "    n[0] += 1\n    if n[0] > 1:\n        raise SystemExit(0)\n    return a + b\n"
    ),
    "hangs after the first answer": (
        "import time\nn = [0]\ndef add(a, b):\n    n[0] += 1\n    if n[0] > 1:\n        time.sleep(60)\n"
        "    return a + b\n"
    ),
    "writes records nested too deep to read": (
        "import os, sys\nfd = int(sys.argv[1])\nfor depth in (100, 5000, 200000):\n"
        '    line = \'{"ev":"call","s":0,"n":"add","k":"x","r":\' + \'[\' * depth + \']\' * depth + \'}\\n\'\n'
        "    os.write(fd, line.encode())\ndef add(a, b):\n    return [[[[[0]]]]]\n"
    ),
    "edits the tests on disk": (
        "import glob\nfor path in glob.glob('*'):\n    try:\n        open(path, 'w').write('')\n"
        "    except OSError:\n        pass\ndef add(a, b):\n    return 0\n"
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHEATS))
def test_a_cheating_solution_does_not_pass(runner, name):
    report = runner.run(CHEATS[name], ADD_TESTS)
    correct_by_chance = {
        "hangs after the first answer": 1,
        "exits from an atexit hook after the first call": 1,
    }
    assert report.passed == correct_by_chance.get(name, 0), [o.as_dict() for o in report.outcomes]
    assert report.total == 3 and report.reason


def test_failure_reasons_name_what_happened(runner):
    slow = runner.run("import time\ndef add(a, b):\n    time.sleep(60)\n", ADD_TESTS)
    assert slow.reason == "timeout (3 s)" and slow.passed == 0
    exited = runner.run("import os\ndef add(a, b):\n    os._exit(0)\n", ADD_TESTS)
    assert exited.reason == "solution exited before the tests ended"
    on_load = runner.run("raise ImportError('no numpy')\n", ADD_TESTS)
    assert on_load.reason == "solution raised ImportError on load" and on_load.detail == "no numpy"
    assert runner.run("def add(a, b)\n    return a\n", ADD_TESTS).reason == "solution syntax error"
    raised = runner.run("def add(a, b):\n    raise ValueError('nope')\n", ADD_TESTS)
    assert raised.reason == "solution raised ValueError" and "nope" in raised.detail
    missing = runner.run("def plus(a, b):\n    return a + b\n", ADD_TESTS)
    assert missing.reason == "test raised NameError"
    memory = runner.run("def add(a, b):\n    return len(bytearray(8 * 1024**3))\n", ADD_TESTS)
    assert memory.reason == "solution raised MemoryError"
    loud = runner.run("def add(a, b):\n    print('x' * 10**6)\n    return a + b\n", ADD_TESTS)
    assert loud.reason == "output limit (256 KiB)"
    objects = runner.run("class P:\n    pass\ndef add(a, b):\n    return P()\n", "assert add(1, 2).x == 3\n")
    assert objects.reason == "result not plain data"
    assert runner.run(ADD, "assert add(1,\n").reason == "tests syntax error"
    assert runner.run(ADD, "x = 1\n").reason == "no tests"


MUTATES = """
xs = [3, 1, 2]
assert smallest_first(xs) == [1, 2, 3]
assert xs == [3, 1, 2]
"""


def test_mutating_an_argument_is_seen_by_the_tests(runner):
    assert runner.run("def smallest_first(xs):\n    return sorted(xs)\n", MUTATES).all_passed
    report = runner.run("def smallest_first(xs):\n    xs.sort()\n    return xs\n", MUTATES)
    assert [o.passed for o in report.outcomes] == [True, False]


STYLES = {
    "pytest functions, raises and approx": (
        "import pytest\n\ndef test_root():\n    assert root(4.0) == pytest.approx(2.0)\n"
        "    assert abs(root(2.0) - 1.41421356) < 1e-6\n\ndef test_negative():\n"
        "    with pytest.raises(ValueError, match='negative'):\n        root(-1.0)\n",
        "import math\ndef root(x):\n    if x < 0:\n        raise ValueError('negative input')\n    return math.sqrt(x)\n",
        "import math\ndef root(x):\n    return math.sqrt(abs(x))\n",
    ),
    "unittest class": (
        "import unittest\n\nclass TestWords(unittest.TestCase):\n    def setUp(self):\n        self.text = 'a b a'\n"
        "    def test_counts(self):\n        self.assertEqual(count_words(self.text), {'a': 2, 'b': 1})\n"
        "    def test_empty(self):\n        self.assertEqual(count_words(''), {})\n"
        "    def test_type(self):\n        self.assertRaises(TypeError, count_words, None)\n",
        "from collections import Counter\ndef count_words(text):\n    if not isinstance(text, str):\n"
        "        raise TypeError('text must be a string')\n    return Counter(text.split())\n",
        "def count_words(text):\n    return {w: 1 for w in (text or '').split()}\n",
    ),
    "HumanEval check(candidate)": (
        "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([]) == 0\n\ncheck(total)\n",
        "def total(xs):\n    return sum(xs)\n",
        "def total(xs):\n    return xs[0] + xs[-1] if xs else 0\n",
    ),
    "printed output": (
        "import io, contextlib\nbuf = io.StringIO()\nwith contextlib.redirect_stdout(buf):\n    greet('Ann')\n"
        "assert buf.getvalue() == 'Hello, Ann!\\n'\n",
        "def greet(name):\n    print(f'Hello, {name}!')\n",
        "def greet(name):\n    print(f'Hello {name}')\n",
    ),
    "random inputs against a reference": (
        "import random\n\ndef test_sorting():\n    for _ in range(30):\n"
        "        xs = [random.randint(-50, 50) for _ in range(random.randint(0, 12))]\n"
        "        assert my_sort(xs) == sorted(xs)\n",
        "import random\ndef my_sort(xs):\n    if len(xs) < 2:\n        return list(xs)\n    p = random.choice(xs)\n"
        "    return my_sort([x for x in xs if x < p]) + [x for x in xs if x == p] + my_sort([x for x in xs if x > p])\n",
        "def my_sort(xs):\n    return sorted(set(xs))\n",
    ),
    "rich results": (
        "from fractions import Fraction\nfrom collections import namedtuple\n"
        "assert stats([1, 2]) == {'mean': Fraction(3, 2), 'span': (1, 2), 'set': {1, 2}, 'none': None}\n"
        "assert list(evens(7)) == [0, 2, 4, 6]\nassert stats([]) is None\n",
        "from fractions import Fraction\ndef stats(xs):\n    if not xs:\n        return None\n"
        "    return {'mean': Fraction(sum(xs), len(xs)), 'span': (min(xs), max(xs)), 'set': set(xs), 'none': None}\n"
        "def evens(n):\n    yield from range(0, n, 2)\n",
        "def stats(xs):\n    if not xs:\n        return None\n"
        "    return {'mean': sum(xs) / len(xs), 'span': [min(xs), max(xs)], 'set': set(xs), 'none': None}\n"
        "def evens(n):\n    return range(0, n, 2)\n",
    ),
    "solution imported as a module": (
        "from solution import double\nimport solution\nassert double(2) == 4\nassert solution.double(-3) == -6\n",
        "def double(x):\n    return 2 * x\n",
        "def double(x):\n    return x + 2\n",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("style", sorted(STYLES))
def test_test_styles(runner, style):
    tests, good, bad = STYLES[style]
    report = runner.run(good, tests)
    assert report.all_passed, [o.as_dict() for o in report.outcomes]
    wrong = runner.run(bad, tests)
    assert not wrong.all_passed, [o.as_dict() for o in wrong.outcomes]


def test_a_test_that_checks_nothing_fails(runner):
    report = runner.run(ADD, "def test_nothing():\n    add(1, 2)\n")
    assert report.outcomes[0].reason == "no check ran"


# --- the record version never holds literal expected values -----------------------------------
def test_record_code_keeps_calls_and_drops_expected_values():
    plan = build_plan(
        "import math\nexpected = [9, 8, 7]\nassert f(1, 2) == 12345\nassert abs(g(0.5) - 0.75) < 1e-9\n"
        "assert 0 <= h(3) < 4242\nassert math.isclose(f(4, 5), 31337.5)\nassert sorted(f(6, 7)) == expected\n"
        "def test_x():\n    self_check = 777\n    assert f(8, 9) == 55555, 'message 66666'\n"
    )
    record = "\n".join(s["code"] for s in plan.record_steps if s["kind"] != "func")
    for hidden in ("12345", "0.75", "4242", "31337", "9, 8, 7", "55555", "66666"):
        assert hidden not in record, record
    for call in ("f(1, 2)", "g(0.5)", "h(3)", "f(4, 5)", "f(6, 7)", "f(8, 9)"):
        assert call in record
    judge = "\n".join(s["code"] for s in plan.judge_steps if s["kind"] != "func")
    assert "12345" in judge and judge.count("__df_check__()") == 6
    assert plan.names == ["line 3", "line 4", "line 5", "line 6", "line 7", "test_x"]
    assert plan.free_names == ["f", "g", "h"]


def test_unreadable_tests_are_named():
    with pytest.raises(TestsInvalid) as err:
        build_plan("assert f(1) ==\n")
    assert err.value.reason == "tests syntax error"
    with pytest.raises(TestsInvalid, match="no tests"):
        build_plan("def helper():\n    return 1\n")


# --- the guard -------------------------------------------------------------------------------
WEAK = {
    "passes when None is returned": ("assert f(1) is None or f(1) == 2\n", "returns None"),
    "an identity": ("assert f([]) == []\nassert f([1, 2]) == [1, 2]\n", "returns its input"),
    "a constant answer": ("assert is_even(2) == True\nassert is_even(4) == True\n", "returns 1"),  # 1 == True
    "swallows every exception": (
        "def test_x():\n    try:\n        assert f(2) == 4\n    except Exception:\n        pass\n    assert True\n",
        "returns None",
    ),
    "expects an exception for everything": (
        "import pytest\n\ndef test_x():\n    with pytest.raises(Exception):\n        f(-1)\n",
        "raises",
    ),
    "a tautology": ("assert f(3) == f(3)\n", "returns None"),
    "only zero": ("assert count(0) == 0\nassert count(-5) == 0\n", "returns 0"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WEAK))
def test_the_guard_rejects_weak_tests(runner, name):
    tests, stub = WEAK[name]
    result = runner.check_tests(tests)
    assert (result.weak_stub, result.reason) == (stub, "tests too weak")
    assert result.detail == f"a stub that {stub} passes them"


def test_the_guard_accepts_strong_tests_and_names_unusable_ones(runner):
    assert runner.check_tests(ADD_TESTS).reason is None
    assert runner.check_tests(STYLES["unittest class"][0]).reason is None
    assert runner.check_tests("assert f(1) ==\n").reason == "tests syntax error"
    assert runner.check_tests("x = 1\n").reason == "no tests"
    assert runner.check_tests("assert 1 + 1 == 2\n").reason == "tests call no function under test"
    looping = runner.check_tests("while True:\n    pass\nassert f(1) == 2\n")
    assert looping.reason == "tests timeout (3 s)"
