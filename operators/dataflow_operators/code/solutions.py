"""Write a Python solution for each coding exercise with an LLM."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams
from dataflow_cli.operator import Generator, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.code._text import extract_code


class CodeGenerator(LLMOperator, Generator):
    """Write a Python solution for each coding exercise.

    The model is asked for one fenced code block defining the requested function (standard
    library only, no tests or example calls). The first ```python block of the answer (or the
    whole answer when it is plain Python) becomes `code`; an answer with no code, or code that
    does not parse, is rejected ("parse error: code does not parse") with the raw answer. With
    `n` > 1 each exercise gets `n` candidate solutions, one row each.

    Inputs:
        instruction: the exercise.
    Outputs:
        code: the solution (Python source).
        sample: the sample number, 0..n-1 (only when n > 1).
    Params:
        n: solutions drawn per exercise.
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_generator"
    inputs = {"instruction": Port("the exercise")}
    outputs = {"code": Port("the solution (Python source)"), "sample": Port("sample number, 0..n-1", "int64")}
    template_needs = ("instruction",)
    default_template = default_prompt("code_generator", domain="code")

    class Params(LLMParams):
        n: int = Field(
            1, ge=1, le=64, description="Solutions drawn per exercise; n > 1 emits a row per sample."
        )

    def active_outputs(self) -> list[str]:
        return ["code", "sample"] if self.params.n > 1 else ["code"]

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return {"code": extract_code(text)}
