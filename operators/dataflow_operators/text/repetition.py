"""Repetition signals of a text: repeated character and word n-grams, lines and paragraphs.

The Gopher signals follow Rae et al. 2021 ("Scaling Language Models: Methods, Analysis & Insights
from Training Gopher", appendix A, table A1); where the paper leaves a detail open the choice made
here is stated in the docstring. Everything is vectorised over the batch (see `operators._ngrams`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Port
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.ngrams import CHUNK, WordNgrams, duplicate_parts, repeated_fraction
from dataflow_operators._lib.textstats import SignalEvaluator, TextBatch, check_signals, ratio

TOP_NGRAMS = (2, 3, 4)


DUP_NGRAMS = (5, 6, 7, 8, 9, 10)


REPETITION_OUTPUTS = {
    "char_rep_ratio": Port("character n-grams occurring more than once / character n-grams", "float64"),
    "word_rep_ratio": Port("word n-grams occurring more than once / word n-grams", "float64"),
    "dup_line_ratio": Port("lines repeating an earlier line / lines", "float64"),
    "dup_para_ratio": Port("paragraphs repeating an earlier paragraph / paragraphs", "float64"),
    "dup_line_char_ratio": Port("code points in repeated lines / code points", "float64"),
    "dup_para_char_ratio": Port("code points in repeated paragraphs / code points", "float64"),
    **{
        f"top_{n}_gram_char_ratio": Port(
            f"word characters covered by the most frequent word {n}-gram", "float64"
        )
        for n in TOP_NGRAMS
    },
    **{
        f"dup_{n}_gram_char_ratio": Port(f"word characters covered by repeated word {n}-grams", "float64")
        for n in DUP_NGRAMS
    },
}


def char_repetition(tb: TextBatch, n: int) -> np.ndarray:
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

    Definitions (n-grams are windows of consecutive items inside one text; all ratios are 0.0
    when their denominator is 0, e.g. for "" or a text shorter than n):
    character n-grams are windows of `char_ngram` code points (whitespace included); words are
    whitespace-separated tokens compared exactly (case-sensitive); lines are the text split on
    "\\n" and paragraphs the text split on blank lines ("\\n", optional whitespace, "\\n"), each
    stripped, blank ones ignored. A line (paragraph) is repeated if an equal one occurs earlier in
    the text; the first occurrence does not count. A null text gives nulls.

    Inputs:
        text: the text to measure.
    Outputs:
        char_rep_ratio: fraction of the character n-gram windows whose n-gram occurs more than
            once in the text (every occurrence counts, the first one too).
        word_rep_ratio: the same for word n-grams of `word_ngram` words.
        dup_line_ratio: repeated lines / non-empty lines (Gopher "duplicate line fraction").
        dup_para_ratio: repeated paragraphs / non-empty paragraphs.
        dup_line_char_ratio: code points of the repeated lines / code points of the text.
        dup_para_char_ratio: code points of the repeated paragraphs / code points of the text.
        top_2_gram_char_ratio: characters of the words covered by the occurrences of the most
            frequent word 2-gram / characters of all words (whitespace excluded; a character
            covered by overlapping occurrences counts once, so it is at most 1.0). The most
            frequent n-gram has the most occurrences (ties: more characters, then earliest); it
            must occur at least twice, else the ratio is 0.0. Same for top_3 and top_4.
        top_3_gram_char_ratio: as top_2 for word 3-grams.
        top_4_gram_char_ratio: as top_2 for word 4-grams.
        dup_5_gram_char_ratio: characters of the words covered by any word 5-gram occurring more
            than once (all its occurrences, each character once) / characters of all words.
            Same for 6..10.
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

    ladder: list[WordNgrams] = []

    def ngrams() -> WordNgrams:
        if not ladder:
            ladder.append(WordNgrams(tb.word_ids, tb.word_lengths, tb.words[1]))
        return ladder[0]

    def words(method: str, n: int):
        return lambda: getattr(ngrams(), method)(n)

    f64 = pa.float64()
    signals = {
        "char_rep_ratio": (lambda: char_repetition(tb, char_ngram), f64),
        "word_rep_ratio": (words("repeated_fraction", word_ngram), f64),
        "dup_line_ratio": (parts("lines", 0), f64),
        "dup_para_ratio": (parts("paragraphs", 0), f64),
        "dup_line_char_ratio": (parts("lines", 1), f64),
        "dup_para_char_ratio": (parts("paragraphs", 1), f64),
    }
    for n in TOP_NGRAMS:
        signals[f"top_{n}_gram_char_ratio"] = (words("top_char_fraction", n), f64)
    for n in DUP_NGRAMS:
        signals[f"dup_{n}_gram_char_ratio"] = (words("duplicate_char_fraction", n), f64)
    return signals
