"""The math LLM operators: exact prompts, strict parsing, and runs against the scripted fake backend."""

from __future__ import annotations

import json

import pytest
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.math.answer_generate import MathAnswerGenerator, MathRejectionSamplingGenerator
from dataflow_operators.math.labels import CATEGORIES, MathCategoryEvaluator, MathDifficultyEvaluator
from dataflow_operators.math.question_generate import MathQuestionFusionGenerator, MathQuestionGenerator
from dataflow_operators.math.question_verify import MathQuestionVerifyFilter
from pydantic import ValidationError

from dataflow_cli.errors import SpecError
from dataflow_cli.llm.operator import ParseError
from dataflow_cli.llm.types import Request, Sampling
from dataflow_cli.operator import Fanout, Partial, Verdict
from tests.support.llm_ops import batch, bound, user

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"reason": {"type": "string", "minLength": 1}, "passed": {"type": "boolean"}},
    "required": ["reason", "passed"],
    "additionalProperties": False,
}
CHECK_TAIL = (
    "Answer with one JSON object and nothing else:\n"
    '{"reason": "<one or two sentences>", "passed": <true if the problem passes this check, false if it fails>}'
)


def check_prompt(check: str, question: str) -> str:
    lines = {
        "is_math": 'Check: is this a genuine, self-contained math problem that asks for a value, an expression or a proof? It fails if it is not mathematics, if it is an instruction about something else (for example "rewrite this" or "translate"), or if it already states its own answer.',
        "contradiction": "Check: are the problem's conditions consistent with each other? It fails if two or more conditions contradict each other, for example two different values given for the same quantity, or side lengths that cannot form the stated triangle.",
    }
    return (
        "You are checking a math problem before it is used as training data. Check one thing only.\n\n"
        f"Problem:\n{question}\n\n{lines[check]}\n\n{CHECK_TAIL}\n"
    )


def stage_of(request: Request) -> str:
    text = request.messages[-1]["content"]
    for stage in (
        "is_math",
        "language",
        "conditions",
        "contradiction",
        "completeness",
        "ambiguity",
        "solvability",
    ):
        if default_prompt(f"math_question_check_{stage}", domain="math").split("Check:")[1][:40] in text:
            return stage
    return "custom"


# Question checks -----------------------------------------------------------------------------
def test_question_check_messages_are_exact():
    op = MathQuestionVerifyFilter(MathQuestionVerifyFilter.Params(system="Be strict."))
    row = {"question": "What is 2 + 2?"}
    assert op.stage_messages("is_math", row) == [
        {"role": "system", "content": "Be strict."},
        {"role": "user", "content": check_prompt("is_math", "What is 2 + 2?")},
    ]
    assert op.stage_messages("contradiction", row)[1]["content"] == check_prompt(
        "contradiction", "What is 2 + 2?"
    )
    assert op.json_schema() == VERDICT_SCHEMA


@pytest.mark.parametrize(
    "text, error",
    [
        ("The problem passed: true", "answer is not JSON"),
        ('{"reason": "fine", "passed": true', "answer is not JSON"),
        ("true", "answer is not a JSON object"),
        ('{"reason": "fine", "passed": "true"}', "`passed` is missing or not true/false"),
        ('{"reason": "", "passed": true}', "`reason` is missing or not a non-empty string"),
        ('{"passed": false}', "`reason` is missing or not a non-empty string"),
    ],
)
def test_question_check_parse_is_strict(text, error):
    with pytest.raises(ParseError) as exc:
        MathQuestionVerifyFilter().parse(text, {})
    assert str(exc.value) == error


def test_question_check_parse_accepts_a_fenced_object():
    op = MathQuestionVerifyFilter()
    assert op.parse('```json\n{"reason": "ok", "passed": false}\n```', {}) == {
        "passed": False,
        "reason": "ok",
    }


def test_question_checks_run_in_stages_and_stop_at_the_first_failure():
    op = MathQuestionVerifyFilter()
    replies = {
        ("Good?", "*"): '{"reason": "fine", "passed": true}',
        ("Clash?", "is_math"): '{"reason": "math", "passed": true}',
        ("Clash?", "contradiction"): '{"reason": "x is both 2 and 3", "passed": false}',
        ("Broken?", "is_math"): "yes it passed: true",
    }

    def script(request):
        question = request.messages[-1]["content"].split("Problem:\n")[1].split("\n")[0]
        return replies.get((question, stage_of(request))) or replies[(question, "*")]

    with bound(op, script) as backend:
        result = op.process(batch(question=["Good?", "Clash?", "Broken?", None]))
    assert isinstance(result, Partial)
    verdict = result.result
    assert isinstance(verdict, Verdict)
    assert verdict.keep[:2] == [True, False]
    assert verdict.reason.to_pylist()[:2] == [None, "question check `contradiction` failed"]
    assert verdict.detail.to_pylist()[:2] == [None, "x is both 2 and 3"]
    # With a JSON schema on the request the engine itself refuses a non-JSON answer (keeping it).
    assert result.failed == [None, None, "is_math: llm invalid_output", "null `question` in prompt"]
    assert result.raw == [None, None, "yes it passed: true", None]
    # Distinct requests: the engine retries an answer that does not match the schema.
    asked = {
        (r.messages[-1]["content"].split("Problem:\n")[1].split("\n")[0], stage_of(r))
        for r in backend.history
    }
    assert sorted(asked) == sorted(
        [("Good?", s) for s in ("is_math", "contradiction", "completeness", "ambiguity", "solvability")]
        + [("Clash?", "is_math"), ("Clash?", "contradiction"), ("Broken?", "is_math")]
    )
    assert all(r.json_schema == VERDICT_SCHEMA for r in backend.history)


def test_question_check_stages_can_be_reordered_skipped_and_added():
    params = MathQuestionVerifyFilter.Params(
        stages=["solvability", "units"],
        stage_templates={"units": "Are the units consistent in: {{ question }}? Answer in JSON."},
    )
    op = MathQuestionVerifyFilter(params)
    with bound(
        op,
        lambda r: (
            '{"reason": "no", "passed": false}'
            if "units" in r.messages[-1]["content"]
            else '{"reason": "ok", "passed": true}'
        ),
    ) as backend:
        verdict = op.process(batch(question=["How far is 3 km plus 2 kg?"]))
    assert verdict.reason.to_pylist() == ["question check `units` failed"]
    assert [stage_of(r) for r in backend.history] == ["solvability", "custom"]
    assert backend.history[1].messages == user(
        "Are the units consistent in: How far is 3 km plus 2 kg?? Answer in JSON."
    )


def test_question_check_params_are_validated():
    with pytest.raises(ValidationError, match="unknown check `sanity`"):
        MathQuestionVerifyFilter.Params(stages=["sanity"])
    with pytest.raises(ValidationError, match="listed twice"):
        MathQuestionVerifyFilter.Params(stages=["is_math", "is_math"])
    with pytest.raises(ValidationError, match="stage_templates"):
        MathQuestionVerifyFilter.Params(template="{{ question }}")
    op = MathQuestionVerifyFilter(
        MathQuestionVerifyFilter.Params(stage_templates={"is_math": "no variables"})
    )
    with pytest.raises(SpecError, match="must use"):
        op.template_columns()
    op = MathQuestionVerifyFilter()
    op.prompt = "{{ question }}"
    with pytest.raises(SpecError, match="one prompt per check"):
        op.template_columns()


# Question generators -------------------------------------------------------------------------
def test_question_generator_prompt_per_method_is_exact():
    op = MathQuestionGenerator()
    content = op.method_messages({"question": "What is 2 + 3?"}, "numbers")[0]["content"]
    assert content == (
        "Write a new math problem based on the seed problem below.\n\nSeed problem:\nWhat is 2 + 3?\n\n"
        "Keep the structure and the mathematics of the seed problem, but change its numbers so that the answer "
        "changes. Make sure the new numbers give a problem with a clean, definite answer.\n\n"
        "The new problem must be self-contained, solvable, and must not contain its answer or a solution.\n"
        'Answer with one JSON object and nothing else: {"question": "<the new problem>"}\n'
    )
    assert "different real-world" in op.method_messages({"question": "q"}, "context")[0]["content"]
    assert "harder problem" in op.method_messages({"question": "q"}, "difficulty")[0]["content"]
    assert op.required_columns() == ["question"]  # `method` is set per request, not a column


def test_question_generator_records_method_and_sample_and_keeps_failures():
    op = MathQuestionGenerator(MathQuestionGenerator.Params(methods=["numbers", "context"], n=2))

    def script(request):
        seed = request.messages[-1]["content"].split("Seed problem:\n")[1].split("\n")[0]
        if seed == "bad":
            return "Here is a problem: what is 1+1?"
        method = "numbers" if "change its numbers" in request.messages[-1]["content"] else "context"
        return json.dumps({"question": f"{seed} {method} {request.sample_index}"})

    with bound(op, script) as backend:
        result = op.process(batch(question=["Q", "bad"]))
    assert isinstance(result, Partial) and isinstance(result.result, Fanout)
    assert result.result.columns == {
        "generated_question": ["Q numbers 0", "Q numbers 1", "Q context 0", "Q context 1"],
        "method": ["numbers", "numbers", "context", "context"],
        "sample": [0, 1, 0, 1],
    }
    assert result.result.source_index.to_pylist() == [0, 0, 0, 0]
    assert result.failed == [None, "llm invalid_output"]
    assert result.raw == [None, "Here is a problem: what is 1+1?"]
    assert len({(r.messages[-1]["content"], r.sample_index) for r in backend.history}) == 8
    assert backend.history[0].json_schema["required"] == ["question"]


def test_fusion_pairs_rows_of_the_batch_when_no_partner_column_is_bound():
    op = MathQuestionFusionGenerator(MathQuestionFusionGenerator.Params(methods=["sequential"]))
    assert op.required_columns() == ["question"]

    def script(request):
        text = request.messages[-1]["content"]
        a = text.split("Problem A:\n")[1].split("\n")[0]
        b = text.split("Problem B:\n")[1].split("\n")[0]
        return json.dumps({"question": f"{a}+{b}"})

    with bound(op, script):
        result = op.process(batch(question=["A", "B", "C"]))
    assert result.columns == {
        "fused_question": ["A+B", "B+C", "C+A"],
        "method": ["sequential"] * 3,
        "sample": [0, 0, 0],
        "partner_question": ["B", "C", "A"],
    }
    with bound(op, script):
        alone = op.process(batch(question=["A"]))
    assert alone.failed == ["null `second_question` in prompt"]


def test_fusion_uses_a_bound_partner_column_and_records_each_method():
    op = MathQuestionFusionGenerator(inputs={"second_question": "other"})
    assert op.required_columns() == ["question", "other"]
    with bound(op, lambda r: json.dumps({"question": "fused"})) as backend:
        result = op.process(batch({"second_question": "other"}, question=["A"], other=["Z"]))
    assert result.columns["method"] == ["sequential", "parallel", "conditional"]
    assert result.columns["partner_question"] == ["Z"] * 3
    assert all("Problem B:\nZ\n" in r.messages[-1]["content"] for r in backend.history)
    assert "Chain them" in backend.history[0].messages[-1]["content"]


# Solutions -----------------------------------------------------------------------------------
SOLVE = (
    "Solve the following math problem. Reason step by step, showing your work, then give the final answer "
    "on the last line as $\\boxed{answer}$, with the answer in simplest exact form.\n\nProblem:\n"
)


def solve(question: str) -> str:
    return SOLVE + question + "\n"


def question_in(request: Request) -> str:
    return request.messages[-1]["content"].split("Problem:\n")[1].strip()


def test_answer_generator_samples_n_solutions_per_question():
    op = MathAnswerGenerator(MathAnswerGenerator.Params(n=2, temperature=0.8))
    assert op.build_messages({"question": "1+1?"}) == [{"role": "user", "content": solve("1+1?")}]
    with bound(
        op, lambda r: "" if question_in(r) == "empty" else f"so \\boxed{{{r.sample_index}}}"
    ) as backend:
        result = op.process(batch(question=["1+1?", "empty"]))
    assert result.result.columns == {"solution": ["so \\boxed{0}", "so \\boxed{1}"], "sample": [0, 1]}
    assert result.failed == [None, "empty solution"]
    assert backend.history[:2] == [
        Request(user(solve("1+1?")), Sampling(temperature=0.8), None, sample_index=k) for k in (0, 1)
    ]


def test_answer_generator_can_collect_samples_in_a_list():
    op = MathAnswerGenerator(MathAnswerGenerator.Params(n=3, collect=True))
    assert op.active_outputs() == ["solutions"]
    with bound(op, lambda r: f"\\boxed{{{r.sample_index}}}"):
        result = op.process(batch(question=["q"]))
    assert result["solutions"].to_pylist() == [["\\boxed{0}", "\\boxed{1}", "\\boxed{2}"]]


def rejection(**params):
    return MathRejectionSamplingGenerator(
        MathRejectionSamplingGenerator.Params(**params), inputs={"gold": "answer"}
    )


def test_rejection_sampling_stops_at_m_verified_and_records_tries():
    op = rejection(k=4, m=1, round_size=1)
    answers = {"Q1": ["\\boxed{5}", "so \\boxed{\\frac{8}{2}}", "\\boxed{4}"], "Q2": ["\\boxed{1}"] * 4}

    def script(request):
        return answers[question_in(request)][request.sample_index]

    with bound(op, script) as backend:
        result = op.process(batch(question=["Q1", "Q2"], answer=["4", "7"]))
    assert isinstance(result, Partial)
    assert result.result.columns == {
        "solution": ["so \\boxed{\\frac{8}{2}}"],
        "extracted_answer": ["\\frac{8}{2}"],
        "reference_answer": ["4"],
        "reference_source": ["gold"],
        "tries": [2],
        "verified": [1],
        "agreement": [0.5],
        "sample": [1],
    }
    assert result.failed == [None, "no verified solution in 4 samples"]
    assert result.raw == [None, "\\boxed{1}"]
    sent = sorted((question_in(r), r.sample_index) for r in backend.history)
    assert sent == [("Q1", 0), ("Q1", 1), ("Q2", 0), ("Q2", 1), ("Q2", 2), ("Q2", 3)]


def test_rejection_sampling_keeps_up_to_m_and_counts_every_verified_sample():
    op = rejection(k=6, m=2, round_size=3)
    with bound(op, lambda r: ["\\boxed{4}", "\\boxed{3}", "\\boxed{4.0}", "\\boxed{4}"][r.sample_index]):
        result = op.process(batch(question=["Q"], answer=["4"]))
    assert result.columns["sample"] == [0, 2]
    assert (result.columns["tries"], result.columns["verified"]) == ([3, 3], [2, 2])


def test_rejection_sampling_without_gold_uses_the_majority_answer():
    op = rejection(k=4, m=1, min_agreement=0.5, min_votes=2)
    answers = {
        "agree": ["\\boxed{3}", "\\boxed{5}", "\\boxed{3.0}", "\\boxed{3}"],
        "split": ["\\boxed{1}", "\\boxed{2}", "\\boxed{3}", "\\boxed{4}"],
    }
    with bound(op, lambda r: answers[question_in(r)][r.sample_index]):
        result = op.process(batch(question=["agree", "split"], answer=[None, None]))
    assert result.result.columns["reference_source"] == ["majority"]
    assert result.result.columns["reference_answer"] == ["3"]
    assert (result.result.columns["verified"], result.result.columns["agreement"]) == ([3], [0.75])
    assert result.failed == [None, "no majority answer (agreement 0.25, 1 votes)"]


def test_rejection_sampling_gold_input_is_optional():
    op = MathRejectionSamplingGenerator(MathRejectionSamplingGenerator.Params(k=2, min_votes=2))
    assert op.required_columns() == ["question"]
    with bound(op, lambda r: "\\boxed{9}"):
        result = op.process(batch(question=["Q"]))
    assert result.columns["reference_source"] == ["majority"]
    with pytest.raises(ValidationError, match="more than `k`"):
        MathRejectionSamplingGenerator.Params(k=2, m=3)


def test_rejection_sampling_reports_the_llm_failure_when_every_request_failed():
    from dataflow_cli.llm.types import LLMError

    op = rejection(k=2)
    with bound(op, lambda r: LLMError("bad_request", "no", status=400)):
        result = op.process(batch(question=["Q"], answer=["1"]))
    assert result.failed == ["llm bad_request (HTTP 400)"]


# Labels --------------------------------------------------------------------------------------
def test_difficulty_prompt_schema_and_strict_parse():
    op = MathDifficultyEvaluator()
    content = op.build_messages({"question": "What is 2+2?"})[0]["content"]
    assert content.startswith(
        "Rate how difficult the following math problem is to solve, on a scale from 1 to 10:\n"
    )
    assert "Problem:\nWhat is 2+2?\n\nAnswer with one JSON object" in content
    assert op.json_schema()["properties"]["difficulty"] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert op.parse('{"reason": "one step", "difficulty": 1}', {}) == {
        "difficulty": 1,
        "difficulty_reason": "one step",
    }
    for bad in (
        '{"reason": "r", "difficulty": 11}',
        '{"reason": "r", "difficulty": "5"}',
        '{"reason": "r", "difficulty": true}',
        "difficulty: 5",
    ):
        with pytest.raises(ParseError):
            op.parse(bad, {})
    with bound(
        op,
        lambda r: "7" if "hard one" in r.messages[-1]["content"] else '{"reason": "easy", "difficulty": 2}',
    ):
        result = op.process(batch(question=["easy one", "hard one"]))
    assert result.result == {"difficulty": [2, None], "difficulty_reason": ["easy", None]}
    assert (result.failed, result.raw) == ([None, "llm invalid_output"], [None, "7"])


def test_category_lists_the_categories_and_only_accepts_them():
    op = MathCategoryEvaluator(MathCategoryEvaluator.Params(categories=["algebra", "geometry"]))
    assert op.required_columns() == ["question"]
    assert op.build_messages({"question": "Q"})[0]["content"] == (
        "Classify the following math problem into exactly one of these categories: algebra, geometry.\n\n"
        "Problem:\nQ\n\n"
        'Answer with one JSON object and nothing else: {"reason": "<one sentence>", "category": "<one of the categories>"}\n'
    )
    assert op.json_schema()["properties"]["category"]["enum"] == ["algebra", "geometry"]
    with pytest.raises(ParseError, match="not one of the categories"):
        op.parse('{"reason": "r", "category": "calculus"}', {})
    with bound(op, lambda r: '{"reason": "shapes", "category": "geometry"}'):
        assert op.process(batch(question=["Q"])) == {"category": ["geometry"], "category_reason": ["shapes"]}
    assert MathCategoryEvaluator().params.categories == CATEGORIES
    with pytest.raises(ValidationError):
        MathCategoryEvaluator.Params(categories=["a", "a"])
