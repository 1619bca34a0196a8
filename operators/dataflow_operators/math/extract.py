"""Find the final answer in a model's reply (or in a gold answer).

In order:
1. The last `\\boxed{...}` / `\\fbox{...}` (braces matched, nested ones included; `\\boxed 5` too).
   Boxes that close one statement together (`\\boxed{2} and \\boxed{3}`, `$x=\\boxed{2}$ or
   $x=\\boxed{3}$`) are one answer with several parts. A box opened after the last closed one
   and never closed means the reply was cut off: there is no answer.
2. Otherwise the last explicit statement: "final answer is ...", "the answer is ...",
   "Answer: ...", a GSM8K-style `#### ...` line.
3. Otherwise, when the whole text is one short line, that line (a bare answer).

A statement that hedges ("probably 5", "maybe 3") is no answer; "3 or 4" is two answers, which
never match one gold value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ANSWER_CHARS = 1000


@dataclass(frozen=True)
class Extraction:
    answer: str | None  # the final answer's text, None when there is none
    source: str  # "boxed" | "statement" | "bare" | "none"
    reason: str | None = None  # why there is no answer
    parts: int = 1  # how many answers were given together (grouped boxes)


@dataclass(frozen=True)
class Box:
    start: int  # index of the backslash of `\boxed`
    end: int  # index after the closing brace (or after the bare token)
    content: str | None  # None: opened but never closed (truncated)


_BOX = re.compile(r"\\(?:boxed|fbox|framebox)(?![a-zA-Z])")


def find_boxes(text: str) -> list[Box]:
    """Every top-level box in order (a box inside a box is part of its content)."""
    boxes: list[Box] = []
    pos = 0
    while True:
        m = _BOX.search(text, pos)
        if m is None:
            return boxes
        i = m.end()
        if text.startswith("[", i):  # \framebox[width]{...}
            close = text.find("]", i)
            i = close + 1 if close != -1 else i
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            close = match_brace(text, i)
            if close is None:
                boxes.append(Box(m.start(), len(text), None))
                return boxes
            boxes.append(Box(m.start(), close + 1, _unbox(text[i + 1 : close])))
            pos = close + 1
        else:  # `\boxed 5`, `\boxed5`: one token
            token = re.match(r"[^\s$\\]+", text[i:])
            if token is None:
                boxes.append(Box(m.start(), len(text), None))
                return boxes
            boxes.append(Box(m.start(), i + token.end(), token.group()))
            pos = i + token.end()


def match_brace(text: str, open_index: int) -> int | None:
    """Index of the `}` matching the `{` at open_index; escaped braces (`\\{`) do not count."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _unbox(content: str) -> str:
    inner = content.strip()
    boxes = find_boxes(inner)
    if (
        len(boxes) == 1
        and boxes[0].start == 0
        and boxes[0].end == len(inner)
        and boxes[0].content is not None
    ):
        return boxes[0].content.strip()
    return inner


# Text allowed between boxes that give one answer together: punctuation, math delimiters,
# "and"/"or", spacing, and a short assignment (`x =`) in front of the next box.
_JOINER = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;&~]|\\[,;:!]|\\q?quad|\\text\{\s*(?:and|or|,)\s*\}|\band\b|\bor\b"
    r"|\\(?:mathrm|text)\{[a-zA-Z]{1,3}\}\s*=|[a-zA-Z](?:_\{?\w{1,3}\}?)?\s*=|\\[a-zA-Z]+\s*=)*",
)


def _joined(between: str) -> bool:
    return len(between) <= 40 and "\n\n" not in between and _JOINER.fullmatch(between) is not None


# Statements, each found anywhere; the one starting last wins.
_STATEMENTS = [
    re.compile(r"final\s+answer\s*(?:is|:|=|would\s+be)?\s*:?", re.I),
    re.compile(r"\b(?:the\s+)?answer\s+(?:is|would\s+be|should\s+be|=)\s*:?", re.I),
    re.compile(r"\bthe\s+correct\s+(?:option|choice)\s+is\s*:?", re.I),
    re.compile(r"(?:^|\n)\s*(?:\*\*|__)?\s*answer\s*(?:\*\*|__)?\s*:(?:\*\*|__)?", re.I),
    re.compile(r"\\text(?:bf)?\{\s*answer\s*:?\s*\}\s*:?", re.I),
    re.compile(r"(?:^|\n)\s*####\s*"),
]
_HEDGES = re.compile(
    r"\b(?:maybe|perhaps|possibly|probably|likely|i\s+think|i\s+believe|i\s+guess|not\s+sure|"
    r"either|(?:could|might|may)(?:\s+also)?\s+be|unsure|or\s+possibly)\b",
    re.I,
)
_APPROX = re.compile(r"^(?:approximately|approx\.?|about|around|roughly|exactly|just|only)\s+", re.I)


def extract_answer(text: str | None, bare_max_chars: int | None = 120) -> Extraction:
    """The final answer of `text` (see the module docstring). Without a box or a statement, a
    one-line text of at most `bare_max_chars` is the answer (0: never; None: any text, for gold
    fields that hold just the answer)."""
    if text is None or not text.strip():
        return Extraction(None, "none", "empty reply")
    boxes = find_boxes(text)
    if boxes and boxes[-1].content is None:
        return Extraction(None, "none", "truncated \\boxed{}")
    closed = [b for b in boxes if b.content is not None and b.content.strip()]
    if boxes and not closed:
        return Extraction(None, "none", "empty \\boxed{}")
    if closed:
        group = [closed[-1]]
        for box in reversed(closed[:-1]):
            if not _joined(text[box.end : group[0].start]):
                break
            group.insert(0, box)
        contents: list[str] = []
        for box in group:
            content = box.content.strip()  # type: ignore[union-attr]
            if content not in contents:
                contents.append(content)
        answer = ", ".join(contents)
        return _checked(Extraction(answer, "boxed", parts=len(contents)))
    statement = _last_statement(text)
    if statement is not None:
        return statement
    line = text.strip()
    if bare_max_chars is None or ("\n" not in line and len(line) <= bare_max_chars):
        if bare_max_chars is not None and _HEDGES.search(_without_math(line)):
            return Extraction(None, "none", "hedged answer")
        return _checked(Extraction(_strip_statement(line), "bare"))
    return Extraction(None, "none", "no final answer")


def _checked(extraction: Extraction) -> Extraction:
    if extraction.answer is not None and len(extraction.answer) > MAX_ANSWER_CHARS:
        return Extraction(None, "none", "answer too long")
    if extraction.answer is not None and not extraction.answer.strip():
        return Extraction(None, "none", "empty answer")
    return extraction


def _last_statement(text: str) -> Extraction | None:
    best: re.Match | None = None
    for pattern in _STATEMENTS:
        for m in pattern.finditer(text):
            if (
                best is None
                or m.start() > best.start()
                or (m.start() == best.start() and m.end() > best.end())
            ):
                best = m
    if best is None:
        return None
    rest = text[best.end() :]
    # The patterns end in `\s*`, so `rest` may already start on a later line than the statement.
    lines = [ln.strip() for ln in rest.split("\n")]
    if not lines[0].strip(" *_:"):  # "Final Answer:" with the answer on the next line(s)
        lines = lines[1:]
    following = [ln for ln in lines if ln]
    if not following:
        return Extraction(None, "none", "no final answer")
    line = following[0]
    if line in ("$$", "\\["):  # a display block: take it whole
        block = []
        for ln in following[1:]:
            if ln in ("$$", "\\]"):
                break
            block.append(ln)
        line = " ".join(block)
    answer = _strip_statement(line)
    if not answer:
        return Extraction(None, "none", "no final answer")
    line_start = text.rfind("\n", 0, best.start()) + 1
    if _HEDGES.search(_without_math(text[line_start : best.start()] + " " + answer)):
        return Extraction(None, "none", "hedged answer")
    return _checked(Extraction(answer, "statement"))


def _without_math(text: str) -> str:
    return re.sub(r"\$[^$]*\$", " ", text)


_TRAILERS = re.compile(r"\s*(?:\.\s*)?(?:I hope it is correct|Hope this helps|Let me know)\b.*$", re.I | re.S)


def _strip_statement(line: str) -> str:
    """The answer itself from the rest of a statement line: markdown, delimiters, sentence end."""
    s = _TRAILERS.sub("", line).strip()
    s = re.sub(r"^(?:\*\*|__)+|(?:\*\*|__)+[.;,!]*$", "", s).strip()  # "**24**."
    s = s.strip(" :").strip()
    # Cut at the end of the first sentence outside math: ". " followed by a capital letter.
    s = re.split(r"(?<!\\)\.\s+(?=[A-Z])", s, maxsplit=1)[0]
    s = _APPROX.sub("", s)
    s = _math_segments(s)
    s = re.sub(
        r",?\s+(?:which|that is|i\.e\.|or equivalently|since|because|as)\b.*$", "", s, flags=re.S | re.I
    )
    s = re.sub(r"(?<=\S)\s+\([^()]*[a-zA-Z]{2,}[^()]*\)\s*\.?$", "", s)  # "12 (a dozen)"
    s = s.rstrip(" .;,!")
    if s.startswith("$$") and s.endswith("$$") and len(s) > 4:
        s = s[2:-2]
    elif s.startswith("\\[") and s.endswith("\\]"):
        s = s[2:-2]
    elif s.startswith("\\(") and s.endswith("\\)"):
        s = s[2:-2]
    s = s.strip().rstrip(".").strip()
    return s


_SEGMENT = re.compile(r"(?<!\\)\$\$?(.+?)(?<!\\)\$\$?", re.S)


def _math_segments(s: str) -> str:
    """ "$\\frac{1}{2}$, which is 0.5" -> "\\frac{1}{2}": the first math segment, plus the ones
    joined to it by "and"/"or"/commas ("$x = 3$ or $x = 4$"), when only words precede it."""
    segments = list(_SEGMENT.finditer(s))
    if not segments or re.search(r"[\d+\-*/^=]", s[: segments[0].start()]):
        return s
    parts = [segments[0].group(1)]
    for previous, segment in zip(segments, segments[1:], strict=False):
        between = s[previous.end() : segment.start()]
        if not re.fullmatch(r"\s*(?:,|;|and|or)?\s*", between):
            break
        parts.append(between.strip() or ",")
        parts.append(segment.group(1))
    return " ".join(p for p in parts).replace(" , ", ", ")
