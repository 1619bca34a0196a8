"""FineWeb quality rules (Penedo et al. 2024) as one filter."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.rules import Check, apply_checks, check_bound, null_reason, threshold
from dataflow_operators._lib.textstats import TextBatch, ratio
from dataflow_operators.text.quality import (
    line_flags,
    line_ratio,
)
from dataflow_operators.text.repetition import repetition_signals


class FinewebRulesFilter(Filter):
    """Drop documents failing FineWeb's rules: line punctuation, short lines, repeats, lists.

    Lines are non-empty stripped lines as in `structure_evaluator`; a text without any is dropped
    ("no non-empty lines"). Rules, in order: punct_line_ratio < min_punct_line_ratio (lines
    ending with terminal punctuation); short_line_ratio > max_short_line_ratio (lines of at most
    `short_line_chars` code points); dup_line_char_ratio > max_dup_line_char_ratio (code points of
    lines repeating an earlier line / code points, as in `repetition_evaluator`);
    newline_word_ratio > max_newline_word_ratio ("\\n" count / whitespace words). FineWeb's
    reference code drops at equality on some bounds and counts words with a tokenizer; here
    bounds pass at equality and words are whitespace-separated.

    Inputs:
        text: the document text.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min_punct_line_ratio: lowest share of lines ending with terminal punctuation (0.12).
        max_short_line_ratio: highest share of short lines (0.67).
        short_line_chars: the longest line, in code points, that counts as short (30).
        max_dup_line_char_ratio: highest share of code points in repeated lines (0.01).
        max_newline_word_ratio: highest newlines per word (0.3).
    """

    name = "fineweb_rules_filter"
    inputs = {"text": Port("document text")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        min_punct_line_ratio: float | None = Field(
            0.12, description="Lowest share of lines ending in punctuation."
        )
        max_short_line_ratio: float | None = Field(0.67, description="Highest share of short lines.")
        short_line_chars: int = Field(
            30, ge=1, description="Lines of at most this many code points are short."
        )
        max_dup_line_char_ratio: float | None = Field(
            0.01, description="Highest share of chars in repeated lines."
        )
        max_newline_word_ratio: float | None = Field(0.3, description="Highest number of newlines per word.")

        @field_validator(
            "min_punct_line_ratio",
            "max_short_line_ratio",
            "max_dup_line_char_ratio",
            "max_newline_word_ratio",
        )
        @classmethod
        def _not_negative(cls, value, info):
            return check_bound(value, info.field_name)

    def filter(self, batch: Batch) -> Verdict:
        params = self.params
        tb = TextBatch(text_column(batch, "text"))
        flags: dict[str, pa.Array] = {}

        def lines(kind: str):
            def values(tb: TextBatch) -> np.ndarray:
                if not flags:
                    flags.update(line_flags(tb, params.short_line_chars))
                return line_ratio(tb, flags[kind])

            return values

        dup_chars = repetition_signals(tb)["dup_line_char_ratio"][0]
        rules = [
            ("punct_line_ratio", "<", params.min_punct_line_ratio, lines("punct")),
            ("short_line_ratio", ">", params.max_short_line_ratio, lines("short")),
            ("dup_line_char_ratio", ">", params.max_dup_line_char_ratio, lambda _: dup_chars()),
            (
                "newline_word_ratio",
                ">",
                params.max_newline_word_ratio,
                lambda tb: ratio(tb.count("\n"), tb.word_counts),
            ),
        ]
        checks: list[Check] = [("no non-empty lines", lambda tb: np.diff(tb.lines[1]) == 0)]
        checks += [threshold(*rule) for rule in rules if rule[2] is not None]
        return apply_checks(tb, checks, null_reason(self))
