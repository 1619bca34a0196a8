"""Judge code quality with an LLM in strict JSON: a score and a reason."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from dataflow_cli.llm.engine import strip_code_fence
from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Evaluator, Filter, Port
from dataflow_operators._lib.prompts import default_prompt

SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}


def parse_judgement(text: str) -> tuple[int, str]:
    try:
        answer = json.loads(strip_code_fence(text))
    except ValueError as exc:
        raise ParseError("answer is not JSON") from exc
    score = answer.get("score") if isinstance(answer, dict) else None
    reason = answer.get("reason") if isinstance(answer, dict) else None
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 10:
        raise ParseError("`score` is not an integer from 1 to 10")
    if not isinstance(reason, str) or not reason.strip():
        raise ParseError("`reason` is missing")
    return score, reason.strip()


class _CodeJudge(LLMOperator):
    inputs = {"instruction": Port("the exercise"), "code": Port("the solution (Python source)")}
    template_needs = ("code",)
    default_template = default_prompt("code_quality_evaluator", domain="code")

    def json_schema(self) -> dict[str, Any]:
        return SCHEMA


class CodeQualityEvaluator(_CodeJudge, Evaluator):
    """Score each solution's quality from 1 to 10 with an LLM, with a one-sentence reason.

    The model sees the exercise and the solution and answers in strict JSON (`{"score": 1-10,
    "reason": "..."}`, enforced by the backend where it can and always validated); an answer
    that is not such an object is rejected with the raw answer. Threshold the score with
    `range_filter`, or use `code_quality_filter` to drop in one step.

    Inputs:
        instruction: the exercise.
        code: the solution (Python source).
    Outputs:
        quality: the score, 1 (useless) to 10 (excellent).
        quality_reason: the model's reason.
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_quality_evaluator"
    outputs = {
        "quality": Port("1 (useless) to 10 (excellent)", "int64"),
        "quality_reason": Port("the model's reason"),
    }

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        score, reason = parse_judgement(text)
        return {"quality": score, "quality_reason": reason}


class CodeQualityFilter(_CodeJudge, Filter):
    """Drop solutions an LLM scores below `min_score`, with the model's reason.

    Same prompt and strict JSON answer as `code_quality_evaluator`; a dropped row's reason is
    "code quality < 6" and its detail the score and the model's reason. Prefer the evaluator and
    `range_filter` when the score should stay in the output.

    Inputs:
        instruction: the exercise.
        code: the solution (Python source).
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min_score: lowest score kept.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_quality_filter"

    class Params(LLMParams):
        min_score: int = Field(6, ge=1, le=10, description="Lowest score kept (1-10).")

    def parse(self, text: str, row: dict[str, Any]) -> bool | tuple[bool, str, str]:
        score, reason = parse_judgement(text)
        if score >= self.params.min_score:
            return True
        return False, f"code quality < {self.params.min_score}", f"{score}: {reason}"
