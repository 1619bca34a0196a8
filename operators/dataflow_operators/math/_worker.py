"""A sympy worker process: reads checks as JSON lines on stdin, answers one JSON line each.

Started by `pool.VerifyPool`; killed by it when a check overruns its time limit. Answers this
package's parser does not understand are parsed with latex2sympy (a math-verify dependency) and
compared with sympy; everything else uses the same rules as the in-process checks.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from dataflow_operators.math.equivalence import _POINTS, Comparer, Options, Value, parse_pair


def _limit_memory() -> None:
    megabytes = int(os.environ.get("DATAFLOW_MATH_MEMORY_MB", "0") or 0)
    if megabytes > 0:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def to_sympy(node: tuple) -> Any:
    """A sympy expression for a tree of `expr.py` (exact: Rationals, not Floats)."""
    import sympy as sp

    kind = node[0]
    if kind == "num":
        return sp.Rational(node[1].numerator, node[1].denominator)
    if kind == "sym":
        return sp.Symbol(node[1])
    if kind == "const":
        return {"pi": sp.pi, "e": sp.E, "i": sp.I, "oo": sp.oo}[node[1]]
    if kind == "add":
        return sp.Add(*(to_sympy(t) for t in node[1]))
    if kind == "mul":
        return sp.Mul(*(to_sympy(t) for t in node[1]))
    if kind == "neg":
        return -to_sympy(node[1])
    if kind == "div":
        return to_sympy(node[1]) / to_sympy(node[2])
    if kind == "pow":
        return sp.Pow(to_sympy(node[1]), to_sympy(node[2]))
    name, args = node[1], [to_sympy(a) for a in node[2]]
    simple = {
        "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc,
        "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan, "arccot": sp.acot, "sinh": sp.sinh,
        "cosh": sp.cosh, "tanh": sp.tanh, "coth": sp.coth, "ln": sp.log, "exp": sp.exp, "sqrt": sp.sqrt,
        "abs": sp.Abs, "floor": sp.floor, "ceil": sp.ceiling, "fact": sp.factorial,
    }  # fmt: skip
    if name in simple:
        return simple[name](args[0])
    if name == "log":
        return sp.log(*args)
    if name == "root":
        return sp.real_root(args[0], args[1]) if args[1].is_odd else sp.root(args[0], args[1])
    if name == "binom":
        return sp.binomial(*args)
    if name in ("gcd", "lcm"):
        return (sp.gcd if name == "gcd" else sp.lcm)(*args)
    raise ValueError(f"no sympy form for {name}")


class SympyComparer(Comparer):
    """The in-process rules, with sympy where they could not decide."""

    def raw(self, gold: Value, pred: Value) -> bool | None:
        decided = super().raw(gold, pred)
        if decided is not None:
            return decided
        a, b = self.sympy_of(gold), self.sympy_of(pred)
        if a is None or b is None:
            return self.fail("could not parse the answer" if b is None else "could not parse the gold answer")
        return self.sympy_equal(a, b)

    def sympy_of(self, value: Value) -> Any:
        if value[0] == "expr":
            expr = to_sympy(value[1])
            return expr / 100 if value[2] else expr
        if value[0] != "raw" or not value[1]:
            return None
        try:
            from latex2sympy2_extended import latex2sympy
        except ImportError:
            return None
        try:
            return latex2sympy(value[1])
        except Exception:  # latex2sympy raises many types for text it cannot read
            return None

    def leaf(self, a: tuple, b: tuple) -> bool | None:
        decided = super().leaf(a, b)
        if decided is not None:
            return decided
        return self.sympy_equal(to_sympy(a), to_sympy(b))

    def sympy_equal(self, a: Any, b: Any) -> bool:
        import sympy as sp

        if not isinstance(a, sp.Expr) or not isinstance(b, sp.Expr):
            try:
                return (
                    bool(a == b)
                    or (
                        isinstance(a, sp.Set)
                        and isinstance(b, sp.Set)
                        and a.symmetric_difference(b).is_empty is True
                    )
                    or self.fail("different values")
                )
            except Exception:  # sympy comparisons of unrelated objects may raise anything
                return self.fail("incomparable answers")
        if a.is_Rational and b.is_Rational:
            if a == b or (
                not (a.is_Integer and b.is_Integer)  # see equivalence.within_integers
                and abs(a - b) <= sp.Rational(self.options.rel_tol) * max(abs(a), abs(b))
            ):
                return True
            return self.fail("different values")
        names = sorted(a.free_symbols | b.free_symbols, key=str)
        points = [{}] if not names else [
            {s: sp.Rational(_POINTS[(t * 3 + k * 5) % len(_POINTS)]) + sp.Rational(137, 10000) * k
             for k, s in enumerate(names)}
            for t in range(6)
        ]  # fmt: skip
        valid = 0
        for env in points:
            x, y = sp.N(a.subs(env), 60), sp.N(b.subs(env), 60)
            if not (x.is_number and y.is_number) or x.has(sp.nan, sp.zoo) or y.has(sp.nan, sp.zoo):
                continue
            if x.has(sp.oo, -sp.oo) or y.has(sp.oo, -sp.oo):
                if x != y:
                    return self.fail("different values")
                valid += 1
                continue
            diff = abs(sp.N(x - y, 60))
            scale = max(abs(x), abs(y))
            if not (diff <= max(self.options.rel_tol, 1e-40) * scale or diff <= sp.Float("1e-45", 60)):
                return self.fail("different values" if not names else "different expressions")
            valid += 1
        if valid >= (1 if not names else 3):
            return True
        return self.fail("could not evaluate")


def check(task: dict[str, Any]) -> dict[str, Any]:
    options = Options(**task["options"])
    gold, pred = parse_pair(task["answer"], task["gold"], options)
    comparer = SympyComparer(options)
    result = comparer.equal(gold, pred)
    if result is None:
        return {"equal": False, "reason": "could not decide"}
    return {"equal": bool(result), "reason": "equal" if result else comparer.why}


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the parent dies (even by SIGKILL), so a
    killed run leaves no sympy process burning CPU; a closed stdin covers the other cases."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # best effort: without it the worker still exits when its stdin closes


def main() -> None:
    _die_with_parent()
    _limit_memory()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    import sympy  # noqa: F401  (imported before "ready" so check time excludes it)

    try:
        import latex2sympy2_extended  # noqa: F401
    except ImportError:
        pass
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        try:
            result = check(task)
        except MemoryError:
            result = {"equal": False, "reason": "out of memory"}
        except RecursionError:
            result = {"equal": False, "reason": "answer too deeply nested"}
        except Exception as exc:  # noqa: BLE001  a verdict, never a crashed worker
            result = {"equal": False, "reason": f"sympy error ({type(exc).__name__})"}
        out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
