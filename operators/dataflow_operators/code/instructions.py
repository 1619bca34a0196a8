"""Coding instructions with an LLM: new ones from seeds (self-instruct), sharper rewrites of
existing ones, and back-translation of code into the instruction it answers."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Generator, Port, Refiner
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.code._text import numbered_items


class CodeInstructionGenerator(LLMOperator, Generator):
    """Write new coding exercises modelled on a seed exercise (self-instruct), one row each.

    Each input row's `seed` is shown to the model as an example; it is asked for `count` new
    exercises on other topics, each asking for one Python function with its name, signature,
    result and edge cases, as a numbered list. Every item becomes a row (ids `<parent>.<k>`,
    `_parent_id` kept); at most `count` are kept. An answer without a numbered list is rejected
    with the raw answer. The template may use `{{ count }}` besides the row's columns.

    Inputs:
        seed: an example exercise.
    Outputs:
        instruction: a new exercise.
    Params:
        count: exercises asked for per seed (and most kept).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_instruction_generator"
    inputs = {"seed": Port("an example exercise")}
    outputs = {"instruction": Port("a new exercise")}
    template_needs = ("seed",)
    default_template = default_prompt("code_instruction_generator", domain="code")

    class Params(LLMParams):
        count: int = Field(3, ge=1, le=50, description="Exercises asked for per seed (and most kept).")

    def template_columns(self) -> list[str]:
        return [c for c in super().template_columns() if c != "count"]

    def render(self, row: dict[str, Any]) -> str:
        return super().render({**row, "count": self.params.count})

    def parse(self, text: str, row: dict[str, Any]) -> list[dict[str, Any]]:
        items = numbered_items(text)
        if not items:
            raise ParseError("no numbered list in answer")
        return [{"instruction": item} for item in items[: self.params.count]]


class CodeInstructionRefiner(LLMOperator, Refiner):
    """Rewrite each coding exercise so it names the function, its signature, types and edge cases.

    Instruction enhancement: the model keeps the task but makes it precise enough to be solved
    and tested without guessing. The rewrite replaces `instruction`; an empty answer sends the
    row to rejects ("empty rewrite") with the raw answer.

    Inputs:
        instruction: the exercise (rewritten in place).
    Outputs:
        (none: `instruction` is rewritten in place)
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_instruction_refiner"
    inputs = {"instruction": Port("the exercise; replaced by its rewrite")}
    template_needs = ("instruction",)
    default_template = default_prompt("code_instruction_refiner", domain="code")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        if not text.strip():
            raise ParseError("empty rewrite", bare=True)
        return {"instruction": text.strip()}


class CodeToInstructionGenerator(LLMOperator, Generator):
    """Write the exercise a piece of code solves (back-translation), as a user would ask it.

    Gives real code (for instance from a repository) an instruction, so the pair can become SFT
    data; the exercise names the function, its signature, result and edge cases. An empty
    answer is rejected with the raw answer.

    Inputs:
        code: the code (Python source).
    Outputs:
        instruction: the exercise the code solves.
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_to_instruction_generator"
    inputs = {"code": Port("the code (Python source)")}
    outputs = {"instruction": Port("the exercise the code solves")}
    template_needs = ("code",)
    default_template = default_prompt("code_to_instruction_generator", domain="code")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        if not text.strip():
            raise ParseError("empty answer")
        return {"instruction": text.strip()}
