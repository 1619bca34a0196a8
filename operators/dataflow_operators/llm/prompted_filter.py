"""Keep or drop rows by an LLM's yes/no (or label) answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from dataflow_cli.errors import did_you_mean
from dataflow_cli.llm.operator import LLMOperator, LLMParams
from dataflow_cli.operator import Filter
from dataflow_operators._lib.llm import find_label, parse_score
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.core.range_filter import format_bound


class PromptedFilter(LLMOperator, Filter):
    """Keep rows an LLM rates at or above a threshold, or gives one of the kept labels.

    The default template asks for a 1-10 quality rating of `text`. Dropped rows get the reason
    "llm score < 7" (the score given is added in the rejects file: "llm score < 7: got 3") or, in
    label mode, "llm label `bad`". Answers without a valid score or label are rejected with the
    raw answer kept, never kept or dropped silently. The stage writes no column: to keep the
    score for auditing, run `prompted_evaluator` then `range_filter` on its `score` instead (the
    recommended pattern; this operator is the shortcut when the score is not needed).

    Inputs:
        (the template's variables: any columns)
    Outputs:
        (none: rows are kept or dropped)
    Params:
        parse: `number` (first number in the answer) or `label` (first listed label found).
        threshold: lowest score kept (number mode).
        min_score, max_score: valid range in number mode; other numbers are parse errors.
        labels: the allowed labels in label mode.
        keep_labels: the labels whose rows are kept (label mode; a subset of `labels`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "prompted_filter"

    class Params(LLMParams):
        parse: Literal["number", "label"] = Field("number", description="How to read the answer.")
        threshold: float = Field(7, description="Rows scoring at least this are kept (number mode).")
        min_score: float = Field(1, description="Lowest valid score (number mode).")
        max_score: float = Field(10, description="Highest valid score (number mode).")
        labels: list[str] = Field(
            default_factory=list, description="Allowed labels (label mode), matched case-insensitively."
        )
        keep_labels: list[str] = Field(
            default_factory=list, description="Labels whose rows are kept (label mode); others are dropped."
        )

        @model_validator(mode="after")
        def _check(self):
            if self.min_score > self.max_score:
                raise ValueError("`min_score` is greater than `max_score`")
            if self.parse == "label":
                if not self.labels:
                    raise ValueError("`labels` is required when `parse: label`")
                if not self.keep_labels:
                    raise ValueError("`keep_labels` is required when `parse: label`")
                known = {label.lower() for label in self.labels}
                for label in self.keep_labels:
                    if label.lower() not in known:
                        raise ValueError(
                            f"keep label `{label}` is not one of `labels`{did_you_mean(label, self.labels)}"
                        )
            elif not self.min_score <= self.threshold <= self.max_score:
                raise ValueError(
                    f"`threshold` ({format_bound(self.threshold)}) is outside "
                    f"[{format_bound(self.min_score)}, {format_bound(self.max_score)}]"
                )
            return self

    default_template = default_prompt("prompted_filter")

    def parse(self, text: str, row: dict[str, Any]) -> bool | tuple[bool, str] | tuple[bool, str, str]:
        p = self.params
        if p.parse == "label":
            _, label = find_label(text, p.labels)
            return label.lower() in {k.lower() for k in p.keep_labels} or (False, f"llm label `{label}`")
        score, written = parse_score(text, p.min_score, p.max_score)
        return score >= p.threshold or (False, f"llm score < {format_bound(p.threshold)}", f"got {written}")
