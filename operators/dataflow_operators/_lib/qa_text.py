"""Scoring short answers against gold answers, shared by the QA operators.

Answer scoring follows the definition of the SQuAD evaluation (Rajpurkar et al. 2016, "SQuAD:
100,000+ Questions for Machine Comprehension of Text", section 6, and its official script): both
strings are normalized (lowercased, punctuation removed, the articles "a", "an", "the" removed,
whitespace collapsed); exact match is equality of the normalized strings; F1 is the harmonic mean
of precision and recall of the normalized tokens, counted as a multiset; against several gold
answers the best score counts. Two additions, both stated where they apply: punctuation is any
Unicode punctuation (not only ASCII), and two empty answers score 1 (as SQuAD 2.0's script does).

This is the scoring definition; whether a quote is in a passage, and whether it supports an
answer, is `support.py` (its normalisation is for matching, not for scores).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


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
