"""Drop responses that copy their instruction."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column
from dataflow_operators.core.range_filter import format_bound


def _literal(text: str) -> str:
    return "".join(c if c.isalnum() or c == " " else f"\\x{{{ord(c):X}}}" for c in text)


def _normalize(text: pa.Array) -> list[str | None]:
    """Casefolded words joined by single spaces: runs of non-alphanumerics become one space."""
    lowered = pc.utf8_lower(text)
    return pc.utf8_trim(pc.replace_substring_regex(lowered, r"[^\pL\pN]+", " "), characters=" ").to_pylist()


class ResponseCopiesInstructionFilter(Filter):
    """Drop responses that repeat the instruction instead of answering it.

    Both texts are normalized: lowercased, every run of characters that are not letters or digits
    replaced by one space, stripped; tokens are the resulting space-separated words. Checks, in
    order, on non-empty normalized responses: "response equals instruction" (identical);
    "response starts with instruction" (the response begins with the whole instruction followed
    by more words, and the instruction has at least `min_words` tokens); "response is contained in
    instruction" (the response is a contiguous run of whole instruction tokens and has at least
    `min_words` tokens); "response token overlap > X" (of the response's distinct tokens, the
    share also in the instruction exceeds `max_token_overlap`; responses of at least `min_words`
    distinct tokens only). Rows with a null instruction or response are kept.

    Inputs:
        instruction: the prompt or instruction.
        response: the answer.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min_words: fewest tokens for the starts-with, contained and overlap checks (default 5).
        check_starts_with: drop responses starting with the instruction (default true).
        check_contained: drop responses contained in the instruction (default true).
        max_token_overlap: highest share of response tokens found in the instruction (default
            0.9; null switches the check off). Rewriting tasks (fix grammar, paraphrase) overlap
            heavily by design: switch it off for them.
    """

    name = "response_copies_instruction_filter"
    inputs = {"instruction": Port("the prompt or instruction"), "response": Port("the answer")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        min_words: int = Field(
            5, ge=1, description="Fewest tokens for the starts-with, contained and overlap checks."
        )
        check_starts_with: bool = Field(
            True, description="Drop responses that start with the whole instruction."
        )
        check_contained: bool = Field(True, description="Drop responses contained in the instruction.")
        max_token_overlap: float | None = Field(
            0.9, ge=0, le=1, description="Highest share of distinct response tokens also in the instruction."
        )

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        instructions = _normalize(text_column(batch, "instruction"))
        responses = _normalize(text_column(batch, "response"))
        n = len(responses)
        keep = np.ones(n, bool)
        reason: list[str | None] = [None] * n
        overlap_reason = (
            None
            if p.max_token_overlap is None
            else f"response token overlap > {format_bound(p.max_token_overlap)}"
        )
        for i, (ins, res) in enumerate(zip(instructions, responses, strict=True)):
            if not res or ins is None:
                continue
            why = None
            if res == ins:
                why = "response equals instruction"
            elif p.check_starts_with and res.startswith(ins + " ") and ins.count(" ") + 1 >= p.min_words:
                why = "response starts with instruction"
            elif p.check_contained and res.count(" ") + 1 >= p.min_words and f" {res} " in f" {ins} ":
                why = "response is contained in instruction"
            elif overlap_reason is not None:
                tokens = set(res.split(" "))
                if len(tokens) >= p.min_words and ins:
                    shared = len(tokens.intersection(ins.split(" ")))
                    if shared / len(tokens) > p.max_token_overlap:
                        why = overlap_reason
            if why is not None:
                keep[i] = False
                reason[i] = why
        return Verdict(keep=keep, reason=pa.array(reason, pa.string()))
