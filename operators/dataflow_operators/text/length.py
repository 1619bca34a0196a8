"""Length statistics: characters, words and lines."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.operator import Batch, Evaluator, Port
from dataflow_operators._lib.arrow import (
    text_column,
    word_and_line_counts,
)


class LengthEvaluator(Evaluator):
    """Count the characters, words and lines of a text.

    `chars` counts Unicode code points (an emoji built with joiners counts each code point; run
    `text_normalize_refiner` first for a canonical form). `words` counts maximal runs of
    non-whitespace (Unicode whitespace, as Python's `str.split()`), so unsegmented CJK text counts as
    one word per run. `lines` is 0 for an empty string, else the number of "\\n" plus one, where a
    trailing "\\n" does not start a new line ("a\\n" has 1 line, "a\\n\\nb" has 3). A null text gives
    null counts (a range filter then drops the row as "`chars` is null").

    Inputs:
        text: the text to measure.
    Outputs:
        chars: number of Unicode code points (int64).
        words: number of whitespace-separated tokens (int64).
        lines: number of lines (int64).
    Params:
        (none)
    """

    name = "length_evaluator"
    inputs = {"text": Port("text to measure")}
    outputs = {
        "chars": Port("number of Unicode code points", "int64"),
        "words": Port("number of whitespace-separated tokens", "int64"),
        "lines": Port("number of lines; 0 for an empty text, a trailing newline adds none", "int64"),
    }

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        chars = pc.utf8_length(text).cast(pa.int64())
        words, lines = word_and_line_counts(text)
        return {"chars": chars, "words": words, "lines": lines}
