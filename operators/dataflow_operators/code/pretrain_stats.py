"""Line-length and alphanumeric statistics of source files, and filters on them."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Evaluator, Filter, NoParams, Port, Verdict
from dataflow_operators.code._rules import alnum_fraction, line_lengths, rule_verdict


class CodeStatsEvaluator(Evaluator):
    """Measure a source file's lines, longest and mean line length and alphanumeric fraction.

    The measures behind the usual pre-training code filters (files with very long lines or few
    alphanumeric characters are mostly data, minified or generated code); keep them in the
    output to audit `code_line_length_filter` and `code_alphanumeric_filter`. Null text gives
    null measures.

    Inputs:
        text: the file's content.
    Outputs:
        lines: number of lines.
        max_line_length: characters in the longest line.
        mean_line_length: mean characters per line.
        alnum_fraction: fraction of characters that are letters or digits.
    Params:
        (none)
    """

    name = "code_stats_evaluator"
    inputs = {"text": Port("the file's content")}
    outputs = {
        "lines": Port("number of lines", "int64"),
        "max_line_length": Port("characters in the longest line", "int64"),
        "mean_line_length": Port("mean characters per line", "float64"),
        "alnum_fraction": Port("fraction of letters and digits", "float64"),
    }

    def evaluate(self, batch: Batch) -> dict:
        columns: dict[str, list] = {name: [] for name in self.outputs}
        for text in batch.values("text"):
            lengths = line_lengths(text) if text is not None else None
            columns["lines"].append(len(text.splitlines()) if text is not None else None)
            columns["max_line_length"].append(max(lengths) if lengths else None)
            columns["mean_line_length"].append(sum(lengths) / len(lengths) if lengths else None)
            columns["alnum_fraction"].append(alnum_fraction(text) if text is not None else None)
        return {
            name: pa.array(values, pa.type_for_alias(self.outputs[name].type))
            for name, values in columns.items()
        }


class CodeLineLengthFilter(Filter):
    """Drop source files whose longest or mean line is too long (data, minified or generated).

    Defaults follow the filters reported for Codex and StarCoder training data: a longest line
    over 1000 characters or a mean over 100. Reasons: "max line length > 1000", "mean line
    length > 100" (the measured value as detail).

    Inputs:
        text: the file's content.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        max_line_length: longest line allowed, in characters.
        max_mean_line_length: highest mean line length allowed.
    """

    name = "code_line_length_filter"
    inputs = {"text": Port("the file's content")}

    class Params(NoParams):
        max_line_length: int = Field(1000, ge=1, description="Longest line allowed, in characters.")
        max_mean_line_length: float = Field(100, gt=0, description="Highest mean line length allowed.")

    def filter(self, batch: Batch) -> Verdict:
        p = self.params

        def check(text: str) -> tuple[str, str] | None:
            lengths = line_lengths(text)
            if max(lengths) > p.max_line_length:
                return f"max line length > {p.max_line_length}", str(max(lengths))
            mean = sum(lengths) / len(lengths)
            if mean > p.max_mean_line_length:
                return f"mean line length > {p.max_mean_line_length:g}", f"{mean:.1f}"
            return None

        return rule_verdict(batch.values("text"), check)


class CodeAlphanumericFilter(Filter):
    """Drop source files with too few letters and digits (encoded data, ASCII art, tables).

    Default threshold 0.25, as reported for Codex and StarCoder training data. Reason
    "alphanumeric fraction < 0.25" with the measured fraction as detail.

    Inputs:
        text: the file's content.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min_fraction: lowest fraction of letters and digits among all characters.
    """

    name = "code_alphanumeric_filter"
    inputs = {"text": Port("the file's content")}

    class Params(NoParams):
        min_fraction: float = Field(0.25, ge=0, le=1, description="Lowest fraction of letters and digits.")

    def filter(self, batch: Batch) -> Verdict:
        p = self.params

        def check(text: str) -> tuple[str, str] | None:
            fraction = alnum_fraction(text)
            if fraction < p.min_fraction:
                return f"alphanumeric fraction < {p.min_fraction:g}", f"{fraction:.3f}"
            return None

        return rule_verdict(batch.values("text"), check)
