"""The rule-based math operators on real batches: verify, format, length, repetition, majority."""

from __future__ import annotations

import importlib.util

import pyarrow as pa
import pytest
from dataflow_operators.math.answer_verify import MathAnswerVerifyEvaluator, MathAnswerVerifyFilter
from dataflow_operators.math.boxed_format import BoxedAnswerFormatFilter
from dataflow_operators.math.ngram_repetition import NgramRepetitionFilter, repetition
from dataflow_operators.math.reasoning_length import ReasoningLengthFilter
from dataflow_operators.math.self_consistency import MathSelfConsistencyEvaluator
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Verdict


def batch(**columns) -> Batch:
    return Batch(pa.table(columns))


OUTPUTS = [
    "Half of 8 is 4, so \\boxed{4}.",
    "We get $\\boxed{0.333}$.",
    "Working...\nand then the",
    "The answer is $\\frac{1}{2}$.",
    None,
]
GOLDS = ["4", "\\frac{1}{3}", "7", "0.5", "1"]


def test_verify_evaluator_writes_the_verdict_of_every_row():
    op = MathAnswerVerifyEvaluator(inputs={"output": "solution", "gold": "answer"})
    result = op.process(Batch(pa.table({"solution": OUTPUTS, "answer": GOLDS}), op.input_columns))
    assert result == {
        "verified": [True, False, False, True, False],
        "verify_reason": ["equal", "different values", "no final answer", "equal", "empty reply"],
        "extracted_answer": ["4", "0.333", None, "\\frac{1}{2}", None],
        "canonical_answer": ["4", "333/1000", None, "1/2", None],
        "canonical_gold": ["4", "1/3", None, "1/2", None],
    }


def test_verify_filter_drops_with_reason_and_what_was_compared():
    op = MathAnswerVerifyFilter()
    verdict = op.process(batch(output=OUTPUTS, gold=GOLDS))
    assert isinstance(verdict, Verdict)
    assert verdict.keep == [True, False, False, True, False]
    assert verdict.reason == [None, "different values", "no final answer", None, "empty reply"]
    assert verdict.detail == [None, "answer `0.333` = 333/1000 vs gold 1/3", None, None, None]


def test_verify_filter_without_gold_fails_the_row():
    verdict = MathAnswerVerifyFilter().process(
        batch(output=["\\boxed{1}"], gold=pa.array([None], pa.string()))
    )
    assert (verdict.keep, verdict.reason) == ([False], ["no gold answer"])


def test_verify_params_are_checked():
    with pytest.raises(ValidationError):
        MathAnswerVerifyFilter.Params(percent="half")
    with pytest.raises(ValidationError):
        MathAnswerVerifyFilter.Params(time_limit=0)
    op = MathAnswerVerifyFilter(MathAnswerVerifyFilter.Params(percent="fraction"))
    assert op.process(batch(output=["\\boxed{50\\%}"], gold=["50"])).keep == [False]


def test_boxed_format_filter():
    texts = [
        "so \\boxed{\\frac{1}{2}}",
        "no box here",
        "cut off \\boxed{\\frac{1}{",
        "empty \\boxed{}",
        "$\\boxed{2}$ and $\\boxed{3}$",
        "\\boxed{3}\n\nlater \\boxed{3}",
        None,
    ]
    verdict = BoxedAnswerFormatFilter().process(batch(text=texts))
    assert verdict.keep == [True, False, False, False, True, True, False]
    assert verdict.reason == [
        None,
        "no \\boxed{}",
        "truncated \\boxed{}",
        "empty \\boxed{}",
        None,
        None,
        "no \\boxed{}",
    ]
    single = BoxedAnswerFormatFilter(BoxedAnswerFormatFilter.Params(single_answer=True))
    assert single.process(batch(text=texts[4:6])).reason == ["several boxed answers", None]


def test_reasoning_length_in_words():
    op = ReasoningLengthFilter(ReasoningLengthFilter.Params(min=3, max=5))
    verdict = op.process(batch(text=["one two", "one two three", "a b c d e f", None]))
    assert verdict.keep == [False, True, False, False]
    assert verdict.reason == ["words < 3", None, "words > 5", "words < 3"]
    with pytest.raises(ValidationError, match="below"):
        ReasoningLengthFilter.Params(min=5, max=3)


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="installed by `make test`")
def test_reasoning_length_in_tokens_of_the_embedded_model():
    op = ReasoningLengthFilter(ReasoningLengthFilter.Params(unit="tokens", max=10))
    text = "Let x = 3. Then 2x + 1 = 7."
    n = op.length(text)
    assert len(text.split()) < n <= len(text)  # subword tokens: more than words, fewer than chars
    verdict = op.process(batch(text=[text, text * 3]))
    assert verdict.keep == [n <= 10, False] and verdict.reason[1] == "tokens > 10"
    assert op.fingerprint_extra()["tokenizer"][0].endswith(".gguf")


def test_reasoning_length_tokenizer_path_must_exist(tmp_path):
    if importlib.util.find_spec("llama_cpp") is None:
        with pytest.raises(DataflowError, match="needs llama-cpp-python"):
            ReasoningLengthFilter(ReasoningLengthFilter.Params(unit="tokens"))
        return
    with pytest.raises(DataflowError, match="is not a file"):
        ReasoningLengthFilter(
            ReasoningLengthFilter.Params(unit="tokens", tokenizer_path=str(tmp_path / "x.gguf"))
        )


def test_ngram_repetition():
    loop = "so we add one more and " * 10
    assert repetition(loop, 4)[0] > 0.8
    assert repetition("a b c d e f g h", 4) == (0.0, 1)
    assert repetition("short", 4) == (0.0, 0)
    op = NgramRepetitionFilter(NgramRepetitionFilter.Params(n=4, max_repeated_ratio=0.3, max_occurrences=2))
    varied = "first we compute the sum then we divide by two to get the mean value"
    thrice = "we add it we add it we add it"
    verdict = op.process(batch(text=[loop, varied, thrice, None]))
    assert verdict.keep == [False, True, False, True]
    assert verdict.reason == ["repeated 4-grams > 0.3", None, "repeated 4-grams > 0.3", None]
    lenient = NgramRepetitionFilter(
        NgramRepetitionFilter.Params(n=3, max_repeated_ratio=1, max_occurrences=2)
    )
    assert lenient.process(batch(text=[thrice])).reason == ["a 3-gram occurs > 2 times"]


def test_self_consistency_groups_equal_answers_and_counts_agreement():
    op = MathSelfConsistencyEvaluator()
    samples = [
        ["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{0.333}", "no answer at all\nreally"],
        ["\\boxed{1}", "\\boxed{2}"],  # a tie: the first answer wins
        [],
        None,
    ]
    table = pa.table({"outputs": pa.array(samples, pa.list_(pa.string()))})
    result = op.process(Batch(table))
    assert result == {
        "majority_answer": ["0.5", "1", None, None],
        "majority_canonical": ["1/2", "1", None, None],
        "agreement": [0.5, 0.5, 0.0, 0.0],
        "votes": [2, 1, 0, 0],
        "distinct_answers": [2, 2, 0, 0],
    }
