"""Parse an answer into a value and decide whether two answers are equal by value.

`parse_answer` turns answer text (LaTeX or plain) into an immutable value:

    ("expr", tree, percent)       a number or expression (see `expr.py`); percent: written with %
    ("text", words)               a text answer, lower case, articles and punctuation removed
    ("choice", letter)            a multiple-choice letter (only when the gold is one)
    ("seq", open, close, items)   (1, 2], [1, 2], \\{1, 2\\} (open "{"), \\langle 1, 2\\rangle (open "(")
    ("list", items)               several answers: "1, 2", "3 or 4", grouped boxes
    ("map", ((name, value), ...)) several assignments: "x = 1, y = 2"
    ("union", items)              intervals joined by \\cup
    ("rel", operands, ops, name)  equations and inequalities; name: the left side of an
                                  assignment (`x = 3`, `f(2) = 5`), else None
    ("matrix", rows)
    ("empty",)                    the empty set, "no solution"
    ("raw", text)                 not understood here: the sympy worker parses it
    ("alt", (a, b))               two readings of ambiguous text (`100,200`: a number or a list)

`Comparer.equal(gold, pred)` is True, False, or None when deciding needs sympy (the caller then
asks the worker, which runs `SympyComparer` under a time limit). The rules:

- Numbers and expressions compare by value: exact rationals exactly (0.333 is not 1/3), other
  constants and expressions numerically at 60 digits, expressions in variables at several
  points. `rel_tol` is the only slack (default 1e-9, relative).
- `x = 3` matches `3` (an assignment's value); two assignments must name the same thing.
  Equations match when one is a nonzero multiple of the other (`2x = 4` and `x - 2 = 0`).
- Intervals need the same brackets: (1, 2) is not [1, 2]. Tuples are ordered, sets are not,
  a bare list ("1, 2") is unordered against a set or another list and ordered against a tuple.
- Several answers never match one: "3 or 4" against 3 is wrong.
- Percentages: by default 50% matches 50 and 0.5 (`percent: either`), or only 0.5
  (`fraction`) or only 50 (`number`).
- Text answers compare case-insensitively without articles; units after a number are
  dropped (`5 \\text{ cm}` is 5) unless `strip_units` is off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from dataflow_operators.math.expr import (
    MATH_WORDS,
    ExprError,
    Node,
    NotExact,
    TooBig,
    exact_value,
    mp,
    numeric_value,
    parse_expr,
    render,
    symbols,
)
from dataflow_operators.math.extract import match_brace

Value = tuple


@dataclass(frozen=True)
class Options:
    rel_tol: float = 1e-9
    percent: str = "either"  # either | fraction | number
    strip_units: bool = True


# Cleaning ----------------------------------------------------------------------------------
_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u22c5": "\\cdot ",
    "\u00f7": "\\div ", "\u221a": "\\sqrt", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u2264": "\\le ",
    "\u2265": "\\ge ", "\u2260": "\\ne ", "\u222a": "\\cup ", "\u2229": "\\cap ", "\u2205": "\\emptyset ",
    "\u00b0": "^\\circ", "\u2248": "\\approx ", "\u00b1": "\\pm ", "\u2213": "\\mp ", "\u27e8": "\\langle ",
    "\u27e9": "\\rangle ", "\u00b2": "^2", "\u00b3": "^3", "\u2009": " ", "\u202f": " ", "\u00a0": " ",
    "\u00bd": "\\frac{1}{2}", "\u2153": "\\frac{1}{3}", "\u2154": "\\frac{2}{3}", "\u00bc": "\\frac{1}{4}",
    "\u00be": "\\frac{3}{4}", "\u2155": "\\frac{1}{5}", "\u2159": "\\frac{1}{6}", "\u215b": "\\frac{1}{8}",
    "\u03b1": "\\alpha ", "\u03b2": "\\beta ", "\u03b8": "\\theta ", "\u2208": "\\in ",
}  # fmt: skip
# Fullwidth ASCII (U+FF01..U+FF5E: `５`, `－`, `（`) as plain ASCII, as IMEs type them.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|mbox|boldsymbol|"
    r"bm|emph|hbox|operatorname\*?)\s*\{"
)
_SIZING = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![a-zA-Z])\s*")
_CONNECTIVES = {"and", "or", ",", ""}


# (pattern, replacement) applied in order by `clean` to text with a backslash in it.
_TRIG = re.compile(r"(?<![a-zA-Z])\\?(?:sin|cos|tan|cot|sec|csc)(?![a-zA-Z])")
_DEGREES = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|\\degree(?![a-zA-Z]))")
_LATEX_RULES = [
    (re.compile(r"\\[()\[\]]"), " "),  # \( \) \[ \]
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree"), " "),
    (re.compile(r"(?<=\d)\\[,;:! ](?=\d{3}(?!\d))"), ""),  # 1\,000 and 1\!000
    (re.compile(r"(?<!\\)\\[,;:!> ]"), " "),  # spacing; `\\` (a matrix row break) stays
]
_RELATION_RULES = [
    (re.compile(r"\\(?:dfrac|tfrac|cfrac)"), r"\\frac"),
    (re.compile(r"\\(?:leqslant|leq|le)(?![a-zA-Z])"), "<="),
    (re.compile(r"\\(?:geqslant|geq|ge)(?![a-zA-Z])"), ">="),
    (re.compile(r"\\(?:neq|ne)(?![a-zA-Z])"), "!="),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
    (re.compile(r"\\(?:approx|simeq|equiv)(?![a-zA-Z])"), "="),
    (re.compile(r"\\varnothing(?![a-zA-Z])"), r"\\emptyset"),
    (re.compile(r"\\(?:dots|ldots|cdots)(?![a-zA-Z])"), "..."),
    (re.compile(r"\\therefore|\\implies|\\Rightarrow|\\rightarrow"), " "),
    (re.compile(r"\\mathbb\s*\{?\s*R\s*\}?"), r"(-\\infty, \\infty)"),
]
_DOLLAR = re.compile(r"(?<!\\)\$")
_SPACES = re.compile(r"\s+")
_ALL_REALS = re.compile(r"\ball real numbers\b", re.I)


@lru_cache(maxsize=16384)
def clean(text: str, strip_units: bool = True) -> str:
    """Answer text without math delimiters, sizing, font wrappers, degree marks and currency."""
    s = text.strip()
    if not s.isascii():
        s = s.translate(_FULLWIDTH)
        for char, repl in _UNICODE.items():
            if char in s:
                s = s.replace(char, repl)
    if "$" in s:
        s = _DOLLAR.sub(" ", s)  # math delimiters; `\$` is currency
    s = s.replace("{,}", ",").replace("~", " ")
    if "\\" in s:
        s = _SIZING.sub("", s.replace("\\left.", "").replace("\\right.", ""))
        s = s.replace("\\displaystyle", " ").replace("\\$", " ").replace("\\%", "%")
        if _TRIG.search(s):  # `\\tan 30^\\circ`: an angle in degrees inside a function is radians there
            s = _DEGREES.sub(r"(\1\\pi/180)", s)
        for pattern, repl in _LATEX_RULES:
            s = pattern.sub(repl, s)
        s = _unwrap(s, strip_units)
        s = _before_approximation(s)
        for pattern, repl in _RELATION_RULES:
            s = pattern.sub(repl, s)
    s = s.replace("=>", " ")
    if "all real" in s.lower():
        s = _ALL_REALS.sub(r"(-\\infty, \\infty)", s)
    s = _SPACES.sub(" ", s).strip()
    s = s.rstrip(".;,").strip()
    if s.startswith("="):  # "\approx 3.14" / "= 5": the value
        s = s[1:].strip()
    return s


_APPROX_SIGN = re.compile(r"\\approx(?![a-zA-Z])")


def _before_approximation(s: str) -> str:
    """`\\frac{1}{3} \\approx 0.33` -> `\\frac{1}{3}`: a value followed by its rounding is
    the value. With a variable in front (`x \\approx 3.14`) the rounding is all there is."""
    m = _APPROX_SIGN.search(s)
    if m is None:
        return s
    before = s[: m.start()].strip().rstrip("=").strip()
    if not before or "=" in before or "," in before:
        return s
    try:
        tree = parse_expr(before)
    except (ExprError, RecursionError):
        return s
    return before if not symbols(tree) else s


def _unwrap(s: str, strip_units: bool) -> str:
    """Replace `\\text{...}` and friends by their content. A text that follows a number or an
    expression is a unit or a word (`5\\text{ cm}`, `3 \\text{ apples}`): dropped when
    `strip_units`, except connectives (`3 \\text{ or } 4`)."""
    out = []
    pos = 0
    while True:
        m = _WRAPPERS.search(s, pos)
        if m is None:
            out.append(s[pos:])
            return "".join(out)
        close = match_brace(s, m.end() - 1)
        if close is None:
            out.append(s[pos:])
            return "".join(out)
        content = s[m.end() : close]
        before = "".join(out) + s[pos : m.start()]
        is_text = m.group().startswith(("\\text", "\\mbox", "\\hbox"))
        word = content.strip().lower()
        drop = (
            strip_units
            and is_text
            and re.fullmatch(r"[a-zA-Z][a-zA-Z .^2/-]*", content.strip() or "-")
            and word not in _CONNECTIVES
            and re.search(r"[\d})]\s*$", before)
        )
        if drop:
            content = " "
            power = re.match(r"\s*\^\s*(?:\{\s*[23]\s*\}|[23])", s[close + 1 :])
            if power:
                close += power.end()
        elif is_text and word in ("and", "or"):
            content = f" {word} "
        out.append(s[pos : m.start()])
        out.append(content)
        pos = close + 1


# Structure ---------------------------------------------------------------------------------
_OPEN = {"(": ")", "[": "]", "\\{": "\\}", "{": "}", "\\langle": "\\rangle"}
_OPENERS = re.compile(r"\\\{|\\langle|\\lbrace|\\begin\{[a-zA-Z*]+\}|[(\[{]")
_CLOSERS_RE = re.compile(r"\\\}|\\rangle|\\rbrace|\\end\{[a-zA-Z*]+\}|[)\]}]")


def _depth_map(s: str) -> list[int]:
    """Nesting depth at each character (brackets of any kind count, so [1, 2) nests)."""
    depth = [0] * len(s)
    d = 0
    i = 0
    while i < len(s):
        m = _OPENERS.match(s, i)
        if m:
            for k in range(i, m.end()):
                depth[k] = d
            d += 1
            i = m.end()
            continue
        m = _CLOSERS_RE.match(s, i)
        if m:
            d = max(0, d - 1)
            for k in range(i, m.end()):
                depth[k] = d
            i = m.end()
            continue
        if s[i] == "\\" and i + 1 < len(s):
            depth[i] = depth[i + 1] = d
            i += 2
            continue
        depth[i] = d
        i += 1
    return depth


def _split(s: str, pattern: re.Pattern, depth: list[int] | None = None) -> list[str]:
    depth = _depth_map(s) if depth is None else depth
    parts = []
    last = 0
    for m in pattern.finditer(s):
        if depth[m.start()] == 0:
            parts.append(s[last : m.start()])
            last = m.end()
    parts.append(s[last:])
    return [p.strip() for p in parts]


_LIST_SEP = re.compile(r",|;|\\q?quad|(?<![a-zA-Z\\])(?:and|or)(?![a-zA-Z])")
_UNION_SEP = re.compile(r"\\cup(?![a-zA-Z])|(?<=[)\]])\s*U\s*(?=[(\[])")
_REL = re.compile(r"<=|>=|!=|=|<|>")
_MEMBER = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*\\in(?![a-zA-Z])\s*")
_NAME = re.compile(
    r"(?:m?\\angle\s*|\\overline\{?|\\triangle\s*)?[A-Za-z](?:[A-Za-z0-9_{}']|\\prime)*\}?"
    r"(?:\([^()]*\))?|\\(?:alpha|beta|gamma|delta|theta|phi|lambda|mu|sigma|omega)(?:_\{?\w+\}?)?"
    r"|\((?:[A-Za-z](?:_\{?\w+\}?)?,)+[A-Za-z](?:_\{?\w+\}?)?\)"
)
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_EMPTY_WORDS = {
    "no solution", "no solutions", "no real solution", "no real solutions", "none", "empty set",
    "the empty set", "no real roots", "no roots", "no such number", "\\emptyset", "\\{\\}", "{}",
    "\\{ \\}", "{ }",
}  # fmt: skip
_CHOICE = re.compile(r"^(?:option|choice|answer)?\s*[(\[]?\s*([A-Ja-j])\s*[)\]]?(?=$|[\s.:,)])", re.I)


@lru_cache(maxsize=8192)
def parse_answer(text: str, choices: bool = False, strip_units: bool = True) -> Value:
    """The value of an answer's text (see the module docstring)."""
    s = clean(text, strip_units)
    if not s:
        return ("raw", "")
    if choices:
        m = _CHOICE.match(s)
        if m is None:
            return ("text", text_form(s))
        more = re.match(
            r"\s*(?:,|and|or|&|\\&)\s*[(\[]?\s*([A-Ja-j])\s*[)\]]?(?=$|[\s.,)])", s[m.end() :], re.I
        )
        if more:
            return ("list", (("choice", m.group(1).upper()), ("choice", more.group(1).upper())))
        return ("choice", m.group(1).upper())
    try:
        return _normalize(_parse_list(s, strip_units))
    except RecursionError:
        return ("raw", s)


def parse_pair(answer: str, gold: str, options: Options) -> tuple[Value, Value]:
    """(gold value, answer value); a gold that is a choice letter makes the answer read as one."""
    if is_choice(gold):
        return parse_answer(gold, True, options.strip_units), parse_answer(answer, True, options.strip_units)
    return parse_answer(gold, False, options.strip_units), parse_answer(answer, False, options.strip_units)


@lru_cache(maxsize=8192)
def is_choice(text: str) -> bool:
    """A gold answer that is a multiple-choice letter: `B`, `(B)`, `B)`, `\\text{(B)}`."""
    t = clean(text)
    return re.fullmatch(r"[(\[]?\s*[A-J]\s*[)\].]?|\(\s*[a-j]\s*\)", t) is not None


def _parse_list(s: str, strip_units: bool) -> Value:
    if s.lower() in _EMPTY_WORDS:
        return ("empty",)
    depth = _depth_map(s)
    if _THOUSANDS.fullmatch(s):  # `1,000`: a number, or (less likely) a list of two
        number = _parse_item(s.replace(",", ""), strip_units)
        listed = ("list", tuple(_parse_item(p, strip_units) for p in s.split(",")))
        return ("alt", (number, _normalize(listed)))
    parts = [p for p in _split(s, _LIST_SEP, depth)]
    if len(parts) > 1:
        parts = [p for p in parts if p and p != "..."]
        return ("list", tuple(_parse_item(p, strip_units) for p in parts))
    return _parse_item(s, strip_units)


def _parse_item(s: str, strip_units: bool) -> Value:
    s = s.strip()
    if s.lower() in _EMPTY_WORDS:
        return ("empty",)
    s = _MEMBER.sub("", s)
    depth = _depth_map(s)
    unions = _split(s, _UNION_SEP, depth)
    if len(unions) > 1:
        return ("union", tuple(_parse_item(p, strip_units) for p in unions))
    relations = [(m.start(), m.group()) for m in _REL.finditer(s) if depth[m.start()] == 0]
    if relations:
        operands, ops, last = [], [], 0
        for start, op in relations:
            operands.append(s[last:start].strip())
            ops.append(op)
            last = start + len(op)
        operands.append(s[last:].strip())
        if all(operands):
            name = None
            if all(op == "=" for op in ops) and _NAME.fullmatch(operands[0].replace(" ", "")):
                name = operands[0].replace(" ", "")
            values = tuple(_parse_item(o, strip_units) for o in operands)
            if name is None and all(op == "=" for op in ops) and all(_constant(v) for v in values):
                return values[-1]
            return ("rel", values, tuple(ops), name)
    matrix = _matrix(s, strip_units)
    if matrix is not None:
        return matrix
    seq = _bracketed(s, depth, strip_units)
    if seq is not None:
        return seq
    return _parse_leaf(s, strip_units)


def _constant(value: Value) -> bool:
    return value[0] == "expr" and not symbols(value[1])


# `\{x \mid x > 1\}`, `\{x \in \mathbb{R} : x > 1\}`: set-builder notation is its condition.
_SET_BUILDER = re.compile(
    r"^\s*([a-zA-Z])\s*(?:\\in\s*(?:\(-\\infty, \\infty\)|\\mathbb\s*\{?\s*[RZNQ]\s*\}?)\s*)?"
    r"(?:\\mid|\||:)\s*(.+)$",
    re.S,
)


def _bracketed(s: str, depth: list[int], strip_units: bool) -> Value | None:
    for opener in ("\\{", "\\lbrace", "\\langle", "(", "[", "{"):
        if s.startswith(opener):
            break
    else:
        return None
    closer = {"\\lbrace": "\\rbrace"}.get(opener, _OPEN.get(opener, ""))
    # The bracket opened at 0 must close at the very end.
    for end_token in (")", "]", "\\}", "\\rbrace", "\\rangle", "}"):
        if s.endswith(end_token):
            break
    else:
        return None
    inner = s[len(opener) : len(s) - len(end_token)]
    inner_depth = _depth_map(inner)
    if inner_depth and (min(inner_depth) < 0 or _closes_early(inner)):
        return None
    is_set = opener in ("\\{", "\\lbrace", "{")
    if is_set and end_token not in ("\\}", "\\rbrace", "}"):
        return None
    builder = _SET_BUILDER.match(inner) if is_set else None
    if builder is not None:
        condition = _parse_list(builder.group(2).strip(), strip_units)
        if condition[0] in ("rel", "list", "union"):
            return condition
    items = [p for p in _split(inner, re.compile(r","), inner_depth)]
    if is_set:
        if opener == "{" and len(items) < 2:
            return None  # a LaTeX group, not a set
        if not inner.strip():
            return ("empty",)
        return ("seq", "{", "}", tuple(_parse_item(p, strip_units) for p in items))
    if len(items) < 2:
        if opener in ("(", "[") and end_token == {"(": ")", "[": "]"}[opener]:
            return None  # (5) is 5: parsed as an expression
        return None
    open_kind = "(" if opener in ("(", "\\langle") else "["
    close_kind = {")": ")", "\\rangle": ")", "]": "]"}.get(end_token)
    if close_kind is None:
        return None
    del closer
    return ("seq", open_kind, close_kind, tuple(_parse_item(p, strip_units) for p in items))


def _closes_early(inner: str) -> bool:
    """True when the first bracket closes before the end: `(1)(2)` is not one bracketed item."""
    d = 0
    i = 0
    while i < len(inner):
        m = _OPENERS.match(inner, i)
        if m:
            d += 1
            i = m.end()
            continue
        m = _CLOSERS_RE.match(inner, i)
        if m:
            d -= 1
            if d < 0:
                return True
            i = m.end()
            continue
        i += 2 if inner[i] == "\\" else 1
    return d != 0


# `\\left[\\begin{array}{cc}...\\end{array}\\right]`: brackets drawn around an array are the matrix's.
_MATRIX = re.compile(
    r"^(?:\[\s*|\(\s*)?\\begin\{([a-zA-Z]*matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}(?:\s*\]|\s*\))?$",
    re.S,
)


def _matrix(s: str, strip_units: bool) -> Value | None:
    m = _MATRIX.match(s)
    if m is None:
        return None
    rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip() and r.strip() != "\\hline"]
    cells = tuple(tuple(_parse_item(c, strip_units) for c in row.split("&")) for row in rows)
    if not cells or len({len(r) for r in cells}) != 1:
        return ("raw", s)
    return ("matrix", cells)


_UNIT_LETTERS = "mgsLlhKNJWVAC"
_KNOWN_UNITS = (
    r"cm|mm|km|nm|kg|mg|ml|mL|ft|yd|mi|hr|hrs|min|mins|sec|secs|mph|kph|lb|lbs|oz|deg|degrees|"
    r"units|sq|cm\^2|m\^2|km\^2|in\^2|ft\^2|cm\^3|m\^3"
)
_TRAILING_WORDS = re.compile(
    r"(?<=[\d})])\s+(?:(?:[a-zA-Z]{2,}\.?)(?:\s+[a-zA-Z]{2,}\.?)*)"
    r"(?:\s*(?:/|per)\s*[a-zA-Z]+)?(?:\s*\^\s*\{?[23]\}?)?\s*$"
)
_TRAILING_LETTER = re.compile(
    r"(?<=[\d})])\s+[" + _UNIT_LETTERS + r"](?:\s*/\s*[a-zA-Z]+)?(?:\s*\^\s*\{?[23]\}?)?\s*$"
)
_ATTACHED_UNIT = re.compile(r"(?<=\d)(?:" + _KNOWN_UNITS + r"|m|s|g|L)(?:\s*/\s*[a-zA-Z]+)?\s*$")
_TEXT = re.compile(r"[A-Za-z][A-Za-z\s'\-]*")
_ARTICLES = re.compile(r"^(?:the|a|an)\s+")
_MIXED = re.compile(r"([-+]?)(\d+)\s*\\frac\s*\{(\d+)\}\s*\{(\d+)\}|([-+]?)(\d+)\s+(\d+)\s*/\s*(\d+)")


_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+|\\frac\{\d+\}\{\d+\})")


def _strip_units(s: str) -> str:
    """`5 cm`, `12 square units`, `2\\sqrt{3} meters` -> the value. A single letter (`5 m`, `10m`)
    or a unit written against the number only counts after a plain number: `3 + 2m` keeps its m."""
    for _ in range(3):
        m = _TRAILING_WORDS.search(s)
        short = m is None
        m = m or _TRAILING_LETTER.search(s) or _ATTACHED_UNIT.search(s)
        if m is None:
            return s
        words = re.findall(r"[a-zA-Z]+", m.group())
        if any(w.lower() in MATH_WORDS for w in words):
            return s
        rest = s[: m.start()].strip()
        if not rest or (short and not _PLAIN_NUMBER.fullmatch(rest)):
            return s
        s = rest
    return s


_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def text_form(s: str) -> str:
    t = s.lower().strip()
    t = re.sub(r"[\"'`]", "", t)
    t = re.sub(r"\s+", " ", t)
    t = _ARTICLES.sub("", t)
    return t.strip(" .,;:!?")


def _parse_leaf(s: str, strip_units: bool) -> Value:
    percent = False
    s = s.strip()
    if s.startswith("\\pm") or s.startswith("\\mp") or "\\pm" in s or "\\mp" in s:
        plus = s.replace("\\pm", "+", 1).replace("\\mp", "-", 1)
        minus = s.replace("\\pm", "-", 1).replace("\\mp", "+", 1)
        if "\\pm" not in plus and "\\mp" not in plus:
            return ("list", (_parse_leaf(plus, strip_units), _parse_leaf(minus, strip_units)))
    if strip_units:
        s = _strip_units(s)
    if s.endswith("%"):
        percent = True
        s = s[:-1].strip()
        if strip_units:
            s = _strip_units(s)
    if _TEXT.fullmatch(s):
        if text_form(s) in _NUMBER_WORDS:  # "five" is 5
            return ("expr", ("num", Fraction(_NUMBER_WORDS.index(text_form(s)))), percent)
        words = re.findall(r"[A-Za-z]+", s)
        if any(len(w) > 1 and w.lower() not in MATH_WORDS for w in words):
            return ("text", text_form(s))
    m = _MIXED.fullmatch(s)
    if m:
        sign, whole, num, den = m.group(1, 2, 3, 4) if m.group(2) else m.group(5, 6, 7, 8)
        if int(den) != 0 and int(num) < int(den):
            value = int(whole) + Fraction(int(num), int(den))
            return ("expr", ("num", -value if sign == "-" else value), percent)
    if re.fullmatch(r"[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?", s):  # 1 000 000
        s = s.replace(" ", "")
    try:
        return ("expr", parse_expr(s), percent)
    except ExprError:
        return ("raw", s + ("%" if percent else ""))


def _normalize(value: Value) -> Value:
    kind = value[0]
    if kind == "list":
        items: list[Value] = []
        for item in value[1]:
            item = _normalize(item)
            items.extend(item[1] if item[0] == "list" else [item])
        names = [i[3] for i in items if i[0] == "rel" and i[3] is not None and len(i[1]) == 2]
        if len(names) == len(items) > 1 and len(set(names)) == len(names):
            return ("map", tuple((i[3], i[1][-1]) for i in items))
        if names:  # x = 1, x = 2 / x = 1 or 2: the values
            items = [i[1][-1] if i[0] == "rel" and i[3] is not None else i for i in items]
        return ("list", tuple(items)) if len(items) != 1 else items[0]
    if kind == "rel":
        operands = tuple(_normalize(o) for o in value[1])
        if value[3] is not None and operands[-1][0] == "list":  # x = 1, 2 arrives as a list
            return operands[-1]
        return ("rel", operands, value[2], value[3])
    if kind == "seq":
        items = [_normalize(i) for i in value[3]]
        if value[1] == "{":  # \{\pm 1\} holds two elements
            items = [x for i in items for x in (i[1] if i[0] == "list" else [i])]
        return ("seq", value[1], value[2], tuple(items))
    if kind == "union":
        return ("union", tuple(_normalize(i) for i in value[1]))
    return value


# Rendering ---------------------------------------------------------------------------------
def render_value(value: Value) -> str:
    """The canonical form a verdict shows."""
    kind = value[0]
    if kind == "expr":
        try:
            number = exact_value(value[1])
            text = str(number)
        except (NotExact, TooBig, ZeroDivisionError):
            text = render(value[1])
        return text + ("%" if value[2] else "")
    if kind == "text":
        return f'"{value[1]}"'
    if kind == "choice":
        return f"({value[1]})"
    if kind == "seq":
        opener = "{" if value[1] == "{" else value[1]
        return opener + ", ".join(render_value(i) for i in value[3]) + value[2]
    if kind == "list":
        return ", ".join(render_value(i) for i in value[1])
    if kind == "map":
        return ", ".join(f"{name} = {render_value(v)}" for name, v in value[1])
    if kind == "union":
        return " U ".join(render_value(i) for i in value[1])
    if kind == "rel":
        parts = [render_value(value[1][0])]
        for op, operand in zip(value[2], value[1][1:], strict=True):
            parts.append(f" {op} {render_value(operand)}")
        return "".join(parts)
    if kind == "matrix":
        return "[" + ", ".join("[" + ", ".join(render_value(c) for c in row) + "]" for row in value[1]) + "]"
    if kind == "empty":
        return "{}"
    if kind == "alt":
        return render_value(value[1][0])
    return f"unparsed: {value[1]}"


# Comparison --------------------------------------------------------------------------------
def within_integers(x: Fraction, y: Fraction) -> bool:
    """Two exact integers: a count off by one is wrong however large it is (10^100 + 1 is not
    10^100), so the relative tolerance, meant for decimals, does not apply."""
    return x.denominator == 1 and y.denominator == 1


# A point where an expression is undefined (division by zero, log of 0, ordering a complex number).
_UNDEFINED_HERE = (NotExact, ZeroDivisionError, ValueError, OverflowError, TypeError)
_POINTS = ("0.5772156649015329", "1.6180339887498949", "-0.7390851332151607", "2.2360679774997897",
           "-1.4142135623730951", "0.3183098861837907", "1.3247179572447460", "-2.5029078750958928")  # fmt: skip
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}


class Comparer:
    """Decides equality without sympy; None means "cannot tell here" (the worker decides)."""

    def __init__(self, options: Options):
        self.options = options
        self.tol = max(options.rel_tol, 1e-40)
        self.why = "not equal"

    def fail(self, why: str) -> bool:
        self.why = why
        return False

    # Entry -------------------------------------------------------------------------------
    def equal(self, gold: Value, pred: Value) -> bool | None:
        g, p = gold[0], pred[0]
        if g == "alt" or p == "alt":
            options = [(a, pred) for a in gold[1]] if g == "alt" else [(gold, b) for b in pred[1]]
            results = [self.equal(a, b) for a, b in options]
            return True if True in results else (None if None in results else False)
        if p == "list" and len(pred[1]) == 1:
            return self.equal(gold, pred[1][0])
        if g == "list" and len(gold[1]) == 1:
            return self.equal(gold[1][0], pred)
        # An assignment stands for its value against anything but another relation.
        if p == "rel" and pred[3] is not None and g != "rel":
            return self.equal(gold, pred[1][-1])
        if g == "rel" and gold[3] is not None and p != "rel":
            return self.equal(gold[1][-1], pred)
        if g == "raw" or p == "raw":
            return self.raw(gold, pred)
        if {g, p} & {"rel", "list"} and {g, p} & {"seq", "union"}:
            as_set = self.inequality_set(gold if g in ("rel", "list") else pred)
            if as_set is not None:
                return self.equal(as_set, pred) if g in ("rel", "list") else self.equal(gold, as_set)
        if g == p == "expr":
            return self.expr_equal(gold, pred)
        if g == p == "text":
            return gold[1] == pred[1] or self.fail("different text")
        if g == p == "choice":
            return gold[1] == pred[1] or self.fail("different choice")
        if g == p == "empty":
            return True
        if {g, p} == {"empty", "seq"}:
            seq = gold if g == "seq" else pred
            return (seq[1] == "{" and not seq[3]) or self.fail("empty set against a non-empty one")
        if g == p == "seq":
            return self.seq_equal(gold, pred)
        if {g, p} == {"seq", "expr"}:  # {2} and 2: a one-element solution set
            seq, other = (gold, pred) if g == "seq" else (pred, gold)
            if seq[1] == "{" and len(seq[3]) == 1:
                return self.equal(seq[3][0], other) if g == "seq" else self.equal(other, seq[3][0])
        if g == p == "list":
            return self.unordered(gold[1], pred[1])
        if {g, p} == {"list", "seq"}:
            seq, listed = (gold, pred) if g == "seq" else (pred, gold)
            if seq[1] == "{":
                return self.unordered(
                    gold[-1] if g == "seq" else gold[1], pred[-1] if p == "seq" else pred[1]
                )
            return self.ordered(gold[-1] if g == "seq" else gold[1], pred[-1] if p == "seq" else pred[1])
        if g == p == "map":
            names_g = [n for n, _ in gold[1]]
            names_p = [n for n, _ in pred[1]]
            if sorted(names_g) != sorted(names_p):
                return self.fail("different variables")
            by_name = dict(pred[1])
            return self.all_of(self.equal(v, by_name[n]) for n, v in gold[1])
        if "map" in (g, p) and {g, p} <= {"map", "seq", "list"}:
            a = [v for _, v in gold[1]] if g == "map" else list(gold[-1] if g == "seq" else gold[1])
            b = [v for _, v in pred[1]] if p == "map" else list(pred[-1] if p == "seq" else pred[1])
            if (g == "seq" and gold[1] == "{") or (p == "seq" and pred[1] == "{"):
                return self.fail("a set against named values")
            return self.ordered(tuple(a), tuple(b))
        if g == p == "matrix":
            if len(gold[1]) != len(pred[1]) or len(gold[1][0]) != len(pred[1][0]):
                return self.fail("different matrix shapes")
            return self.ordered(sum(gold[1], ()), sum(pred[1], ()))
        if {g, p} == {"matrix", "seq"}:
            matrix, seq = (gold, pred) if g == "matrix" else (pred, gold)
            rows = _nested_rows(seq)
            if rows is not None:  # [[1, 2], [3, 4]] written as nested brackets
                as_matrix = ("matrix", rows)
                return self.equal(gold, as_matrix) if g == "matrix" else self.equal(as_matrix, pred)
            if seq[1] == "{" or (len(matrix[1]) > 1 and len(matrix[1][0]) > 1):
                return self.fail("a matrix against a sequence")
            if seq[1] != "(" or seq[2] != ")":
                return self.fail("a vector against an interval")
            flat = sum(matrix[1], ())
            return self.ordered(flat, seq[3]) if g == "matrix" else self.ordered(seq[3], flat)
        if g == p == "union":
            return self.unordered(gold[1], pred[1])
        if g == p == "rel":
            return self.rel_equal(gold, pred)
        if p == "list":
            return self.fail("several answers for one")
        if g == "list":
            return self.fail("one answer for several")
        return self.fail(f"{_KIND_NAMES.get(g, g)} against {_KIND_NAMES.get(p, p)}")

    def raw(self, gold: Value, pred: Value) -> bool | None:
        if (
            gold[0] == pred[0] == "raw"
            and gold[1]
            and re.sub(r"\s", "", gold[1]) == re.sub(r"\s", "", pred[1])
        ):
            return True
        return None  # the sympy worker parses what this parser cannot

    def all_of(self, results) -> bool | None:
        undecided = False
        for result in results:
            if result is False:
                return False
            if result is None:
                undecided = True
        return None if undecided else True

    def ordered(self, a: tuple, b: tuple) -> bool | None:
        if len(a) != len(b):
            return self.fail("different number of elements")
        return self.all_of(self.equal(x, y) for x, y in zip(a, b, strict=True))

    def unordered(self, a: tuple, b: tuple) -> bool | None:
        if len(a) != len(b):
            return self.fail("different number of answers")
        if len(a) > 64:
            return self.ordered(tuple(sorted(a, key=render_value)), tuple(sorted(b, key=render_value)))
        table = [[self.equal(x, y) for y in b] for x in a]
        if _perfect_matching(table, {True}):
            return True
        if _perfect_matching(table, {True, None}):
            return None
        return self.fail("different answers")

    def seq_equal(self, gold: Value, pred: Value) -> bool | None:
        if (gold[1] == "{") != (pred[1] == "{"):
            return self.fail("a set against a tuple or interval")
        if gold[1] == "{":
            return self.unordered(gold[3], pred[3])
        if (gold[1], gold[2]) != (pred[1], pred[2]):
            return self.fail(f"brackets {pred[1]}{pred[2]} where the gold has {gold[1]}{gold[2]}")
        return self.ordered(gold[3], pred[3])

    # Numbers and expressions -------------------------------------------------------------
    def expr_equal(self, gold: Value, pred: Value) -> bool | None:
        mode = self.options.percent
        hundred = ("num", Fraction(100))

        def readings(value: Value, other: Value) -> list[Node]:
            if not value[2] or other[2]:
                return [value[1]]
            scaled = ("div", value[1], hundred)
            return {"either": [scaled, value[1]], "fraction": [scaled], "number": [value[1]]}[mode]

        results = [self.leaf(a, b) for a in readings(gold, pred) for b in readings(pred, gold)]
        if True in results:
            return True
        return (
            None
            if None in results
            else self.fail(self.why if self.why != "not equal" else "different values")
        )

    def leaf(self, a: Node, b: Node) -> bool | None:
        if a == b:  # the same tree: equal without arithmetic (even 10^{10^{10}})
            return True
        try:
            x, y = exact_value(a), exact_value(b)
        except (NotExact, TooBig, ZeroDivisionError):
            pass
        else:
            if x == y or (
                not within_integers(x, y)
                and abs(x - y) <= Fraction(self.options.rel_tol) * max(abs(x), abs(y))
            ):
                return True
            return self.fail("different values")
        return self.numeric(a, b)

    def numeric(self, a: Node, b: Node) -> bool | None:
        names = sorted(symbols(a) | symbols(b))
        ctx = mp()
        points = [{}] if not names else [
            {n: ctx.mpf(_POINTS[(t * 3 + k * 5) % len(_POINTS)]) + k * ctx.mpf("0.0137") for k, n in enumerate(names)}
            for t in range(6)
        ]  # fmt: skip
        valid = 0
        for env in points:
            try:
                x, y = numeric_value(a, env), numeric_value(b, env)
            except TooBig:
                return None
            except _UNDEFINED_HERE:
                continue
            close = self.close(x, y)
            if close is None:
                return None
            if not close:
                return self.fail("different values" if not names else "different expressions")
            valid += 1
        if valid >= (1 if not names else 3):
            return True
        return None

    def close(self, x: Any, y: Any) -> bool | None:
        ctx = mp()
        if ctx.isinf(x) or ctx.isinf(y):
            return bool(x == y)
        diff = abs(x - y)
        return bool(diff <= self.tol * max(abs(x), abs(y)) or diff <= ctx.mpf("1e-45"))

    # Relations ---------------------------------------------------------------------------
    def rel_equal(self, gold: Value, pred: Value) -> bool | None:
        if gold[3] is not None and pred[3] is not None:
            if _name_key(gold[3]) != _name_key(pred[3]):
                return self.fail("different variables")
            return self.equal(gold[1][-1], pred[1][-1])
        as_g, as_p = self.inequality_set(gold), self.inequality_set(pred)
        if as_g is not None and as_p is not None:
            return self.equal(as_g, as_p)
        if len(gold[1]) == len(pred[1]) == 2 and all(v[0] == "expr" for v in gold[1] + pred[1]):
            op_g, op_p = gold[2][0], pred[2][0]
            if op_p != op_g and _FLIP[op_p] != op_g:
                return self.fail("different relations")
            f = ("add", (gold[1][0][1], ("neg", gold[1][1][1])))
            h = ("add", (pred[1][0][1], ("neg", pred[1][1][1])))
            sign = 1 if op_p == op_g else -1
            return self.proportional(f, h, sign if op_g not in ("=", "!=") else 0)
        if gold[2] != pred[2]:
            flipped = tuple(_FLIP[o] for o in reversed(pred[2]))
            if flipped == gold[2]:
                return self.ordered(gold[1], tuple(reversed(pred[1])))
            return self.fail("different relations")
        return self.ordered(gold[1], pred[1])

    def proportional(self, f: Node, h: Node, sign: int) -> bool | None:
        """f = c*h for a constant c != 0 (c > 0 when sign is 1, c < 0 when -1)."""
        names = sorted(symbols(f) | symbols(h))
        if not names:
            return self.fail("relations between numbers")
        ctx = mp()
        ratios = []
        for t in range(6):
            env = {
                n: ctx.mpf(_POINTS[(t * 3 + k * 5) % len(_POINTS)]) + k * ctx.mpf("0.0137")
                for k, n in enumerate(names)
            }
            try:
                x, y = numeric_value(f, env), numeric_value(h, env)
            except TooBig:
                return None
            except _UNDEFINED_HERE:
                continue
            if y == 0 or x == 0:
                if self.close(x, y):
                    continue
                return self.fail("different equations")
            ratios.append(x / y)
        if len(ratios) < 3:
            return None
        first = ratios[0]
        if ctx.im(first) != 0 or (sign and (first > 0) != (sign > 0)):
            return self.fail("different inequalities")
        if all(self.close(r, first) for r in ratios[1:]):
            return True
        return self.fail("different equations")

    def inequality_set(self, value: Value) -> Value | None:
        """`x > 3` as the interval (3, oo); `x < 1 or x > 2` as a union; None if not that shape."""
        if value[0] == "list":
            parts = [self.inequality_set(v) for v in value[1]]
            if any(p is None for p in parts):
                return None
            return ("union", tuple(parts))  # type: ignore[arg-type]
        if value[0] == "rel" and value[2] == ("!=",):
            side = [o for o in value[1] if o[0] == "expr" and o[1][0] == "sym"]
            other = [o for o in value[1] if o not in side]
            if len(side) == 1 and len(other) == 1 and other[0][0] == "expr" and not symbols(other[0][1]):
                inf = ("expr", ("const", "oo"), False)
                minus_inf = ("expr", ("neg", ("const", "oo")), False)
                return (
                    "union",
                    (("seq", "(", ")", (minus_inf, other[0])), ("seq", "(", ")", (other[0], inf))),
                )
            return None
        if value[0] != "rel" or any(op in ("=", "!=") for op in value[2]):
            return None
        operands = value[1]
        if not all(o[0] == "expr" for o in operands):
            return None
        variables = [i for i, o in enumerate(operands) if o[1][0] == "sym"]
        if len(variables) != 1 or any(symbols(o[1]) for i, o in enumerate(operands) if i != variables[0]):
            return None
        v = variables[0]
        ops = value[2]
        inf = ("expr", ("const", "oo"), False)
        minus_inf = ("expr", ("neg", ("const", "oo")), False)
        lo, hi, lo_open, hi_open = minus_inf, inf, True, True
        for i, op in enumerate(ops):
            left, right = i, i + 1
            if v not in (left, right):
                continue
            bound = operands[right] if left == v else operands[left]
            # Normalize to "variable op bound".
            rel = op if left == v else _FLIP[op]
            if rel in ("<", "<="):
                hi, hi_open = bound, rel == "<"
            else:
                lo, lo_open = bound, rel == ">"
        return ("seq", "(" if lo_open else "[", ")" if hi_open else "]", (lo, hi))


_KIND_NAMES = {"expr": "a value", "text": "text", "seq": "a tuple or interval", "rel": "a relation",
               "matrix": "a matrix", "empty": "the empty set", "choice": "a choice", "union": "a union",
               "map": "named values", "list": "several answers"}  # fmt: skip


def _nested_rows(seq: Value) -> tuple | None:
    """The rows of `[[1, 2], [3, 4]]` (a sequence of equally long bracketed rows), else None."""
    rows = seq[3]
    if seq[1] == "{" or len(rows) < 1 or any(r[0] != "seq" or r[1] == "{" for r in rows):
        return None
    if len({len(r[3]) for r in rows}) != 1:
        return None
    return tuple(r[3] for r in rows)


def _name_key(name: str) -> str:
    return re.sub(r"[{}\s]", "", name)


def _perfect_matching(table: list[list[Any]], allowed: set) -> bool:
    n = len(table)
    match: list[int] = [-1] * n  # column -> row

    def augment(row: int, seen: list[bool]) -> bool:
        for col in range(n):
            if table[row][col] in allowed and not seen[col]:
                seen[col] = True
                if match[col] == -1 or augment(match[col], seen):
                    match[col] = row
                    return True
        return False

    return all(augment(row, [False] * n) for row in range(n))
