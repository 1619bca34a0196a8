"""json_generator, prompted_filter, prompted_refiner, pairwise_judge_evaluator, chat_format_refiner.

Prompts and parsing are tested directly, without a backend; then the LLM operators run against
a real `LLMEngine` over a scripted `FakeBackend`, checking the exact requests and the results;
then every operator runs end to end through `dataflow run` with a `fake` backend in the spec.
"""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest
import yaml
from dataflow_operators.llm.json_generator import JsonGenerator, property_kind
from dataflow_operators.llm.pairwise_judge import PairwiseJudgeEvaluator, parse_verdict
from dataflow_operators.llm.prompted_filter import PromptedFilter
from dataflow_operators.llm.prompted_refiner import PromptedRefiner
from dataflow_operators.sft.chat_format import ChatFormatRefiner
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli.cli.app import app
from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.io.paths import default_rejects_path
from dataflow_cli.llm.operator import ParseError
from dataflow_cli.llm.types import LLMError, Request, Sampling
from dataflow_cli.operator import Batch, Partial, Verdict
from dataflow_cli.spec.build import load_spec
from dataflow_cli.spec.model import SpecErrors
from tests.support.llm_ops import batch, bound, user

SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string"},
        "difficulty": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["question", "difficulty", "tags"],
    "additionalProperties": False,
}
SCHEMA_TEXT = (
    '{"type": "object", "properties": {"question": {"type": "string"}, "difficulty": {"type": "integer", '
    '"minimum": 1, "maximum": 5}, "tags": {"type": "array", "items": {"type": "string"}}}, "required": '
    '["question", "difficulty", "tags"], "additionalProperties": false}'
)
SCHEMA_INSTRUCTION = "Answer with a single JSON object that satisfies this JSON Schema:\n" + SCHEMA_TEXT
RATE = (
    "Rate the quality of the following text on a scale from 1 (useless) to 10 (excellent) as training "
    "data for a helpful assistant. Consider correctness, clarity and completeness.\n\nText:\n{}\n\n"
    "Answer with the number only.\n"
)
REWRITE = (
    "Rewrite the following text so that it is clear, correct and well written. Keep its meaning, its "
    "language and every fact it states; do not add new information.\n\nText:\n{}\n\n"
    "Answer with the rewritten text only.\n"
)
JUDGE_HEAD = (
    "Compare two responses{} and decide which one is better: more helpful, correct, relevant and clear. "
    "Judge the content only: the order in which the responses are shown, their length and their style "
    "must not influence you.\n"
)
JUDGE_TAIL = (
    "\nResponse A:\n{}\n\nResponse B:\n{}\n\nExplain your reasoning in a few sentences, then end with a "
    "final line that is exactly `Winner: A`, `Winner: B` or `Winner: tie`.\n"
)


def judge_prompt(a: str, b: str, question: str = "") -> str:
    if question:
        return (
            JUDGE_HEAD.format(" to the same question")
            + f"\nQuestion:\n{question}\n"
            + JUDGE_TAIL.format(a, b)
        )
    return JUDGE_HEAD.format("") + JUDGE_TAIL.format(a, b)


def last_user(request: Request) -> str:
    return request.messages[-1]["content"]


# --- json_generator: params, columns ---


def json_op(outputs=None, **params) -> JsonGenerator:
    params.setdefault("template", "Write a quiz question about {{ topic }}.")
    return JsonGenerator(JsonGenerator.Params(json_schema=SCHEMA, **params), outputs=outputs)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "strin"}}},
            "not a valid JSON Schema .* at `properties/a/type`",
        ),
        ({"type": "object", "properties": []}, "not a valid JSON Schema"),
        ({"type": "array", "items": {"type": "string"}}, "must describe an object"),
        ({"type": "object"}, "needs `properties`"),
        ({"type": "object", "properties": {}}, "needs `properties`"),
    ],
)
def test_json_schema_param_is_checked(schema, message):
    with pytest.raises(ValidationError, match=message):
        JsonGenerator.Params(json_schema=schema, template="x")


def test_json_schema_param_is_required():
    with pytest.raises(ValidationError, match="json_schema"):
        JsonGenerator.Params(template="x")


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        ({"type": "string"}, "string"),
        ({"type": "integer"}, "int64"),
        ({"type": "number"}, "float64"),
        ({"type": "boolean"}, "bool"),
        ({"type": ["integer", "null"]}, "int64"),
        ({"type": ["integer", "number"]}, "float64"),
        ({"enum": ["easy", "hard"]}, "string"),
        ({"const": 3}, "int64"),
        ({"type": "array", "items": {"type": "string"}}, "json"),
        ({"type": "object"}, "json"),
        ({"type": ["string", "integer"]}, "json"),
        ({"enum": ["a", 1]}, "json"),
        ({"description": "anything"}, "json"),
        ({"$ref": "#/$defs/x"}, "json"),
        (True, "json"),
    ],
)
def test_property_kind(schema, kind):
    assert property_kind(schema) == kind


def test_one_column_per_property_with_arrow_types():
    op = json_op()
    assert op.output_columns == {"question": "question", "difficulty": "difficulty", "tags": "tags"}
    assert op.required_columns() == ["topic"]
    assert op.transform_schema({"_id": "string", "topic": "string"}) == {
        "_id": "string",
        "topic": "string",
        "question": "string",
        "difficulty": "int64",
        "tags": "string",
    }
    assert op.written_columns() == ["question", "difficulty", "tags"]
    assert op.json_schema() == SCHEMA


def test_outputs_bind_properties_to_new_column_names():
    op = json_op(outputs={"question": "quiz_question", "tags": "quiz_tags"})
    assert op.output_columns == {"question": "quiz_question", "difficulty": "difficulty", "tags": "quiz_tags"}
    assert op.written_columns() == ["quiz_question", "difficulty", "quiz_tags"]
    assert op.transform_schema({"topic": "string"}) == {
        "topic": "string",
        "quiz_question": "string",
        "difficulty": "int64",
        "quiz_tags": "string",
    }
    # Class-level ports accept any name (spec validation), the instance checks it.
    assert "anything" in JsonGenerator.outputs and list(JsonGenerator.outputs) == ["<property>"]


def test_outputs_binding_errors():
    with pytest.raises(
        DataflowError, match="`json_schema` has no property `questio`; did you mean `question`"
    ):
        json_op(outputs={"questio": "q"})
    with pytest.raises(DataflowError, match="both bound to column `x`"):
        json_op(outputs={"question": "x", "tags": "x"})
    schema = {"type": "object", "properties": {"_score": {"type": "number"}}}
    with pytest.raises(DataflowError, match="`_` are reserved"):
        JsonGenerator(JsonGenerator.Params(json_schema=schema, template="x"))
    op = JsonGenerator(JsonGenerator.Params(json_schema=schema, template="x"), outputs={"_score": "score"})
    assert op.output_columns == {"_score": "score"}


# --- json_generator: prompt and parse ---


def test_json_messages_carry_the_schema_in_the_system_message():
    assert json_op().build_messages({"topic": "tides"}) == [
        {"role": "system", "content": SCHEMA_INSTRUCTION},
        {"role": "user", "content": "Write a quiz question about tides."},
    ]
    assert json_op(system="You write quizzes.").build_messages({"topic": "tides"}) == [
        {"role": "system", "content": "You write quizzes.\n\n" + SCHEMA_INSTRUCTION},
        {"role": "user", "content": "Write a quiz question about tides."},
    ]
    assert json_op(schema_in_prompt=False).build_messages({"topic": "tides"}) == [
        {"role": "user", "content": "Write a quiz question about tides."}
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"question": "Why?", "difficulty": 2, "tags": ["a", "日本"]}',
            {"question": "Why?", "difficulty": 2, "tags": '["a", "日本"]'},
        ),
        (
            '```json\n{"question": "Q", "difficulty": 5.0, "tags": []}\n```',
            {"question": "Q", "difficulty": 5, "tags": "[]"},
        ),
    ],
)
def test_json_parse(text, expected):
    parsed = json_op().parse(text, {})
    assert parsed == expected
    assert type(parsed["difficulty"]) is int


def test_json_parse_nullable_and_absent_properties():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"type": ["object", "null"]},
            "c": {"type": "number"},
        },
    }
    op = JsonGenerator(JsonGenerator.Params(json_schema=schema, template="x"))
    assert op.parse('{"a": null, "b": {"k": [1, null]}, "extra": 1}', {}) == {
        "a": None,
        "b": '{"k": [1, null]}',
        "c": None,
    }
    assert op.parse('{"a": "s", "b": null, "c": 2}', {}) == {"a": "s", "b": None, "c": 2.0}


def test_json_parse_integer_beyond_int64_is_a_parse_error():
    op = JsonGenerator(
        JsonGenerator.Params(json_schema={"type": "object", "properties": {"n": {"type": "integer"}}})
    )
    assert op.parse('{"n": -9223372036854775808}', {}) == {"n": -(2**63)}
    with pytest.raises(ParseError, match="integer outside the int64 range"):
        op.parse('{"n": 9223372036854775808}', {})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Sure! Here it is.", "answer is not JSON"),
        ('{"question": "Q"', "answer is not JSON"),
        ('["question"]', "answer is not a JSON object"),
        ('{"question": "Q", "difficulty": 9, "tags": []}', "difficulty does not match the schema"),
        ('{"question": "Q", "tags": []}', "answer does not match the schema"),
        ('{"question": "Q", "difficulty": 1, "tags": [], "x": 1}', "answer does not match the schema"),
    ],
)
def test_json_parse_errors(text, reason):
    with pytest.raises(ParseError, match=f"^{re.escape(reason)}$"):
        json_op().parse(text, {})


# --- json_generator: with an engine ---


def test_json_generator_requests_structured_output_and_fills_columns():
    answers = {
        "tides": '{"question": "What causes tides?", "difficulty": 2, "tags": ["moon"]}',
        "rust": '```json\n{"question": "What is rust?", "difficulty": 1, "tags": []}\n```',
    }
    op = json_op(temperature=0.2)
    with bound(op, lambda r: answers[last_user(r).split()[-1].rstrip(".")]) as backend:
        result = op.process(batch(topic=["tides", "rust"]))
    assert result == {
        "question": ["What causes tides?", "What is rust?"],
        "difficulty": [2, 1],
        "tags": ['["moon"]', "[]"],
    }
    system = {"role": "system", "content": SCHEMA_INSTRUCTION}
    assert backend.history == [
        Request(
            (system, {"role": "user", "content": f"Write a quiz question about {topic}."}),
            Sampling(temperature=0.2),
            SCHEMA,
            sample_index=0,
        )
        for topic in ("tides", "rust")
    ]


def test_json_generator_retries_invalid_answers_then_rejects_with_raw_text():
    attempts: dict[str, int] = {}
    good = '{"question": "Q", "difficulty": 3, "tags": ["t"]}'

    def script(request):
        topic = last_user(request).split()[-1].rstrip(".")
        attempts[topic] = attempts.get(topic, 0) + 1
        if topic == "late":  # invalid twice (not JSON, then schema-invalid), then valid
            return ["not json", '{"question": 5}', good][attempts[topic] - 1]
        if topic == "broken":
            return "```json\n{oops\n```"
        if topic == "wrong":
            return '{"question": "Q", "difficulty": 9, "tags": []}'
        return good

    op = json_op()
    with bound(op, script) as backend:
        result = op.process(batch(topic=["late", "broken", "wrong", "ok", None]))
        stats = op.client.stats
    assert attempts == {"late": 3, "broken": 3, "wrong": 3, "ok": 1}  # Policy().schema_retries == 2
    assert len(backend.history) == 10 and {
        r.json_schema is SCHEMA or r.json_schema == SCHEMA for r in backend.history
    } == {True}
    assert stats.invalid_outputs == 8 and stats.errors_by_kind == {"invalid_output": 2}
    assert isinstance(result, Partial)
    assert result.failed == [None, "llm invalid_output", "llm invalid_output", None, "null `topic` in prompt"]
    assert result.raw == [
        None,
        "```json\n{oops\n```",
        '{"question": "Q", "difficulty": 9, "tags": []}',
        None,
        None,
    ]
    assert result.result["question"] == ["Q", None, None, "Q", None]
    assert result.result["difficulty"] == [3, None, None, 3, None]


# --- prompted_filter ---


def test_filter_default_template_and_params():
    op = PromptedFilter()
    assert op.required_columns() == ["text"] and op.written_columns() == []
    assert op.transform_schema({"text": "string"}) == {"text": "string"}
    assert op.build_messages({"text": "Hi."}) == [{"role": "user", "content": RATE.format("Hi.")}]
    with pytest.raises(ValidationError, match=r"`threshold` \(11\) is outside \[1, 10\]"):
        PromptedFilter.Params(threshold=11)
    with pytest.raises(ValidationError, match="`keep_labels` is required"):
        PromptedFilter.Params(parse="label", labels=["good", "bad"])
    with pytest.raises(
        ValidationError, match="keep label `godo` is not one of `labels`; did you mean `good`"
    ):
        PromptedFilter.Params(parse="label", labels=["good", "bad"], keep_labels=["godo"])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("7", True),
        ("Score: 9.5", True),
        ("6.9", (False, "llm score < 7", "got 6.9")),
        ("1", (False, "llm score < 7", "got 1")),
    ],
)
def test_filter_parse_number(answer, expected):
    assert PromptedFilter().parse(answer, {}) == expected


def test_filter_parse_label_and_errors():
    op = PromptedFilter(PromptedFilter.Params(parse="label", labels=["good", "bad"], keep_labels=["GOOD"]))
    assert op.parse("Good", {}) is True
    assert op.parse("bad, not good", {}) == (False, "llm label `bad`")
    with pytest.raises(ParseError, match="no known label in answer"):
        op.parse("fine", {})
    with pytest.raises(ParseError, match="no number in answer"):
        PromptedFilter().parse("great", {})
    with pytest.raises(ParseError, match=r"score outside \[1, 10\]"):
        PromptedFilter().parse("0", {})


def test_filter_keeps_scores_at_or_above_threshold_and_rejects_unparsable_answers():
    replies = {"great": "9", "edge": "7", "poor": "3", "odd": "no idea"}
    op = PromptedFilter(PromptedFilter.Params(temperature=0))
    with bound(op, lambda r: replies[last_user(r).split("Text:\n")[1].split("\n")[0]]) as backend:
        result = op.process(batch(text=["great", "edge", "poor", "odd", None]))
    assert isinstance(result, Partial)
    verdict = result.result
    assert isinstance(verdict, Verdict)
    assert list(verdict.keep) == [True, True, False, True, True]  # failed rows: ignored
    assert verdict.reason.to_pylist() == [None, None, "llm score < 7", None, None]
    assert verdict.detail.to_pylist() == [None, None, "got 3", None, None]
    assert result.failed == [None, None, None, "parse error: no number in answer", "null `text` in prompt"]
    assert result.raw == [None, None, None, "no idea", None]
    assert backend.history == [
        Request(user(RATE.format(t)), Sampling(temperature=0), None, sample_index=0) for t in replies
    ]


def test_filter_label_mode_reasons():
    op = PromptedFilter(
        PromptedFilter.Params(
            parse="label", labels=["good", "bad", "toxic"], keep_labels=["good"], template="{{ t }}"
        )
    )
    with bound(op, lambda r: {"a": "Good", "b": "bad", "c": "TOXIC!"}[last_user(r)]):
        verdict = op.process(batch(t=["a", "b", "c"]))
    assert isinstance(verdict, Verdict)
    assert list(verdict.keep) == [True, False, False]
    assert verdict.reason.to_pylist() == [None, "llm label `bad`", "llm label `toxic`"]


# --- prompted_refiner ---


def test_refiner_default_template_and_bound_input():
    op = PromptedRefiner(inputs={"text": "body"})
    assert op.build_messages({"text": "teh cat"}) == [{"role": "user", "content": REWRITE.format("teh cat")}]
    # The template's `text` is the bound column `body`, not a column named `text`.
    assert op.required_columns() == ["body"]
    assert op.written_columns() == ["body"]
    assert op.rows(batch({"text": "body"}, body=["x"])) == [{"text": "x"}]


def test_refiner_template_must_use_text():
    op = PromptedRefiner(PromptedRefiner.Params(template="Rewrite {{ body }}"))
    with pytest.raises(SpecError, match=r"must use `\{\{ text \}\}`"):
        op.required_columns()
    op = PromptedRefiner(PromptedRefiner.Params(template="In {{ lang }}: {{ text }}"))
    assert op.required_columns() == ["text", "lang"]


def test_refiner_rewrites_and_rejects_empty_answers():
    def script(request):
        text = last_user(request).split("Text:\n")[1].split("\n")[0]
        return {
            "teh cat": "  The cat.\n",
            "blank": " \n ",
            "fail": LLMError("bad_request", "no", status=400),
        }[text]

    op = PromptedRefiner(PromptedRefiner.Params(max_tokens=100), inputs={"text": "body"})
    b = batch({"text": "body"}, body=["teh cat", "blank", "fail", None])
    with bound(op, script) as backend:
        result = op.process(b)
    assert isinstance(result, Partial)
    assert result.result["text"].to_pylist() == ["The cat.", "blank", "fail", None]
    assert result.failed == [None, "empty rewrite", "llm bad_request (HTTP 400)", "null `text` in prompt"]
    assert result.raw == [None, " \n ", None, None]
    assert backend.history == [
        Request(user(REWRITE.format(t)), Sampling(max_tokens=100), None, sample_index=0)
        for t in ("teh cat", "blank", "fail")
    ]


def test_refiner_keep_original_on_empty_and_no_strip():
    op = PromptedRefiner(
        PromptedRefiner.Params(keep_original_on_empty=True, strip=False, template="{{ text }}")
    )
    with bound(op, lambda r: "" if last_user(r) == "a" else f" {last_user(r).upper()}\n"):
        result = op.process(batch(text=pa.array(["a", "b"], pa.large_string())))
    assert result["text"].to_pylist() == ["a", " B\n"]
    assert result["text"].type == pa.large_string()


# --- pairwise_judge_evaluator ---


def test_judge_messages_with_and_without_question():
    op = PairwiseJudgeEvaluator(PairwiseJudgeEvaluator.Params(system="You are a fair judge."))
    row = {"question": "What is 2+2?", "response_a": "4", "response_b": "5"}
    assert op.build_messages(row) == [
        {"role": "system", "content": "You are a fair judge."},
        {"role": "user", "content": judge_prompt("4", "5", "What is 2+2?")},
    ]
    assert op.build_messages({**row, "question": ""})[1]["content"] == judge_prompt("4", "5")


def test_judge_question_is_optional_unless_bound():
    assert PairwiseJudgeEvaluator().required_columns() == ["response_a", "response_b"]
    op = PairwiseJudgeEvaluator(inputs={"question": "prompt", "response_a": "chosen"})
    assert op.required_columns() == ["prompt", "chosen", "response_b"]
    assert op.transform_schema({"x": "string"}) == {
        "x": "string",
        "preference": "string",
        "a_wins": "float64",
    }
    with pytest.raises(SpecError, match=r"must use `\{\{ response_b \}\}`"):
        PairwiseJudgeEvaluator(PairwiseJudgeEvaluator.Params(template="{{ response_a }}")).required_columns()


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Response A is clearer.\nWinner: A", "a"),
        ("**Winner:** B", "b"),
        ("The winner is Response B.", "b"),
        ("Final verdict: [[A]]", "a"),
        ("Both are equally good.\nWinner: tie", "tie"),
        ("Winner: a tie", "tie"),
        ("Winner: draw", "tie"),
        ("To pick the winner, a short answer helps.\nWinner: B", "b"),
        ("Winner: A\n...on reflection...\nWinner: B", "b"),
        ("B", "b"),
        ("[[A]]", "a"),
        ("Tie.", "tie"),
        ("winner: assistant b", "b"),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict
    assert PairwiseJudgeEvaluator().parse(text, {}) == {"preference": verdict}


@pytest.mark.parametrize("text", ["", "Both are fine.", "I prefer A overall", "Winner: both", "Winner: C"])
def test_parse_verdict_errors(text):
    with pytest.raises(ParseError, match=r"no `Winner: A\|B\|tie` line"):
        parse_verdict(text)


def judge_script(request):
    """A judge that prefers STRONG wherever it is shown, says tie for TIE, cannot decide on JUNK
    shown first, and otherwise always picks the first response shown (position bias)."""
    prompt = last_user(request)
    first = prompt.split("Response A:\n")[1].split("\n")[0]
    second = prompt.split("Response B:\n")[1].split("\n")[0]
    if first == "JUNK":
        return "hmm"
    if "TIE" in (first, second):
        return "They are equivalent.\nWinner: tie"
    if second == "STRONG":
        return "The second is better.\nWinner: B"
    return "The first is better.\nWinner: A"


def test_judge_asks_in_both_orders_and_cancels_position_bias():
    op = PairwiseJudgeEvaluator(PairwiseJudgeEvaluator.Params(temperature=0))
    b = batch(
        question=["Q0", None, "Q2", "Q3", "Q4", "Q5"],
        response_a=["STRONG", "weak", "x", "TIE", "p", None],
        response_b=["weak", "STRONG", "y", "z", "JUNK", "q"],
    )
    with bound(op, judge_script) as backend:
        result = op.process(b)
    assert isinstance(result, Partial)
    assert result.result == {
        "preference": ["a", "b", "tie", "tie", None, None],
        "a_wins": [1.0, 0.0, 0.5, 0.5, None, None],
    }
    assert result.failed == [
        None,
        None,
        None,
        None,
        "parse error: no `Winner: A|B|tie` line",
        "null `response_a` in prompt",
    ]
    assert result.raw == [None, None, None, None, "hmm", None]
    pairs = [
        ("Q0", "STRONG", "weak"),
        ("", "weak", "STRONG"),
        ("Q2", "x", "y"),
        ("Q3", "TIE", "z"),
        ("Q4", "p", "JUNK"),
    ]
    expected = []
    for question, a, b_ in pairs:  # in order, then swapped; nothing for the null row
        expected.append(
            Request(user(judge_prompt(a, b_, question)), Sampling(temperature=0), None, sample_index=0)
        )
        expected.append(
            Request(user(judge_prompt(b_, a, question)), Sampling(temperature=0), None, sample_index=0)
        )
    assert backend.history == expected


def test_judge_without_question_column_and_failed_request():
    def script(request):
        if "down" in last_user(request):
            return LLMError("server", "boom", status=503)
        return "Winner: A"  # always the first shown: a disagreement, hence a tie

    op = PairwiseJudgeEvaluator(inputs={"response_a": "chosen", "response_b": "rejected"})
    b = batch(
        {"response_a": "chosen", "response_b": "rejected"}, chosen=["c1", "down"], rejected=["r1", "r2"]
    )
    with bound(op, script, max_retries=0) as backend:
        result = op.process(b)
    assert result.result == {"preference": ["tie", None], "a_wins": [0.5, None]}
    assert result.failed == [None, "llm server (HTTP 503)"]
    assert [last_user(r) for r in backend.history] == [
        judge_prompt("c1", "r1"),
        judge_prompt("r1", "c1"),
        judge_prompt("down", "r2"),
        judge_prompt("r2", "down"),
    ]


def test_judge_all_agreeing_returns_plain_columns():
    op = PairwiseJudgeEvaluator(
        PairwiseJudgeEvaluator.Params(template="1: {{ response_a }} 2: {{ response_b }}")
    )
    with bound(op, lambda r: "Winner: B" if last_user(r).endswith("STRONG") else "Winner: A"):
        result = op.process(batch(response_a=["STRONG", "w"], response_b=["w", "STRONG"]))
    assert result == {"preference": ["a", "b"], "a_wins": [1.0, 0.0]}


# --- chat_format_refiner ---


def chat_table():
    return pa.table(
        {
            "_id": ["0", "1", "2", "3"],
            "instruction": ["Hi", "2+2?", None, "Bye"],
            "response": ["Hello!", "4", "x", None],
            "persona": [None, "You are a tutor.", None, None],
            "source": ["a", "b", "c", "d"],
            "_meta": ["m0", "m1", "m2", "m3"],
        }
    )


def test_chat_openai_format_with_system_and_nulls():
    op = ChatFormatRefiner(
        ChatFormatRefiner.Params(system="Be nice.", system_column="persona", keep_columns=["source"])
    )
    result = op.process(Batch(chat_table()))
    assert isinstance(result, Partial)
    assert result.failed == [None, None, "null `instruction`", "null `response`"]
    assert result.raw is None
    out = result.result
    assert out.column_names == ["messages", "source", "_id", "_meta"]
    assert out.column("messages").to_pylist()[:2] == [
        [
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ],
        [
            {"role": "system", "content": "You are a tutor."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ],
    ]
    assert out.column("source").to_pylist() == ["a", "b", "c", "d"]


def test_chat_sharegpt_format_without_system():
    op = ChatFormatRefiner(ChatFormatRefiner.Params(format="sharegpt"))
    table = chat_table().slice(0, 2)
    out = op.process(Batch(table))
    assert isinstance(out, pa.Table)
    assert out.column_names == ["conversations", "_id", "_meta"]
    assert out.column("conversations").to_pylist() == [
        [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}],
        [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}],
    ]
    assert str(out.schema.field("conversations").type) == "list<item: struct<from: string, value: string>>"


def test_chat_sharegpt_system_and_non_text_values():
    op = ChatFormatRefiner(
        ChatFormatRefiner.Params(
            format="sharegpt", user_column="q", assistant_column="a", system="S", output_column="conv"
        )
    )
    result = op.process(Batch(pa.table({"q": ["x", "y"], "a": [1, None]})))
    assert result.failed == ["non-text `a`", "null `a`"]
    assert result.result.column_names == ["conv"]
    assert result.result.column("conv").to_pylist() == [None, None]
    out = op.process(Batch(pa.table({"q": ["y"], "a": ["z"]})))
    assert out.column("conv").to_pylist() == [
        [{"from": "system", "value": "S"}, {"from": "human", "value": "y"}, {"from": "gpt", "value": "z"}],
    ]


def test_chat_column_flow():
    op = ChatFormatRefiner(
        ChatFormatRefiner.Params(system_column="persona", keep_columns=["source", "instruction"])
    )
    assert op.required_columns() == ["instruction", "response", "persona", "source"]
    assert op.written_columns() == ["messages"]
    schema = {
        "_id": "string",
        "instruction": "string",
        "response": "string",
        "persona": "string",
        "source": "string",
    }
    assert op.transform_schema(schema) == {
        "messages": "list<item: struct<role: string, content: string>>",
        "source": "string",
        "instruction": "string",
        "_id": "string",
    }
    with pytest.raises(DataflowError, match="column `respons` is not in the batch"):
        ChatFormatRefiner(ChatFormatRefiner.Params(assistant_column="respons")).process(Batch(chat_table()))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"format": "chatml"}, "format"),
        ({"keep_columns": ["_id"]}, "internal"),
        ({"keep_columns": ["a", "a"]}, "lists a column twice"),
        ({"keep_columns": ["messages"]}, "cannot also be in `keep_columns`"),
        ({"format": "sharegpt", "keep_columns": ["conversations"]}, "cannot also be in `keep_columns`"),
        ({"user_column": ""}, "at least 1"),
        ({"output_column": "_chat"}, "internal"),
    ],
)
def test_chat_params_are_checked(params, message):
    with pytest.raises(ValidationError, match=message):
        ChatFormatRefiner.Params(**params)


# --- spec validation (column flow with the overridden bindings) ---


def validate(tmp_path, stages: str, rows: list[dict], backend: str = "{default: {provider: fake}}"):
    write_jsonl(tmp_path / "in.jsonl", rows)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nname: v\ninput: {{path: in.jsonl}}\noutput: {{path: out.jsonl}}\nbackends: {backend}\n"
        f"stages:\n{stages}",
        encoding="utf-8",
    )
    return load_spec(spec)


def messages_of(exc: SpecErrors) -> list[str]:
    return [issue.message for issue in exc.issues]


def test_spec_json_generator_outputs_are_bound_by_property(tmp_path):
    stages = f"""
  - name: gen
    op: json_generator
    outputs: {{question: quiz}}
    params: {{template: "About {{{{ topic }}}}", json_schema: {json.dumps(SCHEMA)}}}
  - name: measure
    op: length_evaluator
    inputs: {{text: quiz}}
"""
    spec = validate(tmp_path, stages, [{"topic": "t"}])
    assert spec.stages[0].outputs == {"question": "quiz", "difficulty": "difficulty", "tags": "tags"}
    with pytest.raises(SpecErrors) as caught:
        validate(tmp_path, stages.replace("{question: quiz}", "{answer: quiz}"), [{"topic": "t"}])
    assert any("`json_schema` has no property `answer`" in m for m in messages_of(caught.value))
    with pytest.raises(SpecErrors) as caught:
        validate(tmp_path, stages.replace("{question: quiz}", "{}"), [{"topic": "t", "tags": "x"}])
    assert any("would overwrite column `tags`" in m for m in messages_of(caught.value))


def test_spec_refiner_binding_and_judge_optional_question(tmp_path):
    stages = """
  - name: polish
    op: prompted_refiner
    inputs: {text: body}
  - name: judge
    op: pairwise_judge_evaluator
    inputs: {response_a: body, response_b: other}
"""
    spec = validate(tmp_path, stages, [{"body": "b", "other": "o"}])
    assert [s.op_name for s in spec.stages] == ["prompted_refiner", "pairwise_judge_evaluator"]
    with pytest.raises(SpecErrors) as caught:
        validate(
            tmp_path,
            stages.replace("{response_a: body", "{question: prompt, response_a: body"),
            [{"body": "b", "other": "o"}],
        )
    assert any("column `prompt` is not in the input" in m for m in messages_of(caught.value))


def test_spec_chat_format_keeps_only_its_columns(tmp_path):
    stages = """
  - name: chat
    op: chat_format_refiner
    params: {keep_columns: [source]}
  - name: measure
    op: length_evaluator
    inputs: {text: instruction}
"""
    with pytest.raises(SpecErrors) as caught:
        validate(tmp_path, stages, [{"instruction": "i", "response": "r", "source": "s"}])
    assert any(
        "column `instruction` is not in the input or produced by an earlier stage" in m
        for m in messages_of(caught.value)
    )


# --- end to end ---


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_spec(tmp_path, monkeypatch, stages: str, rows: list[dict], backend: str | None = None) -> dict:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", rows)
    backends = f"backends:\n  default:\n{backend}" if backend else ""
    output = "{path: out.jsonl, internal_columns: true}"
    spec = (
        f"version: 1\nname: e2e\ninput: {{path: in.jsonl}}\noutput: {output}\n{backends}\nstages:\n{stages}"
    )
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "spec.yaml", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["rows_read"] == stats["rows_written"] + stats["rows_rejected"] == len(rows)
    assert (tmp_path / ".dataflow" / "llm-cache.sqlite").exists() == (backend is not None)
    return stats


def rejects_of(tmp_path) -> list[dict]:
    return read_jsonl(default_rejects_path(tmp_path / "out.jsonl"))


def test_cli_json_generator(tmp_path, monkeypatch):
    backend = """    provider: fake
    backoff: 0
    reply_template: >-
      {% if 'broken' in prompt %}not json{% else %}{"question": "Q: {{ prompt[6:] }}", "difficulty": 2, "tags": ["a"]}{% endif %}
"""
    stages = f"""
  - name: gen
    op: json_generator
    outputs: {{question: quiz}}
    params: {{template: "About {{{{ topic }}}}", json_schema: {json.dumps(SCHEMA)}}}
"""
    stats = run_spec(
        tmp_path, monkeypatch, stages, [{"topic": "tides"}, {"topic": "broken"}, {"topic": None}], backend
    )
    assert stats["rows_rejected"] == 2
    assert stats["stages"][0]["dropped_by_reason"] == {"llm invalid_output": 1, "null `topic` in prompt": 1}
    assert stats["stages"][0]["llm"]["invalid_outputs"] == 3
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"_id": "0", "topic": "tides", "quiz": "Q: tides", "difficulty": 2, "tags": '["a"]'}
    ]
    rejects = {r["_id"]: (r["_reason"], r.get("_raw_output")) for r in rejects_of(tmp_path)}
    assert rejects == {"1": ("llm invalid_output", "not json"), "2": ("null `topic` in prompt", None)}


def test_cli_prompted_filter(tmp_path, monkeypatch):
    backend = """    provider: fake
    reply_template: "{% if 'junk' in prompt %}no idea{% elif 'meh' in prompt %}4{% else %}9{% endif %}"
"""
    stages = """
  - name: quality
    op: prompted_filter
    params: {threshold: 5}
"""
    rows = [{"text": "good"}, {"text": "meh"}, {"text": "junk"}, {"text": "fine"}]
    stats = run_spec(tmp_path, monkeypatch, stages, rows, backend)
    assert stats["rows_written"] == 2
    assert stats["stages"][0]["dropped_by_reason"] == {
        "llm score < 5": 1,
        "parse error: no number in answer": 1,
    }
    assert read_jsonl(tmp_path / "out.jsonl") == [{"_id": "0", "text": "good"}, {"_id": "3", "text": "fine"}]
    rejects = {r["text"]: (r["_reason"], r.get("_raw_output")) for r in rejects_of(tmp_path)}
    assert rejects == {
        "meh": ("llm score < 5: got 4", None),
        "junk": ("parse error: no number in answer", "no idea"),
    }


REFINE_BACKEND = """    provider: fake
    reply_template: "{% if 'EMPTY' in prompt %}  {% else %}Rewritten.{% endif %}"
"""
REFINE_STAGES = """
  - name: polish
    op: prompted_refiner
    inputs: {text: body}
"""


def test_cli_prompted_refiner(tmp_path, monkeypatch):
    rows = [{"body": "teh text"}, {"body": "more txet"}, {"body": "EMPTY"}, {"body": None}]
    stats = run_spec(tmp_path, monkeypatch, REFINE_STAGES, rows, REFINE_BACKEND)
    assert stats["stages"][0]["dropped_by_reason"] == {"empty rewrite": 1, "null `text` in prompt": 1}
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"_id": "0", "body": "Rewritten."},
        {"_id": "1", "body": "Rewritten."},
    ]
    rejects = {r["_id"]: (r["body"], r["_reason"], r.get("_raw_output")) for r in rejects_of(tmp_path)}
    assert rejects == {"2": ("EMPTY", "empty rewrite", "  "), "3": (None, "null `text` in prompt", None)}


def test_cli_prompted_refiner_when_most_rows_are_unchanged(tmp_path, monkeypatch):
    rows = [{"body": "teh text"}, {"body": "EMPTY"}, {"body": None}]
    stats = run_spec(tmp_path, monkeypatch, REFINE_STAGES, rows, REFINE_BACKEND)
    assert stats["stages"][0]["dropped_by_reason"] == {"empty rewrite": 1, "null `text` in prompt": 1}
    assert read_jsonl(tmp_path / "out.jsonl") == [{"_id": "0", "body": "Rewritten."}]


def test_cli_pairwise_judge_evaluator(tmp_path, monkeypatch):
    # Prefers STRONG wherever it is shown; otherwise always picks the first shown (position bias).
    backend = """    provider: fake
    reply_template: >-
      {% if 'JUNK' in prompt %}hmm{% elif 'STRONG' in prompt and prompt.index('STRONG') < prompt.index('Response B:')
      %}Winner: A{% elif 'STRONG' in prompt %}Winner: B{% else %}Winner: A{% endif %}
"""
    stages = """
  - name: judge
    op: pairwise_judge_evaluator
    inputs: {response_a: chosen, response_b: rejected}
"""
    rows = [
        {"prompt": "p", "chosen": "STRONG", "rejected": "weak"},
        {"prompt": "p", "chosen": "weak", "rejected": "STRONG"},
        {"prompt": "p", "chosen": "x", "rejected": "y"},
        {"prompt": "p", "chosen": "x", "rejected": "JUNK"},
    ]
    stats = run_spec(tmp_path, monkeypatch, stages, rows, backend)
    assert stats["stages"][0]["llm"]["requests"] == 8
    assert stats["stages"][0]["dropped_by_reason"] == {"parse error: no `Winner: A|B|tie` line": 1}
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [(r["chosen"], r["preference"], r["a_wins"]) for r in out] == [
        ("STRONG", "a", 1.0),
        ("weak", "b", 0.0),
        ("x", "tie", 0.5),
    ]
    assert [(r["rejected"], r["_raw_output"]) for r in rejects_of(tmp_path)] == [("JUNK", "hmm")]


def test_cli_chat_format_refiner(tmp_path, monkeypatch):
    stages = """
  - name: chat
    op: chat_format_refiner
    params: {format: sharegpt, system: "Be brief.", keep_columns: [source]}
"""
    rows = [
        {"instruction": "Hi", "response": "Hello", "source": "s1", "extra": 1},
        {"instruction": "Q", "response": None, "source": "s2", "extra": 2},
    ]
    stats = run_spec(tmp_path, monkeypatch, stages, rows)
    assert stats["stages"][0]["dropped_by_reason"] == {"null `response`": 1}
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {
            "conversations": [
                {"from": "system", "value": "Be brief."},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello"},
            ],
            "source": "s1",
            "_id": "0",
        }
    ]
    rejects = rejects_of(tmp_path)
    assert [(r["_id"], r["instruction"], r["_reason"]) for r in rejects] == [("1", "Q", "null `response`")]


OPS = [
    "json_generator",
    "prompted_filter",
    "prompted_refiner",
    "pairwise_judge_evaluator",
    "chat_format_refiner",
]


@pytest.mark.parametrize("name", OPS)
def test_operators_show(name):
    result = CliRunner().invoke(app, ["operators", "show", name])
    assert result.exit_code == 0, result.output
    assert name in result.stdout and "Params" in result.stdout and "Example stage" in result.stdout
    stage = yaml.safe_load(result.stdout.split("Example stage", 1)[1])[0]
    assert stage["op"] == name
    info = json.loads(CliRunner().invoke(app, ["operators", "show", name, "--json"]).stdout)
    assert info["summary"].endswith(".") and info["kind"] in ("generate", "evaluate", "filter", "refine")


def test_conventions():
    from dataflow_cli import registry

    suffix = {"generate": "generator", "evaluate": "evaluator", "filter": "filter", "refine": "refiner"}
    for name in OPS:
        cls = registry.load(name)
        assert cls.name == name and name.endswith("_" + suffix[cls.kind])
        assert cls.__name__ == "".join(part.capitalize() for part in name.split("_"))
        doc = cls.__doc__
        assert doc.index("Inputs:") < doc.index("Outputs:") < doc.index("Params:")
        assert cls.Params.model_config.get("extra") == "forbid"
        for field_name, field in cls.Params.model_fields.items():
            assert field.description and field_name in doc.split("Params:")[1], (name, field_name)
