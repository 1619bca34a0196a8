"""Gopher quality rules (Rae et al. 2021) as one filter."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib import wordlists as lists
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.rules import apply_checks, check_bound, null_reason, threshold
from dataflow_operators._lib.textstats import SPACE, TextBatch, ratio
from dataflow_operators.core.range_filter import format_bound
from dataflow_operators.text.quality import (
    alpha_word_ratio,
    distinct_stop_words,
    line_flags,
    line_ratio,
    symbol_word_ratio,
)
from dataflow_operators.text.repetition import DUP_NGRAMS, TOP_NGRAMS, repetition_signals

GOPHER_TOP = {2: 0.20, 3: 0.18, 4: 0.16}


GOPHER_DUP = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


class GopherRulesFilter(Filter):
    """Drop documents failing Gopher's quality and repetition rules (Rae et al. 2021).

    Definitions from Rae et al. 2021 ("Scaling Language Models: Methods, Analysis & Insights from
    Training Gopher", appendix A.1.1 and table A1) and, where the paper is silent, datatrove's
    `GopherQualityFilter` and `GopherRepetitionFilter`. Rules, in order (signals as defined by
    `word_stats_evaluator`, `structure_evaluator` and `repetition_evaluator`; words are
    whitespace-separated): words outside [min_words, max_words]; mean_word_length outside
    [min_mean_word_length, max_mean_word_length]; symbol_word_ratio > max_symbol_word_ratio ("#"
    or ellipses per word); bullet_line_ratio > max_bullet_line_ratio; ellipsis_line_ratio >
    max_ellipsis_line_ratio; alpha_word_ratio < min_alpha_word_ratio; distinct_stop_words <
    min_stop_words: the number of *different* Gopher stop words (the, be, to, of, and, that, have,
    with) the text contains, each word lowercased and stripped of edge punctuation ("the the the"
    has 1; the paper asks for "at least two of" them); then, in the reference's order, the
    repetition rules dup_para_ratio, dup_para_char_ratio, dup_line_ratio, dup_line_char_ratio,
    top_{2,3,4}_gram_char_ratio and dup_{5..10}_gram_char_ratio above their maxima (the n-gram
    signals count code points of the whole text; see `repetition_evaluator`). The repetition
    signals are only computed for rows that pass the other rules. A value equal to a bound
    passes, as in the reference. Lines are non-empty lines (the paper does not say).

    Inputs:
        text: the document text.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min_words: fewest words (50).
        max_words: most words (100000).
        min_mean_word_length: shortest mean word length in code points (3).
        max_mean_word_length: longest mean word length (10).
        max_symbol_word_ratio: most "#" or ellipses per word (0.1).
        max_bullet_line_ratio: highest share of lines starting with a bullet (0.9).
        max_ellipsis_line_ratio: highest share of lines ending with an ellipsis (0.3).
        min_alpha_word_ratio: lowest share of words containing a letter (0.8).
        min_stop_words: fewest different Gopher stop words (2).
        max_dup_line_ratio: highest share of repeated lines (0.3).
        max_dup_para_ratio: highest share of repeated paragraphs (0.3).
        max_dup_line_char_ratio: highest share of characters in repeated lines (0.2).
        max_dup_para_char_ratio: highest share of characters in repeated paragraphs (0.2).
        max_top_ngram_char_ratio: n -> highest top word n-gram character share ({2: 0.2, 3: 0.18,
            4: 0.16}); n in 2..4, {} switches these rules off.
        max_dup_ngram_char_ratio: n -> highest repeated word n-gram character share ({5: 0.15,
            6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.1}); n in 5..10, {} switches them off.
    """

    name = "gopher_rules_filter"
    version = "2"  # distinct stop words; reference definitions of the n-gram repetition signals
    inputs = {"text": Port("document text")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        min_words: int | None = Field(50, ge=0, description="Fewest whitespace-separated words.")
        max_words: int | None = Field(100_000, ge=0, description="Most whitespace-separated words.")
        min_mean_word_length: float | None = Field(3, description="Shortest mean word length (code points).")
        max_mean_word_length: float | None = Field(10, description="Longest mean word length (code points).")
        max_symbol_word_ratio: float | None = Field(0.1, description="Most '#' or ellipses per word.")
        max_bullet_line_ratio: float | None = Field(0.9, description="Highest share of bullet lines.")
        max_ellipsis_line_ratio: float | None = Field(
            0.3, description="Highest share of lines ending in an ellipsis."
        )
        min_alpha_word_ratio: float | None = Field(
            0.8, description="Lowest share of words containing a letter."
        )
        min_stop_words: int | None = Field(
            2, ge=0, description="Fewest different Gopher stop words (the, be, to, of, ...)."
        )
        max_dup_line_ratio: float | None = Field(0.3, description="Highest share of repeated lines.")
        max_dup_para_ratio: float | None = Field(0.3, description="Highest share of repeated paragraphs.")
        max_dup_line_char_ratio: float | None = Field(
            0.2, description="Highest share of chars in repeated lines."
        )
        max_dup_para_char_ratio: float | None = Field(
            0.2, description="Highest share of chars in repeated paragraphs."
        )
        max_top_ngram_char_ratio: dict[int, float] = Field(
            dict(GOPHER_TOP), description="n (2..4) -> highest character share of the top word n-gram."
        )
        max_dup_ngram_char_ratio: dict[int, float] = Field(
            dict(GOPHER_DUP), description="n (5..10) -> highest character share of repeated word n-grams."
        )

        @field_validator(
            "min_mean_word_length",
            "max_mean_word_length",
            "max_symbol_word_ratio",
            "max_bullet_line_ratio",
            "max_ellipsis_line_ratio",
            "min_alpha_word_ratio",
            "max_dup_line_ratio",
            "max_dup_para_ratio",
            "max_dup_line_char_ratio",
            "max_dup_para_char_ratio",
        )
        @classmethod
        def _not_negative(cls, value, info):
            return check_bound(value, info.field_name)

        @field_validator("max_top_ngram_char_ratio", "max_dup_ngram_char_ratio")
        @classmethod
        def _ngram_sizes(cls, value, info):
            allowed = TOP_NGRAMS if info.field_name == "max_top_ngram_char_ratio" else DUP_NGRAMS
            for n, bound in value.items():
                if n not in allowed:
                    raise ValueError(f"n-gram size {n} is not one of {', '.join(map(str, allowed))}")
                check_bound(bound, f"{info.field_name}[{n}]")
            return dict(sorted(value.items()))

        @model_validator(mode="after")
        def _ordered(self):
            for low, high in (("min_words", "max_words"), ("min_mean_word_length", "max_mean_word_length")):
                a, b = getattr(self, low), getattr(self, high)
                if a is not None and b is not None and a > b:
                    raise ValueError(
                        f"`{low}` ({format_bound(a)}) is greater than `{high}` ({format_bound(b)})"
                    )
            return self

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        tb = TextBatch(text_column(batch, "text"))
        flags: dict[str, pa.Array] = {}

        def lines(kind: str):
            def values(tb: TextBatch) -> np.ndarray:
                if not flags:
                    flags.update(line_flags(tb))
                return line_ratio(tb, flags[kind])

            return values

        def mean_word_length(tb: TextBatch) -> np.ndarray:
            counts = tb.class_counts
            return ratio(counts.sum(axis=1) - counts[:, SPACE], tb.word_counts)

        quality = [
            ("words", "<", p.min_words, lambda tb: tb.word_counts),
            ("words", ">", p.max_words, lambda tb: tb.word_counts),
            ("mean_word_length", "<", p.min_mean_word_length, mean_word_length),
            ("mean_word_length", ">", p.max_mean_word_length, mean_word_length),
            ("symbol_word_ratio", ">", p.max_symbol_word_ratio, symbol_word_ratio),
            ("bullet_line_ratio", ">", p.max_bullet_line_ratio, lines("bullet")),
            ("ellipsis_line_ratio", ">", p.max_ellipsis_line_ratio, lines("ellipsis")),
            ("alpha_word_ratio", "<", p.min_alpha_word_ratio, alpha_word_ratio),
            (
                "distinct_stop_words",
                "<",
                p.min_stop_words,
                lambda tb: distinct_stop_words(tb, lists.GOPHER_STOP_WORDS),
            ),
        ]
        verdict = apply_checks(tb, [threshold(*r) for r in quality if r[2] is not None], null_reason(self))
        repetition = [
            ("dup_para_ratio", p.max_dup_para_ratio),
            ("dup_para_char_ratio", p.max_dup_para_char_ratio),
            ("dup_line_ratio", p.max_dup_line_ratio),
            ("dup_line_char_ratio", p.max_dup_line_char_ratio),
            *((f"top_{n}_gram_char_ratio", b) for n, b in p.max_top_ngram_char_ratio.items()),
            *((f"dup_{n}_gram_char_ratio", b) for n, b in p.max_dup_ngram_char_ratio.items()),
        ]
        repetition = [(name, bound) for name, bound in repetition if bound is not None]
        survivors = np.flatnonzero(np.asarray(verdict.keep))
        if not repetition or len(survivors) == 0:
            return verdict
        sub = TextBatch(pc.take(tb.array, pa.array(survivors)))
        signals = repetition_signals(sub)
        checks = [
            threshold(name, ">", bound, lambda _, f=signals[name][0]: f()) for name, bound in repetition
        ]
        second = apply_checks(sub, checks, "")
        keep = np.asarray(verdict.keep).copy()
        keep[survivors] = np.asarray(second.keep)
        reason = pc.replace_with_mask(
            verdict.reason,
            pa.array(np.isin(np.arange(tb.n), survivors)),
            second.reason.cast(verdict.reason.type),
        )
        return Verdict(keep=keep, reason=reason)
