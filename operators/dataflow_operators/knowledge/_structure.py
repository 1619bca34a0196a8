"""The structure of an extracted document: sections under Markdown headings, blocks separated by
blank lines, sentences inside a block; every piece as a character span of the original text, so
that a chunk is always an exact substring of its document."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before whitespace
# and an upper-case letter, digit or opening quote; abbreviations and initials do not end one.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st mt no vs etc e.g i.e fig ca approx jr sr dept univ inc ltd co cf al".split()
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass
class Section:
    headings: list[str]  # the heading path, outermost first
    blocks: list[Span]  # body blocks (paragraphs, lists, tables), in order


def sections(text: str) -> list[Section]:
    """Sections of `text` under its Markdown headings (a preamble has an empty heading path)."""
    out: list[Section] = [Section([], [])]
    stack: list[tuple[int, str]] = []
    block_start: int | None = None
    position = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        heading = _HEADING.match(stripped)
        if heading or not stripped:
            if block_start is not None:
                out[-1].blocks.append(Span(block_start, _rstrip_end(text, block_start, position)))
                block_start = None
            if heading:
                level = len(heading.group(1))
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, heading.group(2).strip()))
                out.append(Section([title for _, title in stack], []))
        elif block_start is None:
            block_start = position + (len(line) - len(line.lstrip()))
        position += len(line)
    if block_start is not None:
        out[-1].blocks.append(Span(block_start, _rstrip_end(text, block_start, position)))
    return [section for section in out if section.blocks]


def _rstrip_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def sentences(text: str, span: Span) -> list[Span]:
    """Sentences of a prose block; lines of a list or table (each line is a unit of its own)."""
    block = text[span.start : span.end]
    lines = block.split("\n")
    if len(lines) > 1 and all(_is_structured_line(line) for line in lines if line.strip()):
        return _line_spans(block, span.start)
    out: list[Span] = []
    start = 0
    for match in _SENTENCE_END.finditer(block):
        if _is_abbreviation(block, match.start()):
            continue
        end = match.start() + 1
        while end < len(block) and block[end] in "\"'\u201d\u2019)]":
            end += 1
        out.append(Span(span.start + start, span.start + end))
        start = match.end()
    if start < len(block) and block[start:].strip():
        out.append(Span(span.start + start, span.end))
    return out


def _is_structured_line(line: str) -> bool:
    stripped = line.strip()
    return bool(re.match(r"^(?:[-*+•]|\d{1,3}[.)])\s", stripped)) or " | " in stripped


def _line_spans(block: str, offset: int) -> list[Span]:
    out = []
    position = 0
    for line in block.split("\n"):
        if line.strip():
            lead = len(line) - len(line.lstrip())
            out.append(Span(offset + position + lead, offset + position + len(line.rstrip())))
        position += len(line) + 1
    return out


def _is_abbreviation(block: str, dot: int) -> bool:
    if block[dot] != ".":
        return False
    word = re.search(r"([A-Za-z][A-Za-z.]*)$", block[:dot])
    if not word:
        return False
    token = word.group(1).lower()
    return token in _ABBREVIATIONS or (len(token) == 1 and word.group(1).isupper())


def words(text: str, span: Span) -> list[Span]:
    """Whitespace-separated words of a span (the last resort for an over-long sentence)."""
    return [
        Span(span.start + m.start(), span.start + m.end())
        for m in re.finditer(r"\S+", text[span.start : span.end])
    ]
