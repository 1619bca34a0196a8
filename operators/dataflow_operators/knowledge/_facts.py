"""The checkable facts of a passage: numbers (dates included), and names.

Used by `chunk_clean_refiner` to tell a cleaned passage from a rewritten one: every fact of
the original must still be in the rewrite.
"""

from __future__ import annotations

import re

from dataflow_operators._lib.support import join_hyphenation, normalize_span

_CITATION = re.compile(r"\[\s*\d+(?:\s*[,\u2013-]\s*\d+)*\s*\]|[\u00b9\u00b2\u00b3\u2070-\u2079]+")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:/]\d+)*(?![\w])|(?<=[^\W\d_])\d+")
_NAME_WORD = r"(?:[A-Z][\w'\u2019-]*\.?|[A-Z]{2,})"
_NAME = re.compile(rf"{_NAME_WORD}(?:\s+(?:(?:of|de|da|van|von|der|la|le|du)\s+)?{_NAME_WORD})*")
_LEADING = frozenset("the a an in on at by for from of to and but or as this that these those it its".split())
_MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)


def numbers(text: str) -> list[str]:
    """Numbers of `text` in a canonical form ("2,300" -> "2300"), citation markers excluded."""
    text = _CITATION.sub(" ", text)
    out = []
    for match in _NUMBER.finditer(text):
        value = match.group(0)
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+", value):
            value = value.replace(",", "")
        out.append(value)
    return out


def names(text: str) -> list[str]:
    """Capitalised word sequences that are names rather than sentence openings: more than one
    word, or one word that does not start a sentence (month names included)."""
    text = _CITATION.sub(" ", text)
    out = []
    for match in _NAME.finditer(text):
        starts_sentence = _sentence_start(text, match.start())
        for words in _sentences_of(match.group(0).split()):
            while words and words[0].lower().rstrip(".") in _LEADING:
                words = words[1:]
                starts_sentence = False
            if words and not (len(words) == 1 and starts_sentence and words[0].lower() not in _MONTHS):
                name = " ".join(words).rstrip(".")
                if len(name) > 1:
                    out.append(name)
            starts_sentence = True  # the next group follows a sentence end
    return out


_TITLES = frozenset("dr st mr mrs ms prof mt jr sr".split())


def _sentences_of(words: list[str]) -> list[list[str]]:
    """Words split after each one that ends a sentence ("April. The Marta" -> "April.", "The
    Marta"); titles and initials ("Dr.", "J.") do not end one."""
    groups: list[list[str]] = [[]]
    for word in words:
        groups[-1].append(word)
        if word.endswith(".") and word[:-1].lower() not in _TITLES and len(word) > 2:
            groups.append([])
    return [group for group in groups if group]


def _sentence_start(text: str, position: int) -> bool:
    before = text[:position].rstrip()
    return not before or before[-1] in ".!?:\n\"'\u201c#-|" or text[:position].endswith("\n")


def lost_facts(original: str, rewrite: str) -> list[str]:
    """Facts of `original` missing from `rewrite`, in order of appearance (each once); a word
    hyphenated across a line break in the original counts joined, as a cleaner would join it."""
    original = join_hyphenation(original)
    have_numbers = set(numbers(rewrite))
    plain = normalize_span(rewrite)
    lost: list[str] = []
    for value in numbers(original):
        if value not in have_numbers and value not in lost:
            lost.append(value)
    for name in names(original):
        if normalize_span(name) not in plain and name not in lost:
            lost.append(name)
    return lost
