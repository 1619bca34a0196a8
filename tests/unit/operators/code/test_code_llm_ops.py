"""The LLM operators of the code domain: exact prompts, parsing, and runs over a fake backend."""

from __future__ import annotations

import pytest
from dataflow_operators.code._text import extract_code, numbered_items
from dataflow_operators.code.instructions import (
    CodeInstructionGenerator,
    CodeInstructionRefiner,
    CodeToInstructionGenerator,
)
from dataflow_operators.code.quality import SCHEMA, CodeQualityEvaluator, CodeQualityFilter
from dataflow_operators.code.solutions import CodeGenerator
from dataflow_operators.code.test_generation import CodeTestFromCodeGenerator, CodeTestGenerator

from dataflow_cli.llm.operator import ParseError
from dataflow_cli.llm.types import Request, Sampling
from dataflow_cli.operator import Fanout, Partial, Verdict
from tests.support.llm_ops import batch, bound, user

TASK = "Write `add(a, b)` returning the sum of two integers."
CODE = "def add(a, b):\n    return a + b\n"


def content(op, row) -> str:
    [message] = op.build_messages(row)
    assert message["role"] == "user"
    return message["content"]


# --- prompts ---


def test_instruction_generator_prompt_shows_the_seed_and_the_count():
    op = CodeInstructionGenerator(CodeInstructionGenerator.Params(count=2))
    assert content(op, {"seed": "Reverse a string."}) == (
        "You write programming exercises for training a coding assistant.\n\n"
        "Here is an example exercise:\nReverse a string.\n\n"
        "Write 2 new exercises in the same spirit but on different topics. Each exercise must:\n"
        "- ask for one Python function, giving its name and signature;\n"
        "- say what the function returns and how it handles edge cases (empty input, negative numbers, ...);\n"
        "- be solvable with the Python standard library in a few lines.\n\n"
        "Answer with a numbered list, one exercise per item, and nothing else.\n"
    )
    assert op.required_columns() == ["seed"]  # `count` is a param, not a column


def test_refiner_prompt():
    assert content(CodeInstructionRefiner(), {"instruction": "sum a list"}) == (
        "Rewrite the following programming exercise so that it is precise and self-contained:\n"
        "- name the Python function to write and give its signature;\n"
        "- state the types of its inputs and of its result;\n"
        "- say how edge cases are handled (empty input, negative numbers, duplicates, ...);\n"
        "- keep the task itself the same.\n\nExercise:\nsum a list\n\nAnswer with the rewritten exercise only.\n"
    )


def test_code_generator_prompt():
    assert content(CodeGenerator(), {"instruction": TASK}) == (
        f"Solve the following programming exercise in Python.\n\n{TASK}\n\n"
        "Use only the Python standard library. Answer with one ```python code block that defines the "
        "requested function (and any helpers it needs). Do not include tests, example calls or input reading.\n"
    )


def test_back_translation_prompt():
    assert content(CodeToInstructionGenerator(), {"code": CODE}) == (
        f"Here is a Python function:\n\n```python\n{CODE}\n```\n\n"
        "Write the programming exercise this code solves, as a user would ask for it: name the function "
        "and give its signature, say what it returns and how it handles edge cases. Do not mention or "
        "include the code.\n\nAnswer with the exercise only.\n"
    )


def test_test_generators_see_only_their_input():
    from_task = content(CodeTestGenerator(), {"instruction": TASK})
    assert from_task.startswith(
        "Write unit tests for the following programming exercise. No solution is shown: derive every "
        f"expected value from the exercise itself.\n\n{TASK}\n\n"
    )
    assert from_task.endswith("Answer with one ```python code block containing only the assert statements.\n")
    assert CodeTestGenerator().required_columns() == ["instruction"]  # never the code
    from_code = content(CodeTestFromCodeGenerator(), {"code": CODE})
    assert from_code.startswith(
        f"Write unit tests for the following Python code.\n\n```python\n{CODE}\n```\n\n"
    )


def test_quality_prompt_and_schema():
    op = CodeQualityEvaluator()
    assert content(op, {"instruction": TASK, "code": CODE}) == (
        f"You review solutions to programming exercises.\n\nExercise:\n{TASK}\n\nSolution:\n```python\n{CODE}\n```\n\n"
        "Rate the solution from 1 (useless) to 10 (excellent) for correctness, clarity, efficiency and "
        'idiomatic Python. Answer with a JSON object: {"score": <integer from 1 to 10>, "reason": "<one sentence>"}.\n'
    )
    assert op.json_schema() == SCHEMA == CodeQualityFilter().json_schema()


# --- parsing ---


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("Here:\n```python\ndef f():\n    return 1\n```\nDone.", "def f():\n    return 1\n"),
        ("```\nx = 1\n```", "x = 1\n"),
        ("```py\nx = 1\n```\n```python\ny = 2\n```", "x = 1\n"),
        ("def f():\n    return 2", "def f():\n    return 2\n"),
        ("```python\nx = 1", "x = 1\n"),  # a cut-off answer still has its code
        ("```json\n{}\n```\n```python\nz = 3\n```", "z = 3\n"),
    ],
)
def test_extract_code(answer, code):
    assert extract_code(answer) == code


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("I cannot do that.", "parse error: no code block in answer"),
        ("```python\ndef f(:\n```", "parse error: code does not parse"),
        ("```python\n\n```", "parse error: no code in answer"),
    ],
)
def test_extract_code_failures(answer, reason):
    with pytest.raises(ParseError) as err:
        extract_code(answer)
    assert err.value.reason == reason


def test_numbered_items():
    text = "Sure!\n1. Write `f(x)`\n   that doubles x.\n2) Write `g`.\n\n- Write `h`."
    assert numbered_items(text) == ["Write `f(x)` that doubles x.", "Write `g`.", "Write `h`."]


def test_numbered_items_keeps_continuation_lines():
    assert numbered_items("1. Write f\n   for lists.\n2. Write g.") == ["Write f for lists.", "Write g."]
    assert numbered_items("no list here") == []


def test_tests_parse_needs_real_tests():
    op = CodeTestGenerator()
    assert op.parse("```python\nassert add(1, 2) == 3\n```", {}) == {"tests": "assert add(1, 2) == 3\n"}
    with pytest.raises(ParseError, match="no tests"):
        op.parse("```python\nprint(add(1, 2))\n```", {})
    with pytest.raises(ParseError, match="no code block"):
        op.parse("assert add(1, 2) == 3 and more words", {})


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("great", "parse error: answer is not JSON"),
        ('{"score": 11, "reason": "x"}', "parse error: `score` is not an integer from 1 to 10"),
        ('{"score": true, "reason": "x"}', "parse error: `score` is not an integer from 1 to 10"),
        ('{"score": 5}', "parse error: `reason` is missing"),
    ],
)
def test_quality_parse_failures(answer, reason):
    with pytest.raises(ParseError) as err:
        CodeQualityEvaluator().parse(answer, {})
    assert err.value.reason == reason


def test_quality_parse():
    assert CodeQualityEvaluator().parse('```json\n{"score": 8, "reason": " clean "}\n```', {}) == {
        "quality": 8,
        "quality_reason": "clean",
    }
    op = CodeQualityFilter(CodeQualityFilter.Params(min_score=7))
    assert op.parse('{"score": 7, "reason": "ok"}', {}) is True
    assert op.parse('{"score": 3, "reason": "buggy"}', {}) == (False, "code quality < 7", "3: buggy")


# --- with an engine over a fake backend ---


def test_instruction_generator_fans_out():
    op = CodeInstructionGenerator(CodeInstructionGenerator.Params(count=2, temperature=0.9))
    replies = {"seed A": "1. Task one\n2. Task two\n3. Task three", "seed B": "No list, sorry."}
    with bound(op, lambda r: next(v for k, v in replies.items() if k in r.messages[0]["content"])) as backend:
        result = op.process(batch(seed=["seed A", "seed B"]))
    assert isinstance(result, Partial)
    assert isinstance(result.result, Fanout)
    assert result.result.columns == {"instruction": ["Task one", "Task two"]}
    assert result.result.source_index.to_pylist() == [0, 0]
    assert result.failed == [None, "parse error: no numbered list in answer"]
    assert result.raw == [None, "No list, sorry."]
    assert [r.sampling for r in backend.history] == [Sampling(temperature=0.9)] * 2


def test_code_generator_rejects_unusable_answers():
    op = CodeGenerator()
    answers = {"good": f"```python\n{CODE}```", "bad": "```python\ndef add(:\n```"}
    with bound(op, lambda r: answers["good" if "good" in r.messages[0]["content"] else "bad"]) as backend:
        result = op.process(batch(instruction=["good task", "bad task"]))
    assert result.result == {"code": [CODE, None]}
    assert result.failed == [None, "parse error: code does not parse"]
    assert backend.history[0] == Request(user(content(op, {"instruction": "good task"})), Sampling(), None)


def test_refiner_rewrites_and_rejects_empty():
    op = CodeInstructionRefiner()
    with bound(
        op, lambda r: "  Write `add(a: int, b: int) -> int`.  " if "sum" in r.messages[0]["content"] else " "
    ):
        result = op.process(batch(instruction=["sum two numbers", "other"]))
    assert result.result["instruction"].to_pylist() == ["Write `add(a: int, b: int) -> int`.", "other"]
    assert result.failed == [None, "empty rewrite"]


def test_quality_evaluator_asks_for_strict_json():
    op = CodeQualityEvaluator()
    with bound(op, lambda r: '{"score": 9, "reason": "correct and clear"}') as backend:
        result = op.process(batch(instruction=[TASK], code=[CODE]))
    assert result == {"quality": [9], "quality_reason": ["correct and clear"]}
    assert backend.history[0].json_schema == SCHEMA


def test_quality_filter_drops_with_the_models_reason():
    op = CodeQualityFilter()
    with bound(op, lambda r: '{"score": 2, "reason": "wrong result for negatives"}'):
        verdict = op.process(batch(instruction=[TASK], code=[CODE]))
    assert isinstance(verdict, Verdict)
    assert verdict.keep == [False]
    assert verdict.reason.to_pylist() == ["code quality < 6"]
    assert verdict.detail.to_pylist() == ["2: wrong result for negatives"]
