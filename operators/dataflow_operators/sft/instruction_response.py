"""Instruction and response lengths and their ratio, and a filter over them."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataflow_cli.operator import Batch, Evaluator, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column, word_and_line_counts
from dataflow_operators._lib.verdicts import verdict_of
from dataflow_operators.core.range_filter import format_bound


def _lengths(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(words, code points, null mask) of a text column; nulls count 0."""
    words, _ = word_and_line_counts(text)
    chars = pc.utf8_length(text)
    null = text.is_null().to_numpy(zero_copy_only=False)
    return (
        words.fill_null(0).to_numpy(zero_copy_only=False),
        chars.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64),
        null,
    )


class InstructionResponseEvaluator(Evaluator):
    """Measure instruction and response lengths and their ratio.

    Words are whitespace-separated (as `length_evaluator`), chars are code points. The ratio is
    response words / instruction words, dividing by 1 when the instruction has no words. A null
    instruction gives null instruction counts, a null response null response counts, and either
    gives a null ratio.

    Inputs:
        instruction: the prompt or instruction.
        response: the answer.
    Outputs:
        instruction_words: words of the instruction (int64).
        response_words: words of the response (int64).
        instruction_chars: code points of the instruction (int64).
        response_chars: code points of the response (int64).
        response_instruction_ratio: response words / max(instruction words, 1) (float64).
    Params:
        (none)
    """

    name = "instruction_response_evaluator"
    inputs = {"instruction": Port("the prompt or instruction"), "response": Port("the answer")}
    outputs = {
        "instruction_words": Port("whitespace-separated words of the instruction", "int64"),
        "response_words": Port("whitespace-separated words of the response", "int64"),
        "instruction_chars": Port("code points of the instruction", "int64"),
        "response_chars": Port("code points of the response", "int64"),
        "response_instruction_ratio": Port("response words / max(instruction words, 1)", "float64"),
    }

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        iw, ic, inull = _lengths(text_column(batch, "instruction"))
        rw, rc, rnull = _lengths(text_column(batch, "response"))
        i64 = pa.int64()
        return {
            "instruction_words": pa.array(iw, i64, mask=inull),
            "response_words": pa.array(rw, i64, mask=rnull),
            "instruction_chars": pa.array(ic, i64, mask=inull),
            "response_chars": pa.array(rc, i64, mask=rnull),
            "response_instruction_ratio": pa.array(rw / np.maximum(iw, 1), pa.float64(), mask=inull | rnull),
        }


class InstructionResponseFilter(Filter):
    """Keep instruction/response pairs whose lengths and length ratio are within bounds.

    Lengths are whitespace-separated words (`unit: words`) or code points (`unit: chars`); the
    ratio is response length / max(instruction length, 1). Bounds are inclusive and each can be
    switched off with null. Checks, in order: null instruction, null response, then the bounds as
    listed below. Reasons name the measure and the bound, e.g. "response_words < 1" or
    "response_instruction_ratio > 50".

    Inputs:
        instruction: the prompt or instruction.
        response: the answer.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        unit: measure lengths in words (default) or chars.
        min_instruction: shortest instruction (default 1).
        max_instruction: longest instruction (default none).
        min_response: shortest response (default 1).
        max_response: longest response (default none).
        min_ratio: lowest response/instruction length ratio (default none).
        max_ratio: highest response/instruction length ratio (default none).
    """

    name = "instruction_response_filter"
    inputs = {"instruction": Port("the prompt or instruction"), "response": Port("the answer")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        unit: Literal["words", "chars"] = Field(
            "words", description="Measure lengths in words or code points."
        )
        min_instruction: int | None = Field(1, ge=0, description="Shortest instruction (inclusive).")
        max_instruction: int | None = Field(None, ge=0, description="Longest instruction (inclusive).")
        min_response: int | None = Field(1, ge=0, description="Shortest response (inclusive).")
        max_response: int | None = Field(None, ge=0, description="Longest response (inclusive).")
        min_ratio: float | None = Field(None, ge=0, description="Lowest response/instruction length ratio.")
        max_ratio: float | None = Field(None, ge=0, description="Highest response/instruction length ratio.")

        @model_validator(mode="after")
        def _ordered(self):
            for low, high in (
                ("min_instruction", "max_instruction"),
                ("min_response", "max_response"),
                ("min_ratio", "max_ratio"),
            ):
                a, b = getattr(self, low), getattr(self, high)
                if a is not None and b is not None and a > b:
                    raise ValueError(
                        f"`{low}` ({format_bound(a)}) is greater than `{high}` ({format_bound(b)})"
                    )
            return self

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        iw, ic, inull = _lengths(text_column(batch, "instruction"))
        rw, rc, rnull = _lengths(text_column(batch, "response"))
        instruction, response = (iw, rw) if p.unit == "words" else (ic, rc)
        ratios = response / np.maximum(instruction, 1)
        conditions = [
            (inull, f"`{self.input_columns['instruction']}` is null"),
            (rnull, f"`{self.input_columns['response']}` is null"),
        ]
        for values, measure in ((instruction, "instruction"), (response, "response"), (ratios, "ratio")):
            name = "response_instruction_ratio" if measure == "ratio" else f"{measure}_{p.unit}"
            low, high = getattr(p, f"min_{measure}"), getattr(p, f"max_{measure}")
            if low is not None:
                conditions.append((values < low, f"{name} < {format_bound(low)}"))
            if high is not None:
                conditions.append((values > high, f"{name} > {format_bound(high)}"))
        return verdict_of(conditions, len(iw))
