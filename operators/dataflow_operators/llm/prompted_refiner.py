"""Rewrite a column with an LLM."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Port, Refiner
from dataflow_operators._lib.prompts import default_prompt


class PromptedRefiner(LLMOperator, Refiner):
    """Rewrite a text column in place with an LLM's answer to a prompt over it.

    The template must use `{{ text }}` (the bound column); the default asks for a clearer,
    corrected rewrite with the same meaning. Rows whose `text` is null, whose request fails, or
    whose answer is empty or only whitespace go to rejects with the reason
    ("empty rewrite" for the latter) and the raw answer, unless `keep_original_on_empty` keeps
    the original text for empty answers.

    Inputs:
        text: the column to rewrite (replaced by the rewrite).
    Outputs:
        (none: `text` is rewritten in place)
    Params:
        strip: strip surrounding whitespace from answers.
        keep_original_on_empty: keep the original text when the answer is empty (default: reject).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "prompted_refiner"
    inputs = {"text": Port("the text to rewrite; replaced by the model's rewrite")}
    template_needs = ("text",)

    class Params(LLMParams):
        strip: bool = Field(True, description="Strip surrounding whitespace from answers.")
        keep_original_on_empty: bool = Field(
            False,
            description="Keep the original text when the answer is empty, instead of rejecting the row.",
        )

    default_template = default_prompt("prompted_refiner")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        if text.strip():
            return {"text": text.strip() if self.params.strip else text}
        if self.params.keep_original_on_empty:
            return {}
        raise ParseError("empty rewrite", bare=True)
