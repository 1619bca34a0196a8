"""The LLM operator contract: each kind's method supplied from `build_messages`/`parse`.

Small operators declared here (as a plugin author would) run against a real `LLMEngine` over the
scripted fake backend; the results are checked as the executor receives them.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from dataflow_operators.llm.pairwise_judge import PairwiseJudgeEvaluator
from dataflow_operators.llm.prompted_refiner import PromptedRefiner
from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.llm.types import Answer, Completion, LLMError, Request, Sampling
from dataflow_cli.operator import Evaluator, Fanout, Filter, Generator, Partial, Port, Refiner, Verdict
from tests.support.llm_ops import batch, bound, user


class QuestionsGenerator(LLMOperator, Generator):
    """One row per line of the answer (0..n rows per input row)."""

    name = "questions_generator"
    outputs = {"question": Port("a question"), "sample": Port("sample number", "int64")}
    default_template = "Questions about {{ topic }}"

    class Params(LLMParams):
        n: int = Field(1, description="Samples per prompt.")

    def parse(self, text, row):
        if text == "?":
            raise ParseError("no questions")
        return [{"question": line} for line in text.splitlines()]


class SafeFilter(LLMOperator, Filter):
    """Keep rows the model calls safe."""

    name = "safe_filter"
    default_template = "Safe? {{ text }}"

    def parse(self, text, row):
        if text == "yes":
            return True
        if text.startswith("no"):
            return (False, "unsafe", text[4:]) if ":" in text else (False, "unsafe")
        raise ParseError("neither yes nor no")


class ShortenRefiner(LLMOperator, Refiner):
    """Replace `text` by the model's shorter version; keep it when the model says KEEP."""

    name = "shorten_refiner"
    inputs = {"text": Port("the text")}
    default_template = "Shorten: {{ text }}"

    def parse(self, text, row):
        return {} if text == "KEEP" else {"text": text}


class LengthEvaluator(LLMOperator, Evaluator):
    """Read a number and a unit."""

    name = "length_evaluator"
    outputs = {"value": Port("number", "float64"), "unit": Port("unit")}
    default_template = "Length of {{ thing }}"

    def parse(self, text, row):
        value, _, unit = text.partition(" ")
        if not value.isdigit():
            raise ParseError("no number")
        return {"value": float(value)} if not unit else {"value": float(value), "unit": unit}


def echo(request: Request) -> str:
    return request.messages[-1]["content"].split(": ", 1)[1]


def test_answer_of_completion_and_error():
    ok = Answer.of(Completion("7", finish_reason="stop"))
    assert (ok.ok, ok.text, ok.raw, ok.failure, ok.finish_reason) == (True, "7", "7", None, "stop")
    bad = Answer.of(LLMError("invalid_output", "no", raw="{oops"))
    assert (bad.ok, bad.text, bad.raw, bad.failure) == (False, None, "{oops", "llm invalid_output")


def test_evaluator_fills_outputs_and_leaves_absent_ones_null():
    op = LengthEvaluator()
    replies = {"Length of rope": "3 m", "Length of day": "24", "Length of love": "endless"}
    with bound(op, lambda r: replies[r.messages[-1]["content"]]):
        result = op.process(batch(thing=["rope", "day", "love"]))
    assert isinstance(result, Partial)
    assert result.result == {"value": [3.0, 24.0, None], "unit": ["m", None, None]}
    assert result.failed == [None, None, "parse error: no number"]
    assert result.raw == [None, None, "endless"]


def test_generator_list_answers_fan_out_and_failures_keep_the_raw_answer():
    op = QuestionsGenerator()
    answers = {"cats": "Why?\nHow?", "dogs": "", "fish": "?"}
    with bound(op, lambda r: answers[r.messages[-1]["content"].split()[-1]]):
        result = op.process(batch(topic=["cats", "dogs", "fish", None]))
    assert isinstance(result, Partial) and isinstance(result.result, Fanout)
    assert result.result.columns == {"question": ["Why?", "How?"], "sample": [0, 0]}
    assert result.result.source_index.to_pylist() == [0, 0]
    assert result.failed == [None, None, "parse error: no questions", "null `topic` in prompt"]
    assert result.raw == [None, None, "?", None]


def test_generator_samples_number_each_row_and_send_one_request_per_sample():
    op = QuestionsGenerator(QuestionsGenerator.Params(n=2, temperature=1))
    with bound(op, lambda r: f"Q{r.sample_index}a\nQ{r.sample_index}b") as backend:
        result = op.process(batch(topic=["cats"]))
    assert isinstance(result, Fanout)
    assert result.columns == {"question": ["Q0a", "Q0b", "Q1a", "Q1b"], "sample": [0, 0, 1, 1]}
    assert backend.history == [
        Request(user("Questions about cats"), Sampling(temperature=1), None, sample_index=k) for k in (0, 1)
    ]


def test_filter_verdicts_from_parse():
    op = SafeFilter()
    replies = {"a": "yes", "b": "no", "c": "no: insults", "d": "maybe"}
    with bound(op, lambda r: replies[r.messages[-1]["content"][-1]]):
        result = op.process(batch(text=["? a", "? b", "? c", "? d"]))
    assert isinstance(result, Partial)
    verdict = result.result
    assert isinstance(verdict, Verdict)
    assert verdict.keep == [True, False, False, True]  # the failed row's verdict is ignored
    assert verdict.reason.to_pylist() == [None, "unsafe", "unsafe", None]
    assert verdict.detail.to_pylist() == [None, None, "insults", None]
    assert result.failed == [None, None, None, "parse error: neither yes nor no"]
    assert result.raw == [None, None, None, "maybe"]


def test_filter_parse_returning_a_bare_false_is_an_operator_bug():
    op = SafeFilter()
    op.parse = lambda text, row: False
    with bound(op, lambda r: "no"), pytest.raises(TypeError, match=r"must return True or \(False, reason"):
        op.process(batch(text=["x"]))


def test_refiner_rewrites_returned_inputs_and_keeps_the_rest():
    op = ShortenRefiner(inputs={"text": "body"})
    with bound(op, lambda r: {"long words": "short", "fine": "KEEP"}[echo(r)]):
        result = op.process(batch({"text": "body"}, body=pa.array(["long words", "fine"], pa.large_string())))
    assert result["text"].to_pylist() == ["short", "fine"]
    assert result["text"].type == pa.large_string()


def test_refiner_returning_nothing_for_every_row_rewrites_nothing():
    op = ShortenRefiner()
    with bound(op, lambda r: "KEEP"):
        assert op.process(batch(text=["a", "b"])) == {}


def test_ask_messages_gives_answers_per_conversation_and_sample():
    op = LengthEvaluator()
    conversations = [[{"role": "user", "content": "A"}], [{"role": "user", "content": "FAIL B"}]]
    schema = {"type": "object"}

    def script(request):
        if "FAIL" in request.messages[-1]["content"]:
            return LLMError("bad_request", "no", status=400)
        return f'{{"k": {request.sample_index}}}'

    with bound(op, script) as backend:
        answers = op.ask_messages(conversations, samples=2, json_schema=schema)
    assert [[a.text for a in per] for per in answers] == [['{"k": 0}', '{"k": 1}'], [None, None]]
    assert [a.failure for a in answers[1]] == ["llm bad_request (HTTP 400)"] * 2
    assert {r.json_schema["type"] for r in backend.history} == {"object"}
    assert op.ask_messages([]) == []


def test_parse_error_bare_reason_is_the_reject_reason():
    assert ParseError("empty rewrite", bare=True).reason == "empty rewrite"
    assert ParseError("no number").reason == "parse error: no number"


def test_unbound_operator_says_so():
    with pytest.raises(RuntimeError, match="no LLM backend bound"):
        LengthEvaluator().ask_messages([[{"role": "user", "content": "x"}]])


def test_template_inputs_and_messages_column_are_required_columns():
    # Template variables that are logical inputs read their bound column; the history column
    # is required too (the refiner's and the judge's own mixin used to forget it).
    refiner = PromptedRefiner(PromptedRefiner.Params(messages_column="turns"), inputs={"text": "body"})
    assert refiner.required_columns() == ["body", "turns"]
    judge = PairwiseJudgeEvaluator(
        PairwiseJudgeEvaluator.Params(messages_column="turns"), inputs={"response_a": "x", "response_b": "y"}
    )
    assert judge.required_columns() == ["x", "y", "turns"]


def test_json_object_is_strict():
    from dataflow_cli.llm.operator import ParseError, json_object

    assert json_object('```json\n{"passed": true, "reason": "ok"}\n```') == {"passed": True, "reason": "ok"}
    # A broken answer that merely contains the word "true" is never read as a verdict.
    for text, why in [
        ('The answer is true. {"passed": true', "answer is not JSON"),
        ("true", "answer is not a JSON object"),
        ('["passed", true]', "answer is not a JSON object"),
    ]:
        with pytest.raises(ParseError) as exc:
            json_object(text)
        assert exc.value.reason == f"parse error: {why}"
