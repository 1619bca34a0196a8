"""Is a quote really in a passage, and does it support an answer? Shared by the knowledge and
RAG operators (supporting-span matching and answer normalisation).

- `normalize_span(text)` and `find_quote(quote, passage)`: a quote counts as found when it
  occurs in the passage after both are normalised for *form only*: Unicode compatibility forms
  (NFKC), case, curly vs straight quotes, dash variants, soft hyphens, words hyphenated across a
  line break ("measure-\\nments"), whitespace runs, spaces before punctuation, and Markdown
  markup the extraction added (`#` heading marks, `|` table rules, `*`/`_` emphasis, list
  bullets at a line start). An ellipsis (`...` or `…`) in a quote stands for an omitted part:
  the pieces around it must occur in order. Changed words, digits or names never match.
- `normalize_answer(text)`: the usual normalisation for comparing short answers (lower case,
  punctuation and the articles a/an/the removed, whitespace collapsed), as in SQuAD's
  evaluation; `answer_tokens(text)` adds number words as digits and drops plural `s`, for
  checking that an answer's words occur in its evidence (`answer_supported`).
"""

from __future__ import annotations

import re
import string
import unicodedata

_QUOTES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
        "\u00ad": None, "\u200b": None, "\u200c": None, "\u200d": None, "\ufeff": None,
        "|": " ", "*": " ", "_": " ",
    }
)  # fmt: skip
_LINE_MARKUP = re.compile(r"(?m)^[ \t]*(?:#{1,6}[ \t]+|[-•*+][ \t]+|>[ \t]*)")
# "measure-\nments", or "measure- ments" once the line break became a space.
_LINE_BREAK_HYPHEN = re.compile(r"(?<=[^\W\d_])-[ \t]*(?:\n[ \t]*|[ \t])(?=[^\W\d_A-Z])")
_SPACE_BEFORE_PUNCT = re.compile(r" (?=[.,;:!?%\u00b0)\]])")
_SPACE_AFTER_OPEN = re.compile(r"(?<=[(\[]) ")
_ELLIPSIS = re.compile(r"\s*(?:\.\s?\.\s?\.|…)\s*")


def join_hyphenation(text: str) -> str:
    """Words hyphenated across a line break joined again ("Kes-\nsel" -> "Kessel")."""
    return _LINE_BREAK_HYPHEN.sub("", text)


def normalize_span(text: str) -> str:
    """`text` in the form quotes and passages are compared in (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    text = _LINE_BREAK_HYPHEN.sub("", text)
    text = _LINE_MARKUP.sub(" ", text)
    text = text.translate(_QUOTES).casefold()
    text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    return _SPACE_AFTER_OPEN.sub("", text).strip(" \"'")


def quote_pieces(quote: str) -> list[str]:
    """The normalised parts of a quote between ellipses (empty parts dropped)."""
    return [piece for piece in (normalize_span(p) for p in _ELLIPSIS.split(quote)) if piece]


def find_quote(quote: str, passage: str, normalized_passage: str | None = None) -> int | None:
    """Position of the quote in the normalised passage, or None when it is not there.

    Each piece between ellipses must occur after the previous one. Pass `normalized_passage`
    (from `normalize_span`) to match many quotes against one passage cheaply."""
    haystack = normalize_span(passage) if normalized_passage is None else normalized_passage
    pieces = quote_pieces(quote)
    if not pieces:
        return None
    start = position = haystack.find(pieces[0])
    if start < 0:
        return None
    position += len(pieces[0])
    for piece in pieces[1:]:
        found = haystack.find(piece, position)
        if found < 0:
            return None
        position = found + len(piece)
    return start


# --------------------------------------------------------------------------- answers

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u00b7"})


def normalize_answer(text: str) -> str:
    """Lower case, punctuation and articles removed, whitespace collapsed (SQuAD style)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update(
    {
        word: str(10 * tens)
        for tens, word in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)
    }
)
_NUMBER_WORDS.update({"hundred": "100", "thousand": "1000", "dozen": "12"})
_STOPWORDS = frozenset(
    "a an the of in on at to for by with from and or as is are was were be been it its this that "
    "these those there their they he she his her about approximately around some".split()
)
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")


def answer_tokens(text: str) -> list[str]:
    """Content words of an answer for support checks: normalised, numbers as digits without
    thousands separators, number words as digits, a plural `s` dropped, stopwords left out."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NUMBER.sub(lambda m: m.group(0).replace(",", "").rstrip("."), text)
    tokens = []
    for token in re.findall(r"\d+(?:\.\d+)?|[^\W_]+", text):
        token = _NUMBER_WORDS.get(token, token)
        if token in _STOPWORDS:
            continue
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss") and not token.isdigit():
            token = token[:-1]
        tokens.append(token)
    return tokens


def answer_supported(answer: str, evidence: str) -> tuple[bool, list[str]]:
    """Whether every content word of `answer` occurs in `evidence`, and the missing ones."""
    present = set(answer_tokens(evidence))
    wanted = answer_tokens(answer) or normalize_answer(answer).split()
    missing = [token for token in wanted if token not in present]
    return not missing and bool(wanted), missing
