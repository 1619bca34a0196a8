"""Staged LLM checks of math problems, in the spirit of MathQ-Verify."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from dataflow_cli.errors import SpecError
from dataflow_cli.llm.operator import LLMOperator, LLMParams, Messages, ParseError, json_object
from dataflow_cli.operator import Batch, Filter, Partial, Port, Verdict
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.math._judge import reason_of, verdict_schema

# Built-in checks, each a prompt `prompts/math_question_check_<name>.jinja`.
CHECKS = ("is_math", "language", "conditions", "contradiction", "completeness", "ambiguity", "solvability")
DEFAULT_STAGES = ["is_math", "contradiction", "completeness", "ambiguity", "solvability"]


class MathQuestionVerifyFilter(LLMOperator, Filter):
    """Drop ill-posed math problems through staged LLM checks, each answered in strict JSON.

    MathQ-Verify (Shen et al. 2025, "Let's Verify Math Questions Step by Step") checks a question
    in stages instead of asking one judge everything; here each stage is one request whose answer
    must be a JSON object `{"reason": "...", "passed": true|false}`. Stages run in order and a
    problem stops at the first one it fails: its reject reason names that stage and the detail
    holds the judge's reason. An answer that is not such an object is a failure of the row
    (rejected with the raw answer), never a pass. Built-in checks:

    - `is_math`: a genuine, self-contained math problem (no foreign instruction, no leaked answer);
    - `language`: no language errors that change or hide the meaning (not in the defaults);
    - `conditions`: each condition valid on its own by definition (not in the defaults);
    - `contradiction`: conditions consistent with each other;
    - `completeness`: no condition missing;
    - `ambiguity`: one reasonable reading;
    - `solvability`: solvable with a definite answer.

    `stages` picks and orders them (skip one by leaving it out); `stage_templates` replaces a
    check's prompt or adds a check of your own (its template uses `{{ question }}` and must ask
    for the same JSON object). The stage's `prompt:` and the `template` param are not used:
    every check has its own prompt.

    Inputs:
        question: the problem.
    Outputs:
        (none: rows are kept or dropped with "question check `<stage>` failed" and the judge's reason)
    Params:
        stages: checks to run, in order.
        stage_templates: prompt templates by check name (override a built-in or add a check).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params (`template` is not used).
    """

    name = "math_question_verify_filter"
    inputs = {"question": Port("the problem")}
    # What `operators show` prints: the default checks' prompts, in order.
    default_template = "\n".join(
        f"{{# check `{stage}` #}}\n{default_prompt(f'math_question_check_{stage}', domain='math')}"
        for stage in DEFAULT_STAGES
    )

    class Params(LLMParams):
        stages: list[str] = Field(
            default_factory=lambda: list(DEFAULT_STAGES),
            min_length=1,
            description=f"Checks to run, in order; built-in: {', '.join(CHECKS)}.",
        )
        stage_templates: dict[str, str] = Field(
            default_factory=dict,
            description="Prompt templates by check name: replaces a built-in check's prompt or adds a check.",
        )

        @field_validator("stages")
        @classmethod
        def _unique(cls, stages: list[str]) -> list[str]:
            repeated = sorted({s for s in stages if stages.count(s) > 1})
            if repeated:
                raise ValueError(f"check `{repeated[0]}` is listed twice")
            return stages

        @model_validator(mode="after")
        def _known(self):
            for stage in self.stages:
                if stage not in CHECKS and stage not in self.stage_templates:
                    raise ValueError(
                        f"unknown check `{stage}`: use one of {', '.join(CHECKS)} or give its prompt in `stage_templates`"
                    )
            if self.template is not None:
                raise ValueError(
                    "every check has its own prompt: set `stage_templates` instead of `template`"
                )
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.templates = {
            stage: self.params.stage_templates.get(stage)
            or default_prompt(f"math_question_check_{stage}", domain="math")
            for stage in self.params.stages
        }

    # Prompts -----------------------------------------------------------------------------
    def template_text(self) -> str:
        """Every configured check's prompt, in order (each is sent on its own)."""
        return "\n".join(f"{{# check `{stage}` #}}\n{text}" for stage, text in self.templates.items())

    def template_columns(self) -> list[str]:
        from dataflow_cli.prompts import template_variables

        if self.prompt:
            raise SpecError(
                f"`{self.name}` has one prompt per check: set `params.stage_templates` instead of `prompt:`"
            )
        columns: set[str] = set()
        for stage, text in self.templates.items():
            variables = template_variables(text)
            if "question" not in variables:
                raise SpecError(f"the prompt of check `{stage}` must use `{{{{ question }}}}`")
            columns |= variables
        return sorted(columns)

    def stage_messages(self, stage: str, row: dict[str, Any]) -> Messages:
        """The request of one check for one row: optional system prompt, then the check's prompt."""
        from dataflow_cli.prompts import compile_template

        messages = []
        if self.params.system:
            messages.append({"role": "system", "content": self.params.system})
        messages.append({"role": "user", "content": compile_template(self.templates[stage]).render(**row)})
        return messages

    def build_messages(self, row: dict[str, Any]) -> Messages:
        return self.stage_messages(self.params.stages[0], row)

    def json_schema(self) -> dict[str, Any]:
        return verdict_schema()

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        """One check's answer: {"passed": bool, "reason": str}; ParseError unless exactly that."""
        value = json_object(text)
        passed = value.get("passed")
        if not isinstance(passed, bool):
            raise ParseError("`passed` is missing or not true/false")
        return {"passed": passed, "reason": reason_of(value)}

    # Running -----------------------------------------------------------------------------
    def filter(self, batch: Batch):
        rows = self.rows(batch)
        n = len(rows)
        keep: list[bool] = [True] * n
        reason: list[str | None] = [None] * n
        detail: list[str | None] = [None] * n
        failed: list[str | None] = [None] * n
        raw: list[str | None] = [None] * n
        active = []
        for i, row in enumerate(rows):
            nulls = [k for k, v in row.items() if v is None]
            if nulls:
                failed[i] = f"null `{nulls[0]}` in prompt"
            else:
                active.append(i)
        for stage in self.params.stages:
            if not active:
                break
            answers = self.ask_messages(
                [self.stage_messages(stage, rows[i]) for i in active], 1, self.json_schema()
            )
            still = []
            for i, (answer,) in zip(active, answers, strict=True):
                value, why, text = self.parsed(answer, rows[i])
                if why is not None:
                    failed[i], raw[i] = f"{stage}: {why}", text
                elif value["passed"]:
                    still.append(i)
                else:
                    keep[i], reason[i], detail[i] = False, f"question check `{stage}` failed", value["reason"]
            active = still
        import pyarrow as pa

        verdict = Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))
        return Partial(verdict, failed, raw) if any(failed) else verdict
