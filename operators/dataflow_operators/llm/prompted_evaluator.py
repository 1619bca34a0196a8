"""Score rows with an LLM (a number or a label)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from dataflow_cli.llm.operator import LLMOperator, LLMParams
from dataflow_cli.operator import Evaluator, Port
from dataflow_operators._lib.llm import find_label, parse_score
from dataflow_operators._lib.prompts import default_prompt


class PromptedEvaluator(LLMOperator, Evaluator):
    """Score each row with an LLM: a number in a range, or a label from a fixed set.

    The default template asks for a 1-10 quality rating of `text`. Answers that do not contain
    a valid score or label are rejected with the raw answer kept, never stored as null.

    Inputs:
        (the template's variables: any columns)
    Outputs:
        score: the parsed number (float64), or in label mode the label's index.
        label: the parsed label (label mode), else the score as text.
    Params:
        parse: `number` (first number in the answer) or `label` (first listed label found).
        min_score, max_score: valid range in number mode.
        labels: the allowed labels in label mode.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "prompted_evaluator"
    outputs = {"score": Port("parsed score", "float64"), "label": Port("parsed label")}

    class Params(LLMParams):
        parse: Literal["number", "label"] = Field("number", description="How to read the answer.")
        min_score: float = Field(1, description="Lowest valid score (number mode).")
        max_score: float = Field(10, description="Highest valid score (number mode).")
        labels: list[str] = Field(
            default_factory=list, description="Allowed labels (label mode), matched case-insensitively."
        )

        @model_validator(mode="after")
        def _check(self):
            if self.parse == "label" and not self.labels:
                raise ValueError("`labels` is required when `parse: label`")
            if self.min_score > self.max_score:
                raise ValueError("`min_score` is greater than `max_score`")
            return self

    default_template = default_prompt("prompted_evaluator")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        p = self.params
        if p.parse == "label":
            index, label = find_label(text, p.labels)
            return {"score": float(index), "label": label}
        score, written = parse_score(text, p.min_score, p.max_score)
        return {"score": score, "label": written}
