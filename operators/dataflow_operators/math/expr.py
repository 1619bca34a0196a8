"""Math expressions in LaTeX or plain notation: a small parser and two evaluators.

`parse_expr("\\frac{\\sqrt{3}}{2}x")` gives a tree of tuples (no sympy, no `eval`: answers are
untrusted text). `exact_value` computes a tree whose leaves are numbers as an exact `Fraction`
(decimal literals are exact too: `0.333` is 333/1000, never 1/3). `numeric_value` evaluates any
tree with mpmath at 60 significant digits, with symbols bound to given values; it is what
decides equality of irrational constants and, at several points, of expressions in variables.
Both refuse work whose size would explode (`10^{10^{10}}`) instead of hanging: such trees are
left to the sympy worker, which runs under a time limit in another process.

Tree nodes:
    ("num", Fraction) ("sym", name) ("const", "pi"|"e"|"i"|"oo")
    ("add", (terms...)) ("mul", (factors...)) ("neg", x) ("div", a, b) ("pow", a, b)
    ("fn", name, (args...))   name in FUNCTIONS
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction
from typing import Any

Node = tuple


class ExprError(ValueError):
    """The text is not an expression this parser understands."""


class TooBig(ArithmeticError):
    """Evaluating would need unbounded time or memory (a tower of powers, a huge factorial)."""


# One-argument functions (plus `log` with an optional base, `root` with a degree, `binom`).
FUNCTIONS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "arccot",
    "sinh", "cosh", "tanh", "coth", "ln", "log", "exp", "sqrt", "abs", "floor", "ceil",
    "fact", "root", "binom", "gcd", "lcm",
}  # fmt: skip
_WORD_FUNCTIONS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh",
    "tanh", "ln", "log", "exp", "sqrt", "gcd", "lcm",
}  # fmt: skip
_ALIASES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "lg": "log"}
GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon",
    "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma",
    "Phi", "Psi", "Omega",
}  # fmt: skip
# Words that are math, not text: an answer made only of other words is a text answer.
MATH_WORDS = _WORD_FUNCTIONS | set(_ALIASES) | {"pi", "e", "i", "inf", "infty", "infinity", "oo"}

_TOKEN = re.compile(
    r"(?P<sci>\d+(?:\.\d*)?[eE][-+]?\d+(?![a-zA-Z]))"
    r"|(?P<num>\d+(?:\.\d*)?|\.\d+)"
    r"|(?P<cmd>\\[a-zA-Z]+|\\[{}|])"
    r"|(?P<word>[a-zA-Z]+)"
    r"|(?P<op>\*\*|[-+*/^_(){}\[\]|!',])"  # commas only inside gcd(a, b)
    r"|(?P<ws>\s+)"
)
_END = ("end", "")
_CLOSERS = {")", "]", "}", "\\}", "\\rfloor", "\\rceil", "\\right"}


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExprError(f"unexpected character {text[pos]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group()))  # type: ignore[arg-type]
    return tokens


def parse_expr(text: str) -> Node:
    """The tree of one expression; raises ExprError when it is not one."""
    parser = _Parser(tokenize(text))
    try:
        node = parser.sum()
    except ExprError:
        raise
    except (ValueError, ArithmeticError) as exc:  # e.g. a malformed number literal
        raise ExprError(str(exc)) from None
    if parser.peek() != _END:
        raise ExprError(f"unexpected {parser.peek()[1]!r}")
    return node


def _mul(factors: list[Node]) -> Node:
    return factors[0] if len(factors) == 1 else ("mul", tuple(factors))


class _Parser:
    """Recursive descent: sum > term (explicit and implicit products) > unary > power > postfix."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0
        self.in_abs = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else _END

    def next(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        token = self.next()
        if token[1] != value:
            raise ExprError(f"expected {value!r}, got {token[1]!r}")

    def push_back(self, token: tuple[str, str]) -> None:
        """Put a token back before the current position (the rest of a split token)."""
        self.tokens.insert(self.pos, token)

    # Grammar -----------------------------------------------------------------------------
    def sum(self) -> Node:
        terms = [self.term()]
        while self.peek()[1] in ("+", "-"):
            op = self.next()[1]
            term = self.term()
            terms.append(term if op == "+" else ("neg", term))
        return terms[0] if len(terms) == 1 else ("add", tuple(terms))

    def term(self) -> Node:
        factors = [self.unary()]
        while True:
            value = self.peek()[1]
            if value in ("*", "\\cdot", "\\times", "\\ast"):
                self.next()
                factors.append(self.unary())
            elif value in ("/", "\\div"):
                self.next()
                factors = [("div", _mul(factors), self.unary())]
            elif self.starts_atom():
                factors.append(self.power())
            else:
                return _mul(factors)

    def unary(self) -> Node:
        value = self.peek()[1]
        if value == "-":
            self.next()
            return ("neg", self.unary())
        if value == "+":
            self.next()
            return self.unary()
        return self.power()

    def power(self) -> Node:
        base = self.postfix()
        if self.peek()[1] in ("^", "**"):
            self.next()
            return ("pow", base, self.exponent())
        return base

    def exponent(self) -> Node:
        if self.peek()[1] == "{":
            return self.group()
        return self.unary()

    def postfix(self) -> Node:
        node = self.atom()
        while True:
            value = self.peek()[1]
            if value == "!":
                self.next()
                node = ("fn", "fact", (node,))
            elif value == "_" and node[0] == "sym":
                self.next()
                node = ("sym", f"{node[1]}_{render(self.script_arg())}")
            elif value == "'" and node[0] == "sym":
                self.next()
                node = ("sym", node[1] + "'")
            else:
                return node

    def starts_atom(self) -> bool:
        kind, value = self.peek()
        if kind in ("num", "sci", "word"):
            return True
        if kind == "cmd":
            return value not in ("\\cdot", "\\times", "\\div", "\\ast") and value not in _CLOSERS
        if value == "|":
            return not self.in_abs
        return value in ("(", "[", "{")

    def group(self) -> Node:
        """`{ expr }`."""
        self.expect("{")
        node = self.sum()
        self.expect("}")
        return node

    def script_arg(self) -> Node:
        """The argument of `_`, `\\frac`, `\\sqrt` without braces: one character or a group."""
        kind, value = self.peek()
        if value == "{":
            return self.group()
        if kind == "num":
            self.next()
            if len(value) > 1:  # `\frac12` is 1/2: a bare argument is one character
                self.push_back(("num", value[1:]))
            return ("num", Fraction(value[0]))
        if kind == "word":
            self.next()
            if len(value) > 1:
                self.push_back(("word", value[1:]))
            return self.letter(value[0])
        return self.atom()

    def letter(self, name: str) -> Node:
        if name == "e":
            return ("const", "e")
        if name == "i":
            return ("const", "i")
        return ("sym", name)

    def atom(self) -> Node:
        kind, value = self.next()
        if kind == "num":
            if self.peek()[1] == "\\overline" and "." in value:
                return ("num", self.repeating(value))
            return ("num", Fraction(value))
        if kind == "sci":
            mantissa, _, exponent = value.lower().partition("e")
            if abs(int(exponent)) > 400:
                return (
                    "mul",
                    (
                        ("num", Fraction(mantissa)),
                        ("pow", ("num", Fraction(10)), ("num", Fraction(int(exponent)))),
                    ),
                )
            return ("num", Fraction(mantissa) * Fraction(10) ** int(exponent))
        if kind == "word":
            return self.word(value)
        if kind == "cmd":
            return self.command(value)
        if value == "(":
            node = self.sum()
            self.expect(")")
            return node
        if value == "[":
            node = self.sum()
            self.expect("]")
            return node
        if value == "{":
            node = self.sum()
            self.expect("}")
            return node
        if value == "|" and not self.in_abs:
            self.in_abs += 1
            node = self.sum()
            self.in_abs -= 1
            self.expect("|")
            return ("fn", "abs", (node,))
        raise ExprError(f"unexpected {value!r}" if value else "unexpected end")

    def repeating(self, literal: str) -> Fraction:
        """`0.1\\overline{6}` = 1/6: the literal's digits, then the repeated block forever."""
        self.next()  # \overline
        self.expect("{")
        kind, block = self.next()
        if kind != "num" or not block.isdigit():
            raise ExprError("\\overline needs digits")
        self.expect("}")
        whole, _, fraction = literal.partition(".")
        head = Fraction(literal) if fraction else Fraction(int(whole or "0"))
        period = Fraction(int(block), 10 ** len(fraction) * (10 ** len(block) - 1))
        return head + period

    def word(self, value: str) -> Node:
        lower = value.lower()
        if lower in ("pi",):
            return ("const", "pi")
        if lower in ("inf", "infty", "infinity", "oo"):
            return ("const", "oo")
        name = _ALIASES.get(lower, lower)
        if name in _WORD_FUNCTIONS:
            return self.function(name)
        for prefix in sorted(_WORD_FUNCTIONS, key=len, reverse=True):  # `sinx`, `lnx`
            if lower.startswith(prefix) and len(lower) > len(prefix):
                self.push_back(("word", value[len(prefix) :]))
                return self.function(prefix)
        if len(value) > 1:  # `xy` is x*y
            self.push_back(("word", value[1:]))
        return self.letter(value[0])

    def command(self, value: str) -> Node:
        name = value[1:]
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            numerator = self.script_arg()
            return ("div", numerator, self.script_arg())
        if name == "sqrt":
            degree = None
            if self.peek()[1] == "[":
                self.next()
                degree = self.sum()
                self.expect("]")
            arg = self.script_arg()
            return ("fn", "sqrt", (arg,)) if degree is None else ("fn", "root", (arg, degree))
        if name == "binom" or name == "dbinom" or name == "tbinom":
            n = self.script_arg()
            return ("fn", "binom", (n, self.script_arg()))
        if name == "pi":
            return ("const", "pi")
        if name in ("infty", "infin"):
            return ("const", "oo")
        if name in ("lfloor", "lceil"):
            node = self.sum()
            self.expect("\\rfloor" if name == "lfloor" else "\\rceil")
            return ("fn", "floor" if name == "lfloor" else "ceil", (node,))
        if name in ("left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr"):
            return self.atom()
        if name in GREEK:
            return ("sym", name)
        if name == "operatorname":
            self.expect("{")
            kind, word = self.next()
            self.expect("}")
            name = word.lower()
        name = _ALIASES.get(name, name)
        if name in _WORD_FUNCTIONS:
            return self.function(name)
        raise ExprError(f"unsupported command {value}")

    def function(self, name: str) -> Node:
        power = None
        base = None
        if name == "log" and self.peek()[1] == "_":
            self.next()
            base = self.script_arg()
        if self.peek()[1] == "^":  # \sin^2 x
            self.next()
            power = self.exponent()
        if self.peek()[1] in ("(", "{") and name in ("gcd", "lcm"):
            args = self.arguments()
            node: Node = ("fn", name, tuple(args))
        elif self.peek()[1] in ("(", "{"):
            opener = self.next()[1]
            arg = self.sum()
            self.expect(")" if opener == "(" else "}")
            node = self.apply(name, arg, base)
        else:
            factors = [self.power()]
            while self.starts_atom() and not self.starts_function():
                factors.append(self.power())
            node = self.apply(name, _mul(factors), base)
        return ("pow", node, power) if power is not None else node

    def arguments(self) -> list[Node]:
        opener = self.next()[1]
        args = [self.sum()]
        while self.peek()[1] == ",":
            self.next()
            args.append(self.sum())
        self.expect(")" if opener == "(" else "}")
        return args

    def starts_function(self) -> bool:
        kind, value = self.peek()
        if kind == "cmd":
            return _ALIASES.get(value[1:], value[1:]) in _WORD_FUNCTIONS
        return kind == "word" and any(value.lower().startswith(f) for f in _WORD_FUNCTIONS)

    def apply(self, name: str, arg: Node, base: Node | None) -> Node:
        if name == "log" and base is not None:
            return ("fn", "log", (arg, base))
        if name == "sqrt":
            return ("fn", "sqrt", (arg,))
        return ("fn", name, (arg,))


# Rendering ---------------------------------------------------------------------------------
_PREC = {"add": 1, "neg": 2, "mul": 3, "div": 3, "pow": 5}


def render(node: Node, parent: int = 0) -> str:
    """A plain, unambiguous text form of a tree (what verdicts show as the canonical form)."""
    kind = node[0]
    if kind == "num":
        value: Fraction = node[1]
        text = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
        own = 0 if value.denominator == 1 and value >= 0 else 3
        return f"({text})" if parent > own and own else text
    if kind == "sym":
        return node[1]
    if kind == "const":
        return {"pi": "pi", "e": "e", "i": "i", "oo": "oo"}[node[1]]
    if kind == "fn":
        args = ", ".join(render(a) for a in node[2])
        return f"{node[1]}({args})"
    own = _PREC[kind]
    if kind == "add":
        parts = [render(node[1][0], own)]
        for term in node[1][1:]:
            if term[0] == "neg":
                parts.append(" - " + render(term[1], own + 1))
            else:
                parts.append(" + " + render(term, own))
        text = "".join(parts)
    elif kind == "neg":
        text = "-" + render(node[1], own + 1)
    elif kind == "mul":
        text = "*".join(render(f, own) for f in node[1])
    elif kind == "div":
        text = f"{render(node[1], own)}/{render(node[2], own + 1)}"
    else:  # pow
        text = f"{render(node[1], own + 1)}^{render(node[2], own)}"
    return f"({text})" if parent > own else text


def symbols(node: Node, found: set[str] | None = None) -> set[str]:
    found = set() if found is None else found
    kind = node[0]
    if kind == "sym":
        found.add(node[1])
    elif kind in ("add", "mul"):
        for child in node[1]:
            symbols(child, found)
    elif kind in ("neg",):
        symbols(node[1], found)
    elif kind in ("div", "pow"):
        symbols(node[1], found)
        symbols(node[2], found)
    elif kind == "fn":
        for child in node[2]:
            symbols(child, found)
    return found


# Exact evaluation --------------------------------------------------------------------------
class NotExact(ArithmeticError):
    """The tree has a value but not a rational one, or depends on symbols."""


_MAX_BITS = 20_000  # exact results larger than this are left to numeric or sympy evaluation


def exact_value(node: Node) -> Fraction:
    """The exact rational value of a tree of numbers; raises NotExact (or ZeroDivisionError)."""
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "add":
        return sum((exact_value(t) for t in node[1]), Fraction(0))
    if kind == "neg":
        return -exact_value(node[1])
    if kind == "mul":
        product = Fraction(1)
        for factor in node[1]:
            product *= exact_value(factor)
            _check_size(product)
        return product
    if kind == "div":
        numerator, denominator = exact_value(node[1]), exact_value(node[2])
        if denominator == 0:
            raise ZeroDivisionError("division by zero")
        return numerator / denominator
    if kind == "pow":
        base, exponent = exact_value(node[1]), exact_value(node[2])
        if exponent.denominator != 1:
            return _exact_root(base, exponent)
        bits = max(base.numerator.bit_length(), base.denominator.bit_length())
        if abs(exponent) > _MAX_BITS or bits * abs(exponent.numerator) > _MAX_BITS:
            raise TooBig("power too large for exact arithmetic")
        if base == 0 and exponent < 0:
            raise ZeroDivisionError("0 to a negative power")
        return base**exponent.numerator
    if kind == "fn":
        name, args = node[1], node[2]
        if name == "sqrt":
            return _exact_root(exact_value(args[0]), Fraction(1, 2))
        if name == "root":
            degree = exact_value(args[1])
            if degree == 0:
                raise NotExact("root of degree 0")
            return _exact_root(exact_value(args[0]), 1 / degree)
        if name == "abs":
            return abs(exact_value(args[0]))
        if name in ("floor", "ceil"):
            value = exact_value(args[0])
            whole = value.numerator // value.denominator
            return Fraction(whole if name == "floor" or whole == value else whole + 1)
        if name == "fact":
            n = exact_value(args[0])
            if n.denominator != 1 or n < 0:
                raise NotExact("factorial of a non-natural number")
            if n > 2000:
                raise TooBig("factorial too large for exact arithmetic")
            import math

            return Fraction(math.factorial(int(n)))
        if name == "binom":
            n, k = exact_value(args[0]), exact_value(args[1])
            if n.denominator != 1 or k.denominator != 1 or n < 0 or n > 5000:
                raise NotExact("binomial outside small naturals")
            import math

            return Fraction(math.comb(int(n), int(k)) if k >= 0 else 0)
        if name in ("gcd", "lcm"):
            import math

            values = [exact_value(a) for a in args]
            if any(v.denominator != 1 for v in values):
                raise NotExact("gcd of non-integers")
            fn = math.gcd if name == "gcd" else math.lcm
            return Fraction(fn(*(int(v) for v in values)))
        if name == "exp" and exact_value(args[0]) == 0:
            return Fraction(1)
        if name == "ln" and exact_value(args[0]) == 1:
            return Fraction(0)
    raise NotExact(kind)


def _check_size(value: Fraction) -> None:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > 4 * _MAX_BITS:
        raise TooBig("number too large for exact arithmetic")


def _exact_root(base: Fraction, exponent: Fraction) -> Fraction:
    """base**exponent when the result is rational (`\\sqrt{4}`, `8^{2/3}`), else NotExact."""
    if exponent.denominator > 64 or abs(exponent.numerator) > 64:
        raise NotExact("root too large")
    if base < 0:
        raise NotExact("root of a negative number")
    root = Fraction(
        _int_root(base.numerator, exponent.denominator), _int_root(base.denominator, exponent.denominator)
    )
    if root**exponent.denominator != base:
        raise NotExact("irrational root")
    if root == 0 and exponent < 0:
        raise ZeroDivisionError("0 to a negative power")
    return root**exponent.numerator


def _int_root(n: int, k: int) -> int:
    if n.bit_length() > 4 * _MAX_BITS:
        raise TooBig("root of a huge number")
    if n < 2:
        return n
    x = int(round(n ** (1.0 / k))) if n.bit_length() < 1000 else 1 << (n.bit_length() // k)
    # Newton's method from the float guess, then fix off-by-one.
    for _ in range(200):
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    while x**k > n:
        x -= 1
    while (x + 1) ** k <= n:
        x += 1
    return x


# Numeric evaluation ------------------------------------------------------------------------
_local = threading.local()
DIGITS = 60


def mp():
    """A per-thread mpmath context at DIGITS significant digits (the global one is shared state)."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        import mpmath

        ctx = mpmath.MPContext()
        ctx.dps = DIGITS
        _local.ctx = ctx
    return ctx


_MAX_MAG = 100_000  # bits: |values| beyond 2**100000 are left to sympy


def numeric_value(node: Node, env: dict[str, Any]) -> Any:
    """The value of a tree with mpmath (mpf or mpc), symbols taken from `env`."""
    ctx = mp()
    kind = node[0]
    if kind == "num":
        value = node[1]
        return ctx.mpf(value.numerator) / value.denominator
    if kind == "sym":
        if node[1] not in env:
            raise NotExact(f"unbound symbol {node[1]}")
        return env[node[1]]
    if kind == "const":
        return {"pi": ctx.pi, "e": ctx.e, "i": ctx.mpc(0, 1), "oo": ctx.inf}[node[1]]
    if kind == "add":
        total = ctx.mpf(0)
        for term in node[1]:
            total += numeric_value(term, env)
        return _guard(ctx, total)
    if kind == "neg":
        return -numeric_value(node[1], env)
    if kind == "mul":
        product = ctx.mpf(1)
        for factor in node[1]:
            product *= numeric_value(factor, env)
        return _guard(ctx, product)
    if kind == "div":
        numerator, denominator = numeric_value(node[1], env), numeric_value(node[2], env)
        if denominator == 0:
            raise ZeroDivisionError("division by zero")
        return _guard(ctx, numerator / denominator)
    if kind == "pow":
        base, exponent = numeric_value(node[1], env), numeric_value(node[2], env)
        if base != 0 and ctx.isfinite(base) and ctx.isfinite(exponent):
            if abs(ctx.mag(base)) * abs(exponent) > _MAX_MAG or abs(exponent) > 10**12:
                raise TooBig("power too large")
        if base == 0 and ctx.re(exponent) < 0:
            raise ZeroDivisionError("0 to a negative power")
        if ctx.im(base) == 0 and ctx.re(base) < 0 and ctx.im(exponent) == 0:
            # (-8)^(1/3) is -2 for an odd root written as a fraction, like sympy's real root.
            e = node[2]
            if e[0] == "div" and e[2][0] == "num" and e[2][1].denominator == 1 and e[2][1].numerator % 2:
                return _guard(ctx, -((-base) ** exponent))
        return _guard(ctx, ctx.power(base, exponent))
    if kind == "fn":
        return _guard(ctx, _function(ctx, node[1], [numeric_value(a, env) for a in node[2]]))
    raise NotExact(kind)


def _guard(ctx, value):
    if ctx.isnan(value):
        raise NotExact("not a number")
    if ctx.isfinite(value) and value != 0 and ctx.mag(value) > _MAX_MAG:
        raise TooBig("value too large")
    return value


def _function(ctx, name: str, args: list) -> Any:
    x = args[0]
    if name in ("sin", "cos", "tan", "cot", "sec", "csc", "sinh", "cosh", "tanh", "coth", "exp"):
        if name == "exp" and ctx.re(x) > 10**5:
            raise TooBig("exp too large")
        return getattr(ctx, name)(x)
    if name in ("arcsin", "arccos", "arctan"):
        return getattr(ctx, {"arcsin": "asin", "arccos": "acos", "arctan": "atan"}[name])(x)
    if name == "arccot":
        return ctx.acot(x)
    if name == "sqrt":
        return ctx.sqrt(x)
    if name == "root":
        degree = args[1]
        if ctx.im(x) == 0 and x < 0 and ctx.im(degree) == 0 and int(degree) == degree and int(degree) % 2:
            return -ctx.root(-x, int(degree))
        return ctx.power(x, 1 / degree)
    if name == "ln":
        if x == 0:
            raise ZeroDivisionError("log of 0")
        return ctx.log(x)
    if name == "log":
        if x == 0:
            raise ZeroDivisionError("log of 0")
        # A bare `log` is ambiguous (e or 10); answers use it for both, so equality needs care:
        # we read it as the natural log, which sympy does too.
        return ctx.log(x, args[1]) if len(args) > 1 else ctx.log(x)
    if name == "abs":
        return abs(x)
    if name in ("floor", "ceil"):
        if ctx.im(x) != 0:
            raise NotExact("floor of a complex number")
        return getattr(ctx, name)(x)
    if name == "fact":
        if ctx.im(x) != 0 or x < 0:
            raise NotExact("factorial of a negative or complex number")
        if x > 10**6:
            raise TooBig("factorial out of range")
        return ctx.factorial(x)
    if name == "binom":
        return ctx.binomial(x, args[1])
    raise NotExact(name)
