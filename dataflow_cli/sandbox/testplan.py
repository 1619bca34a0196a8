"""Turn a test file into the steps the record and judge harnesses run (parent side, `ast` only).

A test file is Python: top-level `assert` statements (one test each, MBPP style), `test_*`
functions, `Test*` classes (unittest or pytest style, one test per `test_*` method), and other
top-level statements that contain checks (`check(candidate)`, HumanEval style) are tests; the
rest is setup, run in order. Checks are `assert`, unittest's `self.assert*` methods and
`raises` contexts (pytest's or unittest's); a test that runs no check fails.

Two versions of the code are made:

- the **judge** version is the file as written, with a counter call before every check;
- the **record** version runs in the solution's process and must not tell the solution what
  is expected: every check is reduced to the calls it makes (`assert f(2) == 4` becomes `f(2)`,
  `assert abs(g(x) - 0.5) < 1e-9` becomes `g(x)`), `raises` contexts swallow exceptions, and
  assignments of literal data that only checks read (`expected = [1, 2]`) are dropped. Expected
  values written as literals in checks therefore never reach the solution's process; values the
  tests compute or iterate over (`for x, want in cases:`) do, and are harmless there because
  the verdict is taken in the judge process from plain data only.
"""

from __future__ import annotations

import ast
import builtins
import copy
from dataclasses import dataclass, field

CHECK = "__df_check__"
SWALLOW = "__df_swallow__"
SWALLOW_CALL = "__df_swallow_call__"
RAISES = {"raises", "assertRaises", "assertRaisesRegex", "assertWarns", "assertWarnsRegex", "warns"}
# Calls whose only effect on a check is to transform their arguments: in the record version
# they are replaced by their arguments' calls (when no argument could be a callback).
PURE_FUNCTIONS = {
    "abs", "all", "any", "bool", "bytes", "chr", "complex", "dict", "divmod", "float", "frozenset",
    "hash", "int", "isinstance", "len", "list", "max", "min", "ord", "pow", "repr", "reversed",
    "round", "set", "sorted", "str", "sum", "tuple", "type", "approx",
}  # fmt: skip
PURE_MODULES = {"math", "cmath", "pytest", "statistics", "operator", "string", "fractions", "decimal"}
PURE_METHODS = {
    "strip", "lstrip", "rstrip", "lower", "upper", "split", "splitlines", "count", "index", "find",
    "keys", "values", "items", "get", "startswith", "endswith", "join", "replace", "isclose",
    "approx", "copy", "casefold", "title",
}  # fmt: skip
DATA_CONSTRUCTORS = {
    "float", "int", "str", "complex", "set", "frozenset", "tuple", "list", "dict", "bytes",
    "bytearray", "Decimal", "Fraction", "range", "approx",
}  # fmt: skip
MAX_TESTS = 500


class TestsInvalid(ValueError):
    """A test file that cannot be run; `reason` is short."""

    __test__ = False  # a library class, not a pytest test class

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


@dataclass
class TestPlan:
    __test__ = False  # a library class, not a pytest test class
    judge_steps: list[dict]
    record_steps: list[dict]
    tests: list[int]  # indices of the steps that are tests
    names: list[str]  # a name per test
    identifiers: set[str] = field(default_factory=set)  # every name the tests mention
    free_names: list[str] = field(default_factory=list)  # used but never bound: what is tested


def build_plan(source: str) -> TestPlan:
    try:
        tree = ast.parse(source, "tests.py")
    except (SyntaxError, ValueError) as exc:
        raise TestsInvalid("tests syntax error", str(exc)) from None
    defined = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    checking = {name for name, node in defined.items() if _has_check(node)}
    judge: list[dict] = []
    record: list[dict] = []
    tests: list[int] = []
    names: list[str] = []
    later: list[tuple[dict, str]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _add_setup(judge, record, node)
            if node.name.startswith("test"):
                later.append(({"kind": "func", "name": node.name}, node.name))
        elif isinstance(node, ast.ClassDef):
            _add_setup(judge, record, node)
            if node.name.startswith("Test") or any(_tail(b) == "TestCase" for b in node.bases):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                        step = {"kind": "method", "cls": node.name, "name": item.name}
                        later.append((step, f"{node.name}.{item.name}"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)) or not (
            _has_check(node) or _calls_any(node, checking)
        ):
            _add_setup(judge, record, node)
        else:
            tests.append(len(judge))
            names.append(f"line {node.lineno}")
            judge.append({"kind": "assert", "code": _judge_code(node)})
            record.append({"kind": "assert", "code": _record_code(node)})
    for step, name in later:
        tests.append(len(judge))
        names.append(name)
        judge.append(step)
        record.append(step)
    if not tests:
        raise TestsInvalid("no tests", "no assert, test function or test class found")
    if len(tests) > MAX_TESTS:
        raise TestsInvalid("too many tests", f"{len(tests)} > {MAX_TESTS}")
    _drop_dead_data(record)
    return TestPlan(judge, record, tests, names, _identifiers(tree), _free_names(tree))


def bound_names(source: str) -> set[str]:
    """Names a solution binds at module level (raises SyntaxError)."""
    tree = ast.parse(source, "solution.py")
    names: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names.add(alias.asname or alias.name.split(".")[0])
                continue
            for child in ast.walk(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.add(child.id)
            for attr in ("body", "orelse", "finalbody"):
                visit(getattr(node, attr, []) or [])
            for handler in getattr(node, "handlers", []) or []:
                visit(handler.body)

    visit(tree.body)
    return names


# --- what a test file is made of -------------------------------------------------------------
def _tail(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _is_raises(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _tail(node.func) in RAISES


def _is_check(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return (isinstance(func, ast.Attribute) and func.attr.startswith("assert")) or _is_raises(node.value)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return any(_is_raises(item.context_expr) for item in node.items)
    return False


def _has_check(node: ast.AST) -> bool:
    return any(isinstance(n, ast.stmt) and _is_check(n) for n in ast.walk(node))


def _calls_any(node: ast.AST, functions: set[str]) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in functions
        for n in ast.walk(node)
    )


def _identifiers(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found.update(alias.name for alias in node.names)
    return found


def _free_names(tree: ast.AST) -> list[str]:
    """Names the tests read but never bind (nor are builtins): the functions under test. Names
    imported from a module called `solution` count too."""
    loaded: set[str] = set()
    bound: set[str] = set()
    tested: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ImportFrom) and node.module == "solution":
            tested.update(alias.name for alias in node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "solution"
        ):
            tested.add(node.attr)
    return sorted(tested | {n for n in loaded - bound if not hasattr(builtins, n)})


def _add_setup(judge: list[dict], record: list[dict], node: ast.stmt) -> None:
    judge.append({"kind": "setup", "code": _judge_code(node)})
    record.append({"kind": "setup", "code": _record_code(node)})


# --- judge version: count checks --------------------------------------------------------------
def _judge_code(node: ast.stmt) -> str:
    tree = ast.Module(body=[copy.deepcopy(node)], type_ignores=[])
    _instrument(tree)
    ast.fix_missing_locations(tree)
    return _padded_module(tree, node.lineno)


def _padded_module(tree: ast.Module, lineno: int) -> str:
    # Leading blank lines keep the original line numbers in tracebacks and messages.
    return "\n" * (lineno - 1) + ast.unparse(tree)


def _counter() -> ast.stmt:
    return ast.Expr(ast.Call(ast.Name(CHECK, ast.Load()), [], []))


def _instrument(node: ast.AST) -> None:
    for name, value in ast.iter_fields(node):
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            new: list[ast.stmt] = []
            for stmt in value:
                _instrument(stmt)
                if _is_check(stmt):
                    new.append(_counter())
                new.append(stmt)
            setattr(node, name, new)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ast.AST):
                    _instrument(item)
        elif isinstance(value, ast.AST):
            _instrument(value)


# --- record version: the calls of each check, without what they compare against --------------
def _record_code(node: ast.stmt) -> str:
    tree = ast.Module(body=_strip(copy.deepcopy(node)), type_ignores=[])
    ast.fix_missing_locations(tree)
    return _padded_module(tree, node.lineno) if tree.body else "pass"


def _strip(stmt: ast.stmt) -> list[ast.stmt]:
    """`stmt` with its checks reduced to their calls (a list: one check may make several)."""
    if isinstance(stmt, ast.Assert):
        return [ast.Expr(e) for e in _reduce(stmt.test)] or [ast.Pass()]
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and _is_check(stmt):
        call = stmt.value
        if _is_raises(call):
            if len(call.args) < 2:
                return [ast.Pass()]
            swallowed = ast.Call(ast.Name(SWALLOW_CALL, ast.Load()), call.args[1:], call.keywords)
            return [ast.Expr(swallowed)]
        parts = [e for a in call.args for e in _reduce(a)]
        parts += [e for k in call.keywords if k.arg != "msg" for e in _reduce(k.value)]
        return [ast.Expr(e) for e in parts] or [ast.Pass()]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        for item in stmt.items:
            if _is_raises(item.context_expr):
                item.context_expr = ast.Call(ast.Name(SWALLOW, ast.Load()), [], [])
    for name, value in ast.iter_fields(stmt):
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            setattr(stmt, name, [s for child in value for s in _strip(child)] or [ast.Pass()])
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (ast.ExceptHandler, ast.match_case)):
                    item.body = [s for child in item.body for s in _strip(child)] or [ast.Pass()]
    return [stmt]


def _has_call(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def _is_data(node: ast.AST) -> bool:
    """A literal value (or a module constant such as `math.pi`): nothing of the solution runs."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_data(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _is_data(k) for k in node.keys) and all(_is_data(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _is_data(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_data(node.left) and _is_data(node.right)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id in PURE_MODULES
    if isinstance(node, ast.Call):
        return (
            _tail(node.func) in DATA_CONSTRUCTORS
            and (isinstance(node.func, ast.Name) or _is_data(node.func))
            and all(_is_data(a) for a in node.args)
            and all(_is_data(k.value) for k in node.keywords)
        )
    return False


def _reduce(node: ast.expr) -> list[ast.expr]:
    """The sub-expressions of a check that must run for its calls to happen, in order."""
    if _is_data(node) or not _has_call(node):
        return []
    if isinstance(node, ast.Compare):
        return [e for part in [node.left, *node.comparators] for e in _reduce(part)]
    if isinstance(node, ast.BoolOp):
        return [e for part in node.values for e in _reduce(part)]
    if isinstance(node, ast.UnaryOp):
        return _reduce(node.operand)
    if isinstance(node, ast.BinOp):
        return _reduce(node.left) + _reduce(node.right)
    if isinstance(node, ast.Subscript):
        return _reduce(node.value) + _reduce(node.slice)
    if isinstance(node, ast.Attribute):
        return _reduce(node.value)
    if isinstance(node, ast.Call) and _pure_call(node):
        receiver = _reduce(node.func.value) if isinstance(node.func, ast.Attribute) else []
        return receiver + [e for a in [*node.args, *(k.value for k in node.keywords)] for e in _reduce(a)]
    return [node]


def _pure_call(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        pure = func.id in PURE_FUNCTIONS
    elif isinstance(func, ast.Attribute):
        pure = func.attr in PURE_METHODS or (
            isinstance(func.value, ast.Name) and func.value.id in PURE_MODULES
        )
    else:
        pure = False
    # An argument that is a name or a lambda might be a callback that calls the solution.
    arguments = [*node.args, *(k.value for k in node.keywords)]
    return pure and all(_is_data(a) or _has_call(a) and not isinstance(a, ast.Lambda) for a in arguments)


def _drop_dead_data(steps: list[dict]) -> None:
    """Drop `name = <literal>` assignments that nothing in the record version reads any more."""

    trees = {i: ast.parse(s["code"]) for i, s in enumerate(steps) if s["kind"] in ("setup", "assert")}
    while True:
        loaded: set[str] = set()
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
                    loaded.add(node.id)
                elif isinstance(node, (ast.Global, ast.Nonlocal)):
                    loaded.update(node.names)
        changed = False
        for tree in trees.values():
            for node in ast.walk(tree):
                for name, value in ast.iter_fields(node):
                    if not (isinstance(value, list) and value and isinstance(value[0], ast.stmt)):
                        continue
                    for i, stmt in enumerate(value):
                        targets = (
                            stmt.targets
                            if isinstance(stmt, ast.Assign)
                            else [stmt.target]
                            if isinstance(stmt, ast.AnnAssign) and stmt.value is not None
                            else []
                        )
                        if (
                            targets
                            and all(isinstance(t, ast.Name) and t.id not in loaded for t in targets)
                            and _is_data(stmt.value)
                        ):
                            value[i] = ast.copy_location(ast.Pass(), stmt)
                            changed = True
                    setattr(node, name, value)
        if not changed:
            break
    for i, tree in trees.items():
        lineno = steps[i]["code"].count("\n", 0, len(steps[i]["code"]) - len(steps[i]["code"].lstrip("\n")))
        steps[i]["code"] = "\n" * lineno + ast.unparse(tree)
