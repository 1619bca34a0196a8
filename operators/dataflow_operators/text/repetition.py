"""Repetition signals of a text: repeated character and word n-grams, lines and paragraphs.

The Gopher signals follow Rae et al. 2021 ("Scaling Language Models: Methods, Analysis & Insights
from Training Gopher", appendix A.1.1 and table A1) as implemented by the reference code the
thresholds of table A1 are used with (datatrove's `GopherRepetitionFilter`); where the two
disagree or leave a detail open, the choice made here is stated in the docstring.
Everything is vectorised over the batch (see `dataflow_operators._lib.ngrams`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Port
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.ngrams import (
    CHUNK,
    SpanNgrams,
    WordNgrams,
    duplicate_parts,
    repeated_fraction,
    repeated_fraction_utf8,
)
from dataflow_operators._lib.textstats import SignalEvaluator, TextBatch, check_signals, ratio

TOP_NGRAMS = (2, 3, 4)


DUP_NGRAMS = (5, 6, 7, 8, 9, 10)


REPETITION_OUTPUTS = {
    "char_rep_ratio": Port(
        "character n-gram windows whose n-gram occurs more than once / windows", "float64"
    ),
    "word_rep_ratio": Port("word n-gram windows whose n-gram occurs more than once / windows", "float64"),
    "dup_line_ratio": Port("lines repeating an earlier line / lines", "float64"),
    "dup_para_ratio": Port("paragraphs repeating an earlier paragraph / paragraphs", "float64"),
    "dup_line_char_ratio": Port("code points of lines repeating an earlier line / code points", "float64"),
    "dup_para_char_ratio": Port(
        "code points of paragraphs repeating an earlier paragraph / code points", "float64"
    ),
    **{
        f"top_{n}_gram_char_ratio": Port(
            f"code points spanned by the occurrences of the most frequent word {n}-gram / code points",
            "float64",
        )
        for n in TOP_NGRAMS
    },
    **{
        f"dup_{n}_gram_char_ratio": Port(
            f"code points spanned by word {n}-grams repeating an earlier occurrence / code points", "float64"
        )
        for n in DUP_NGRAMS
    },
}


# Leading and trailing punctuation (Unicode categories P*) of a word, removed for the Gopher n-gram
# signals: the reference's word tokenizer splits it off, so "Frank," and "Frank" are one word.
_EDGE_PUNCTUATION = r"^\pP+|\pP+$"


def gopher_ngrams(tb: TextBatch) -> SpanNgrams:
    """The word n-grams of the Gopher signals: whitespace-separated words stripped of leading and
    trailing punctuation (P*), words left empty dropped, compared exactly (case-sensitive), each
    located by the code points it spans in the text."""
    vocabulary = tb.vocabulary[1]
    stripped = pc.replace_substring_regex(vocabulary, _EDGE_PUNCTUATION, "")
    lead_free = pc.replace_substring_regex(vocabulary, r"^\pP+", "")
    length = pc.utf8_length(vocabulary).to_numpy(zero_copy_only=False).astype(np.int64)
    lead = length - pc.utf8_length(lead_free).to_numpy(zero_copy_only=False)
    kept_length = pc.utf8_length(stripped).to_numpy(zero_copy_only=False).astype(np.int64)
    trail = length - lead - kept_length
    token_of_word = pc.dictionary_encode(stripped).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    word_ids = tb.word_ids
    keep = kept_length[word_ids] > 0
    starts, ends = tb.word_spans
    kept_before = np.zeros(len(word_ids) + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    return SpanNgrams(
        token_of_word[word_ids[keep]],
        (starts + lead[word_ids])[keep],
        (ends - trail[word_ids])[keep],
        kept_before[tb.words[1]],
        tb.chars,
    )


def char_repetition(tb: TextBatch, n: int) -> np.ndarray:
    data, byte_offsets = tb.utf8
    compiled = repeated_fraction_utf8(data, byte_offsets, tb.char_offsets, n)
    if compiled is not None:
        return compiled
    out = np.zeros(tb.n)
    for d0, d1, cps, offsets in tb.code_point_chunks(CHUNK):
        out[d0:d1] = repeated_fraction(cps, offsets, n)
    return out


def part_ratios(tb: TextBatch, parts: str) -> tuple[np.ndarray, np.ndarray]:
    """(repeated parts / parts, code points of repeated parts / code points of the text)."""
    values, offsets = getattr(tb, parts)
    repeats, chars = duplicate_parts(values, offsets)
    return ratio(repeats, np.diff(offsets)), ratio(chars, tb.chars)


class RepetitionEvaluator(SignalEvaluator):
    """Measure repeated content: character and word n-grams, lines and paragraphs (Gopher).

    Definitions (n-grams are windows of consecutive items inside one text; every ratio is 0.0 when
    its denominator is 0, e.g. for "" or a text shorter than n; a null text gives nulls):
    - character n-grams: windows of `char_ngram` consecutive code points, whitespace and
      punctuation included, compared exactly;
    - words (word_rep_ratio): whitespace-separated tokens (as `str.split()`), compared exactly;
    - Gopher words (top_* and dup_* n-gram signals): whitespace-separated tokens stripped of
      leading and trailing punctuation (Unicode categories P*), tokens left empty (e.g. "—",
      "...") dropped, compared case-sensitively: "Frank,", "Frank." and "Frank" are one word, as
      with the reference's word tokenizer; an occurrence of an n-gram spans the code points from
      the first character of its first word to the last character of its last word, so the
      whitespace and punctuation between its words count;
    - lines: the text split on "\\n"; paragraphs: the text split on blank lines ("\\n",
      optional whitespace, "\\n"); each stripped of surrounding whitespace, blank ones ignored;
    - a line, paragraph or n-gram occurrence *repeats* if an equal one occurs earlier in the text.

    Inputs:
        text: the text to measure.
    Outputs:
        char_rep_ratio: character n-gram windows whose n-gram occurs more than once in the text
            (every occurrence counts, the first one too) / all windows.
        word_rep_ratio: the same for word n-grams of `word_ngram` words.
        dup_line_ratio: lines repeating an earlier line / non-empty lines (Gopher "duplicate line
            fraction"; the first occurrence does not count).
        dup_para_ratio: paragraphs repeating an earlier paragraph / non-empty paragraphs.
        dup_line_char_ratio: code points of the lines repeating an earlier line / code points of
            the whole text.
        dup_para_char_ratio: the same for paragraphs.
        top_2_gram_char_ratio: code points spanned by all occurrences of the most frequent Gopher
            word 2-gram / code points of the whole text (Gopher "top 2-gram character
            fraction"). The most frequent n-gram has the most occurrences, ties going to the one
            occurring first (as the reference); a code point covered by overlapping occurrences
            counts once, so the ratio is at most 1.0 (the reference multiplies the n-gram's
            length by its count and can exceed 1.0 on "a a a a"). An n-gram must occur at least
            twice, else the ratio is 0.0 (the reference scores a text without any repeat by its
            first n-gram, which only matters for texts of a few words).
        top_3_gram_char_ratio: as top_2 for word 3-grams.
        top_4_gram_char_ratio: as top_2 for word 4-grams.
        dup_5_gram_char_ratio: code points spanned by the occurrences of Gopher word 5-grams that
            repeat an earlier occurrence (the first occurrence of each 5-gram does not count;
            overlapping occurrences count each code point once) / code points of the whole text
            (Gopher "duplicate 5-gram character fraction"). A text repeated twice scores about
            0.5. The reference scans left to right and skips the n words of a counted occurrence;
            here every later occurrence counts, which differs only when an occurrence starts
            inside another counted one.
        dup_6_gram_char_ratio: as dup_5 for 6-grams.
        dup_7_gram_char_ratio: as dup_5 for 7-grams.
        dup_8_gram_char_ratio: as dup_5 for 8-grams.
        dup_9_gram_char_ratio: as dup_5 for 9-grams.
        dup_10_gram_char_ratio: as dup_5 for 10-grams.
    Params:
        char_ngram: code points per character n-gram (default 10).
        word_ngram: words per word n-gram of word_rep_ratio (default 5).
        signals: which outputs to compute (default: all). The line and paragraph signals are
            the cheapest; the word n-gram ones cost the most (they split and hash every word).
    """

    name = "repetition_evaluator"
    version = "2"  # Gopher n-gram signals: later copies only, span characters / all characters
    inputs = {"text": Port("text to measure")}
    outputs = REPETITION_OUTPUTS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        char_ngram: int = Field(10, ge=1, le=1000, description="Code points per character n-gram.")
        word_ngram: int = Field(5, ge=1, le=1000, description="Words per word n-gram of word_rep_ratio.")
        signals: list[str] | None = Field(
            None,
            description="Which outputs to compute (default: all); the others are neither computed nor written.",
        )

        @field_validator("signals")
        @classmethod
        def _known(cls, value):
            return check_signals(value, REPETITION_OUTPUTS)

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        tb = TextBatch(text_column(batch, "text"))
        return self.compute(tb, repetition_signals(tb, self.params.char_ngram, self.params.word_ngram))


def repetition_signals(tb: TextBatch, char_ngram: int = 10, word_ngram: int = 5) -> dict:
    """name -> (lazy function, Arrow type) for every repetition signal of `tb`."""
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def parts(kind: str, which: int):
        def get() -> np.ndarray:
            if kind not in cache:
                cache[kind] = part_ratios(tb, kind)
            return cache[kind][which]

        return get

    ladders: dict[str, WordNgrams] = {}

    def ngrams(kind: str) -> WordNgrams:
        if kind not in ladders:
            ladders[kind] = gopher_ngrams(tb) if kind == "gopher" else WordNgrams(tb.word_ids, tb.words[1])
        return ladders[kind]

    def words(kind: str, method: str, n: int):
        return lambda: getattr(ngrams(kind), method)(n)

    f64 = pa.float64()
    signals = {
        "char_rep_ratio": (lambda: char_repetition(tb, char_ngram), f64),
        "word_rep_ratio": (words("plain", "repeated_fraction", word_ngram), f64),
        "dup_line_ratio": (parts("lines", 0), f64),
        "dup_para_ratio": (parts("paragraphs", 0), f64),
        "dup_line_char_ratio": (parts("lines", 1), f64),
        "dup_para_char_ratio": (parts("paragraphs", 1), f64),
    }
    for n in TOP_NGRAMS:
        signals[f"top_{n}_gram_char_ratio"] = (words("gopher", "top_span_fraction", n), f64)
    for n in DUP_NGRAMS:
        signals[f"dup_{n}_gram_char_ratio"] = (words("gopher", "later_copies_fraction", n), f64)
    return signals
