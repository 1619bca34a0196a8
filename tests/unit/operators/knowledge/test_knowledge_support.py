"""qa_support_filter on a labelled set (accuracy), its reasons, two-hop checks; the shared
matching helpers; qa_sft_format_refiner."""

from __future__ import annotations

import pyarrow as pa
import pytest
from dataflow_operators._lib.support import (
    answer_supported,
    answer_tokens,
    find_quote,
    normalize_answer,
    normalize_span,
)
from dataflow_operators.knowledge.qa_support import QaSupportFilter
from dataflow_operators.knowledge.sft_format import QaSftFormatRefiner

from dataflow_cli.operator import Batch, Partial
from tests.unit.operators.knowledge.support_cases import CASES, CHUNKS

A = "The Marta Lind replaced the last steam ferry in 1964. It was built by Edvin Hallqvist in Osby."
B = "The Hallqvist boatyard in Osby closed in 1979 after a fire destroyed its slipway."


def test_support_check_accuracy_on_the_labelled_set():
    assert len(CASES) >= 60
    assert sum(not c[4] for c in CASES) >= 30  # planted unsupported pairs
    op = QaSupportFilter()
    table = pa.table(
        {
            "question": [c[1] for c in CASES],
            "answer": [c[2] for c in CASES],
            "quote": [c[3] for c in CASES],
            "context": [CHUNKS[c[0]] for c in CASES],
        }
    )
    verdict = op.filter(Batch(table, {}))
    wrong = [
        (c[5], c[1], reason)
        for c, kept, reason in zip(CASES, verdict.keep, verdict.reason.to_pylist(), strict=True)
        if kept != c[4]
    ]
    accuracy = 1 - len(wrong) / len(CASES)
    assert accuracy >= 0.97, wrong


@pytest.mark.parametrize(
    ("question", "answer", "quote", "reason"),
    [
        ("", "1987", "founded in 1987 by", "empty question"),
        ("When?", " ", "founded in 1987 by", "empty answer"),
        ("When?", "1987", None, "empty quote"),
        (
            "When?",
            "one two three four five six seven eight nine ten eleven twelve thirteen",
            "x y z",
            "answer too long",
        ),
        ("When?", "1987", "in 1987", "quote too short"),
        ("When?", "1987", "founded in 1978 by", "quote not found in chunk"),
        ("When?", "1990", "founded in 1987 by", "answer not in quote"),
        ("When was it founded in 1987?", "1987", "founded in 1987 by", "answer in question"),
    ],
)
def test_each_reason(question, answer, quote, reason):
    context = "The station was founded in 1987 by Dr. Maren Toft."
    assert QaSupportFilter().check(question, answer, quote, context)[0] == reason


def test_a_supported_pair_says_what_was_compared():
    reason, detail, support = QaSupportFilter().check(
        "Who founded the station?",
        "Dr. Maren Toft",
        "founded in 1987 by Dr. Maren Toft",
        "The station was founded in 1987 by Dr. Maren Toft.",
    )
    assert reason is None and detail is None
    assert support == "quote at 16 of 50 (normalised chunk); answer words dr, maren, toft: 3/3 in quote"


def two_hop(**overrides):
    row = {
        "question": "When did the boatyard that built the Marta Lind close?",
        "answer": "1979",
        "quote": "built by Edvin Hallqvist in Osby",
        "context": A,
        "second_quote": "The Hallqvist boatyard in Osby closed in 1979",
        "second_context": B,
    }
    row.update(overrides)
    return QaSupportFilter(inputs={"second_quote": "second_quote", "second_context": "second_context"}).check(
        row["question"],
        row["answer"],
        row["quote"],
        row["context"],
        row["second_quote"],
        row["second_context"],
    )


def test_two_hop_pairs_need_both_chunks():
    assert two_hop()[0] is None
    assert two_hop(second_quote="The boatyard closed in 1979")[0] == "second quote not found in second chunk"
    assert two_hop(second_quote="after a fire destroyed its slipway")[0] == "answer not in quote"
    # Hop B's quote is in chunk A too: chunk A alone would do.
    assert two_hop(context=A + " " + B)[:2] == (
        "answerable from one chunk",
        "the second quote is also in the first chunk",
    )
    assert two_hop(second_context=B + " " + A)[:2] == (
        "answerable from one chunk",
        "the first quote is also in the second chunk",
    )
    assert two_hop(context=A + " It closed in 1979.")[:2] == (
        "answerable from one chunk",
        "the answer is also in the first chunk",
    )


def test_filter_binds_two_hop_columns_only_when_asked():
    assert QaSupportFilter().required_columns() == ["question", "answer", "quote", "context"]
    op = QaSupportFilter(inputs={"context": "chunk", "second_quote": "sq", "second_context": "next_chunk"})
    assert op.required_columns() == ["question", "answer", "quote", "chunk", "sq", "next_chunk"]
    table = pa.table(
        {
            "question": [
                "When did the boatyard that built the Marta Lind close?",
                "Who built the Marta Lind?",
            ],
            "answer": ["1979", "Edvin Hallqvist"],
            "quote": ["built by Edvin Hallqvist in Osby", "It was built by Edvin Hallqvist"],
            "chunk": [A, A],
            "sq": ["The Hallqvist boatyard in Osby closed in 1979", None],  # a one-hop pair has none
            "next_chunk": [B, B],
        }
    )
    verdict = op.filter(Batch(table, op.input_columns))
    assert verdict.keep == [True, True]
    assert verdict.columns["support"].to_pylist()[0].startswith("quote at ")


def test_matching_is_about_form_not_content():
    passage = "It spans three decades of measure-\nments \u2014 \u201cthe longest\u201d record.\n\n| a | b |\n- item one"
    normal = normalize_span(passage)
    assert normal == 'it spans three decades of measurements - "the longest" record. a b item one'
    assert find_quote('MEASUREMENTS - "the longest" record', passage) is not None
    assert find_quote("three decades ... the longest", passage) is not None
    assert find_quote("the longest ... three decades", passage) is None
    assert find_quote("four decades of measurements", passage) is None
    assert find_quote("...", passage) is None
    assert normalize_answer("The  Orrin Star!") == "orrin star"
    assert answer_tokens("about 2,300 visitors") == ["2300", "visitor"]
    assert answer_tokens("sixty percent") == ["60", "percent"]
    assert answer_supported("2 hours", "it lasts two hours") == (True, [])
    assert answer_supported("3 hours", "it lasts two hours") == (False, ["3"])


# --------------------------------------------------------------------------- SFT formatting


def sft(**params) -> QaSftFormatRefiner:
    inputs = params.pop("inputs", {"context": "chunk"})
    return QaSftFormatRefiner(QaSftFormatRefiner.Params(**params), inputs=inputs)


TABLE = pa.table(
    {
        "_id": ["0", "1", "2"],
        "question": ["Q1?", "Q2?", None],
        "answer": ["A1", "A2", "A3"],
        "chunk": ["passage one", "passage two", "p"],
        "next_chunk": [None, "passage three", None],
        "path": ["a.pdf", "b.md", "c.md"],
    }
)


def test_alpaca_rows_with_and_without_context():
    op = sft(
        format="alpaca", keep_columns=["path"], inputs={"context": "chunk", "second_context": "next_chunk"}
    )
    result = op.refine(Batch(TABLE, op.input_columns))
    assert isinstance(result, Partial) and result.failed == [None, None, "null `question`"]
    rows = result.result.to_pylist()[:2]
    assert rows == [
        {"instruction": "Q1?", "input": "passage one", "output": "A1", "path": "a.pdf", "_id": "0"},
        {
            "instruction": "Q2?",
            "input": "passage one\n\npassage three".replace("one", "two"),
            "output": "A2",
            "path": "b.md",
            "_id": "1",
        },
    ]
    closed = sft(format="alpaca", with_context=False)
    table = closed.refine(Batch(TABLE.slice(0, 2), closed.input_columns))
    assert table.column("input").to_pylist() == ["", ""] and table.column_names == [
        "instruction",
        "input",
        "output",
        "_id",
    ]
    assert closed.required_columns() == ["question", "answer"]


def test_chat_rows_carry_the_passage_before_the_question():
    op = sft(format="openai", system="Answer briefly.")
    table = op.refine(Batch(TABLE.slice(0, 1), op.input_columns))
    assert table.column("messages").to_pylist() == [
        [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "passage one\n\nQ1?"},
            {"role": "assistant", "content": "A1"},
        ]
    ]
    share = sft(format="sharegpt", with_context=False)
    rows = share.refine(Batch(TABLE.slice(1, 1), share.input_columns)).column("conversations").to_pylist()
    assert rows == [[{"from": "human", "value": "Q2?"}, {"from": "gpt", "value": "A2"}]]
    assert op.transform_schema({"_id": "string", "question": "string"}) == {
        "messages": "list<item: struct<role: string, content: string>>",
        "_id": "string",
    }
    with pytest.raises(ValueError, match="chat formats"):
        QaSftFormatRefiner.Params(format="alpaca", system="x")
