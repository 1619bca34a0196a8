"""Checking short answers and quoted spans, shared by the QA operators (rag, knowledge).

Answer scoring follows the definition of the SQuAD evaluation (Rajpurkar et al. 2016, "SQuAD:
100,000+ Questions for Machine Comprehension of Text", section 6, and its official script): both
strings are normalized (lowercased, punctuation removed, the articles "a", "an", "the" removed,
whitespace collapsed); exact match is equality of the normalized strings; F1 is the harmonic mean
of precision and recall of the normalized tokens, counted as a multiset; against several gold
answers the best score counts. Two additions, both stated where they apply: punctuation is any
Unicode punctuation (not only ASCII), and two empty answers score 1 (as SQuAD 2.0's script does).

Span matching finds a model's quote in a document after normalizing layout only (case,
whitespace runs, typographic quotes and dashes, soft hyphens): the words and their punctuation
must be the document's, so a paraphrase is never taken for a quote.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_ASCII_PUNCTUATION = frozenset(string.punctuation)
# Layout variants a quote may differ in without being a different text.
_LAYOUT = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4`", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    "\u00ad": "",  # soft hyphen
    "\u2026": "...",
}
# What a model wraps around a quote: quotation marks, ellipses, outer spaces and final stops.
_WRAPPING = " \"'.,;:!?\u2026\u201c\u201d\u2018\u2019"


def _is_punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace (SQuAD)."""
    text = "".join(ch for ch in text.lower() if not _is_punctuation(ch))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def exact_match(prediction: str, golds: list[str]) -> bool:
    """The normalized prediction equals a normalized gold answer."""
    predicted = normalize_answer(prediction)
    return any(predicted == normalize_answer(gold) for gold in golds)


def token_f1(prediction: str, golds: list[str]) -> float:
    """The best token F1 of the prediction against the gold answers (0.0 without gold answers)."""
    predicted = answer_tokens(prediction)
    best = 0.0
    for gold in golds:
        expected = answer_tokens(gold)
        if not predicted or not expected:
            best = max(best, float(predicted == expected))
            continue
        same = sum((Counter(predicted) & Counter(expected)).values())
        if same:
            precision, recall = same / len(predicted), same / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def gold_list(value: object) -> list[str]:
    """Gold answers from a column value: one string, or a list of strings (nulls and blanks left out)."""
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, (list, tuple)):
        values = [v for v in value if isinstance(v, str)]
    else:
        values = []
    return [v for v in values if v.strip()]


def contains_answer(text: str, answer: str) -> bool:
    """The answer's normalized tokens occur contiguously among the text's normalized tokens."""
    needle = answer_tokens(answer)
    if not needle:
        return False
    hay = answer_tokens(text)
    n = len(needle)
    return any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def _layout_normalized(text: str) -> tuple[str, list[int]]:
    """The text with layout differences removed, and for each of its characters the index of
    the original character it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            if chars and chars[-1] != " ":
                chars.append(" ")
                origin.append(i)
            continue
        for out in _LAYOUT.get(ch, ch).lower():
            chars.append(out)
            origin.append(i)
    return "".join(chars), origin


def find_span(document: str, quote: str) -> tuple[int, int] | None:
    """Where `quote` occurs in `document`, as (start, end) offsets into the document, or None.

    Case, whitespace runs, typographic quotes and dashes do not matter; quotation marks, ellipses
    and final punctuation around the quote are ignored. Everything else must match exactly."""
    needle, _ = _layout_normalized(quote.strip(_WRAPPING).strip())
    needle = needle.strip()
    if not needle:
        return None
    hay, origin = _layout_normalized(document)
    at = hay.find(needle)
    if at < 0:
        return None
    return origin[at], origin[at + len(needle) - 1] + 1
