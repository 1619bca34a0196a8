"""Prompted LLM operators: generate text from a template, and score rows with a model."""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Batch, Evaluator, Fanout, Generator, Partial, Port


def default_prompt(name: str) -> str:
    """A template shipped with the operators (shown by `dataflow operators show`)."""
    return files("operators").joinpath("prompts", f"{name}.jinja").read_text(encoding="utf-8")


class PromptedGenerator(LLMOperator, Generator):
    """Generate a text column by sending a prompt template, rendered per row, to an LLM.

    With `n` > 1 each input row becomes `n` rows (ids `<parent>.<k>`, `_parent_id` kept), one
    per sample, with the sample number in the `sample` output.

    Inputs:
        (the template's variables: any columns)
    Outputs:
        text: the model's answer.
        sample: the sample number, 0..n-1 (only when n > 1).
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
        n: samples per prompt.
        strip: strip surrounding whitespace from answers.
    """

    name = "prompted_generator"
    outputs = {"text": Port("the model's answer"), "sample": Port("sample number, 0..n-1", "int64")}

    class Params(LLMParams):
        n: int = Field(1, ge=1, le=64, description="Samples per prompt; n > 1 emits one row per sample.")
        strip: bool = Field(True, description="Strip surrounding whitespace from answers.")

    def active_outputs(self) -> list[str]:
        return ["text", "sample"] if self.params.n > 1 else ["text"]

    def generate(self, batch: Batch):
        n = self.params.n
        _, answers = self.ask(batch, samples=n)
        texts: list[str | None] = []
        samples: list[int] = []
        source: list[int] = []
        failed: list[str | None] = []
        for i, per_row in enumerate(answers):
            good = [(k, a) for k, a in enumerate(per_row) if hasattr(a, "text")]
            failed.append(None if good else _failure(per_row[0]))
            for k, answer in good:
                texts.append(answer.text.strip() if self.params.strip else answer.text)
                samples.append(k)
                source.append(i)
        if n == 1:
            # 1:1: aligned columns; failed rows hold nulls that the engine never writes.
            aligned: list[str | None] = [None] * len(answers)
            for i, text in zip(source, texts, strict=True):
                aligned[i] = text
            result: Any = {"text": aligned}
        else:
            result = Fanout({"text": texts, "sample": samples}, pa.array(source, pa.int64()))
        return Partial(result, failed) if any(failed) else result


def _failure(answer: Any) -> str:
    return answer if isinstance(answer, str) else answer.reason()


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


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
            lowered = text.lower()
            found = [(lowered.find(label.lower()), i, label) for i, label in enumerate(p.labels)]
            found = [f for f in found if f[0] >= 0]
            if not found:
                raise ParseError("no known label in answer")
            _, index, label = min(found)
            return {"score": float(index), "label": label}
        match = _NUMBER.search(text)
        if match is None:
            raise ParseError("no number in answer")
        score = float(match.group())
        if not p.min_score <= score <= p.max_score:
            raise ParseError(f"score outside [{p.min_score:g}, {p.max_score:g}]")
        return {"score": score, "label": match.group()}

    def evaluate(self, batch: Batch):
        rows, answers = self.ask(batch)
        values, failed, raw = self.parse_answers(rows, [a[0] for a in answers])
        result = {
            "score": [v["score"] if v else None for v in values],
            "label": [v["label"] if v else None for v in values],
        }
        return Partial(result, failed, raw) if any(failed) else result
