"""LLM labels of math problems with strict JSON schemas: difficulty and category."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError, json_object
from dataflow_cli.operator import Evaluator, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.math._judge import reason_of

CATEGORIES = [
    "arithmetic", "algebra", "number theory", "geometry", "combinatorics",
    "probability and statistics", "calculus", "linear algebra", "other",
]  # fmt: skip


class MathDifficultyEvaluator(LLMOperator, Evaluator):
    """Rate each problem's difficulty from 1 to 10 with a reason, as strict JSON.

    The default prompt anchors the scale (1-2 grade-school arithmetic, 3-4 multi-step word
    problems, 5-6 easier competition problems, 7-8 AIME-level, 9-10 olympiad). The answer must be
    `{"reason": "...", "difficulty": <integer 1-10>}`; anything else sends the row to rejects
    with the raw answer.

    Inputs:
        question: the problem.
    Outputs:
        difficulty: 1 (easiest) to 10 (hardest).
        difficulty_reason: the judge's reason.
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "math_difficulty_evaluator"
    inputs = {"question": Port("the problem")}
    outputs = {
        "difficulty": Port("1 (easiest) to 10 (hardest)", "int64"),
        "difficulty_reason": Port("the judge's reason"),
    }
    template_needs = ("question",)
    default_template = default_prompt("math_difficulty_evaluator", domain="math")

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "minLength": 1},
                "difficulty": {"type": "integer", "minimum": 1, "maximum": 10},
            },
            "required": ["reason", "difficulty"],
            "additionalProperties": False,
        }

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        value = json_object(text)
        difficulty = value.get("difficulty")
        if isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 1 <= difficulty <= 10:
            raise ParseError("`difficulty` is not an integer from 1 to 10")
        return {"difficulty": difficulty, "difficulty_reason": reason_of(value)}


class MathCategoryEvaluator(LLMOperator, Evaluator):
    """Label each problem with one category from a fixed list, with a reason, as strict JSON.

    The answer must be `{"reason": "...", "category": "<one of categories>"}` (the schema's enum
    is the list, so backends with structured output can only answer with a listed category);
    anything else sends the row to rejects with the raw answer. The template can read
    `{{ categories }}`.

    Inputs:
        question: the problem.
    Outputs:
        category: one of `categories`.
        category_reason: the judge's reason.
    Params:
        categories: the allowed labels.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "math_category_evaluator"
    inputs = {"question": Port("the problem")}
    outputs = {"category": Port("one of the categories"), "category_reason": Port("the judge's reason")}
    template_needs = ("question",)
    default_template = default_prompt("math_category_evaluator", domain="math")

    class Params(LLMParams):
        categories: list[str] = Field(
            default_factory=lambda: list(CATEGORIES), min_length=2, description="The allowed labels."
        )

        @field_validator("categories")
        @classmethod
        def _distinct(cls, categories: list[str]) -> list[str]:
            if len(set(categories)) != len(categories) or any(not c.strip() for c in categories):
                raise ValueError("categories must be distinct and non-empty")
            return categories

    def template_columns(self) -> list[str]:
        return [c for c in super().template_columns() if c != "categories"]

    def render(self, row: dict[str, Any]) -> str:
        return super().render({**row, "categories": self.params.categories})

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "minLength": 1},
                "category": {"type": "string", "enum": list(self.params.categories)},
            },
            "required": ["reason", "category"],
            "additionalProperties": False,
        }

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        value = json_object(text)
        category = value.get("category")
        if category not in self.params.categories:
            raise ParseError("`category` is not one of the categories")
        return {"category": category, "category_reason": reason_of(value)}
