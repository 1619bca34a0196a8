"""FineWeb quality rules (Penedo et al. 2024) as one filter."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib import wordlists as lists
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.ngrams import duplicate_parts
from dataflow_operators._lib.rules import Check, apply_checks, check_bound, null_reason, threshold
from dataflow_operators._lib.textstats import TextBatch, ratio, re2_class, segment_sum


class FinewebRulesFilter(Filter):
    """Drop documents failing FineWeb's rules: line punctuation, short lines, repeats, lists.

    FineWeb's custom filters (Penedo et al. 2024, "The FineWeb Datasets", section 3.3) with the
    definitions of their reference implementation, datatrove's `FineWebQualityFilter`. Lines are
    the text's lines split on "\\n" that are not blank, each stripped of surrounding whitespace
    (the reference keeps the whitespace, so "Done. " or a CRLF line "Done.\\r" would not count as
    punctuated there); a text without any is dropped ("no non-empty lines"). Rules, in order:
    - punct_line_ratio < min_punct_line_ratio: lines ending with terminal punctuation / lines.
      Terminal punctuation is the reference's set, Unicode's Sentence_Terminal characters: "."
      "!" "?", "。" "！" "？" "．" "｡", "؟" "۔" "।" "॥" "։" "።" and the like of other scripts; not
      quotation marks, not "…" (a line ending with '."' or "…" does not count; "..." does);
    - short_line_ratio > max_short_line_ratio: lines of at most `short_line_chars` code points /
      lines;
    - dup_line_char_ratio > max_dup_line_char_ratio: code points of the lines repeating an earlier
      line (the first occurrence does not count) / code points of the text not counting "\\n"
      (the reference's denominator);
    - newline_word_ratio > max_newline_word_ratio: "\\n" characters / whitespace-separated words
      (the reference counts words with a word tokenizer, which also counts punctuation marks as
      words: its ratio is a little lower on the same text).
    As in the reference, a document is dropped when a ratio is strictly below its minimum or
    strictly above its maximum; a ratio equal to a bound passes. (FineWeb's 2024 release code
    dropped at equality on all three line rules; datatrove's current reference does not.)

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
    version = "2"  # the reference's terminal punctuation and duplicate-character denominator
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
        lines, offsets = tb.lines

        def line_share(flags_of) -> Callable[[TextBatch], np.ndarray]:
            return lambda _: ratio(segment_sum(flags_of(), offsets), np.diff(offsets))

        def punctuated() -> np.ndarray:
            ends = pc.match_substring_regex(lines, re2_class(lists.SENTENCE_TERMINALS) + r"\z")
            return ends.to_numpy(zero_copy_only=False)

        def short() -> np.ndarray:
            return pc.less_equal(pc.utf8_length(lines), params.short_line_chars).to_numpy(
                zero_copy_only=False
            )

        def dup_chars(_: TextBatch) -> np.ndarray:
            _, chars = duplicate_parts(lines, offsets)
            return ratio(chars, tb.chars - tb.count("\n"))

        rules = [
            ("punct_line_ratio", "<", params.min_punct_line_ratio, line_share(punctuated)),
            ("short_line_ratio", ">", params.max_short_line_ratio, line_share(short)),
            ("dup_line_char_ratio", ">", params.max_dup_line_char_ratio, dup_chars),
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
