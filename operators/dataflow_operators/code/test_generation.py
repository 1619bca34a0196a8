"""Unit tests for coding exercises with an LLM: from the exercise alone, or from the code."""

from __future__ import annotations

from typing import Any

from dataflow_cli.llm.operator import LLMOperator, ParseError
from dataflow_cli.operator import Generator, Port
from dataflow_cli.sandbox.testplan import TestsInvalid, build_plan
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.code._text import extract_code


def parse_tests(text: str) -> dict[str, Any]:
    code = extract_code(text)
    try:
        build_plan(code)
    except TestsInvalid as exc:
        raise ParseError(exc.reason) from exc
    return {"tests": code}


class CodeTestGenerator(LLMOperator, Generator):
    """Write unit tests for each coding exercise from the exercise alone, never from a solution.

    The model sees only the instruction, so its tests state what the exercise asks for, not what
    some (possibly wrong) solution does: `assert` lines comparing a call of the named function
    with a literal expected value, typical and edge cases. The first fenced code block becomes
    `tests`; an answer without code, or whose code does not parse or contains no test, is
    rejected with the raw answer. Run `code_weak_test_filter` next to drop suites a trivial stub
    passes.

    Inputs:
        instruction: the exercise.
    Outputs:
        tests: the tests (Python source).
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_test_generator"
    inputs = {"instruction": Port("the exercise")}
    outputs = {"tests": Port("the tests (Python source)")}
    template_needs = ("instruction",)
    default_template = default_prompt("code_test_generator", domain="code")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return parse_tests(text)


class CodeTestFromCodeGenerator(LLMOperator, Generator):
    """Write unit tests for each piece of code by reading the code.

    For code that has no exercise to test against (e.g. code from a repository, before
    back-translation) or to add regression tests to trusted code. Tests written while reading
    the code describe what the code does, right or wrong: to check model-written solutions use
    `code_test_generator`, which never sees them. Output and rejects as for `code_test_generator`.

    Inputs:
        code: the code (Python source).
    Outputs:
        tests: the tests (Python source).
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "code_test_from_code_generator"
    inputs = {"code": Port("the code (Python source)")}
    outputs = {"tests": Port("the tests (Python source)")}
    template_needs = ("code",)
    default_template = default_prompt("code_test_from_code_generator", domain="code")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return parse_tests(text)
