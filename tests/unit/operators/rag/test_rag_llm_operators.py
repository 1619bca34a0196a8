"""The rag LLM operators: exact prompts, strict parsing, staged answerability checks, and rows
that stay aligned when a model call fails or returns nothing (scripted fake backend)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from dataflow_operators.rag import _corpus
from dataflow_operators.rag.answerability import RagAnswerabilityFilter
from dataflow_operators.rag.atomic_qa import RagAtomicQaGenerator
from dataflow_operators.rag.multihop_question import RagMultihopQuestionGenerator
from pydantic import ValidationError

from dataflow_cli.errors import SpecError
from dataflow_cli.llm.operator import ParseError
from dataflow_cli.llm.types import LLMError, Request, Sampling
from dataflow_cli.operator import Fanout, Partial, Verdict
from tests.support.llm_ops import batch, bound

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "minLength": 1},
        "answer": {"type": "string", "minLength": 1},
    },
    "required": ["reason", "answer"],
    "additionalProperties": False,
}
ANSWER_TAIL = 'Reply with a JSON object {"reason": "...", "answer": "..."}. In "reason", say in one sentence '


def with_documents_prompt(question: str, documents: list[str]) -> str:
    shown = "".join(f"Document {i}:\n{d}\n\n" for i, d in enumerate(documents, 1))
    return (
        f"Answer the question using only the documents below.\n\n{shown}Question: {question}\n\n"
        + ANSWER_TAIL
        + 'which facts of the documents give the answer. "answer" is the shortest exact answer (a name, '
        'a number or a short phrase), or "unknown" if the documents do not give it.\n'
    )


def closed_book_prompt(question: str) -> str:
    return (
        f"Answer the question from what you know, without any documents.\n\nQuestion: {question}\n\n"
        + ANSWER_TAIL
        + 'how you know the answer. "answer" is the shortest exact answer (a name, a number or a short '
        'phrase), or "unknown" if you do not know it.\n'
    )


def said(answer: str, reason: str = "because") -> str:
    return json.dumps({"reason": reason, "answer": answer})


def prompt_of(request: Request) -> str:
    return request.messages[-1]["content"]


# Atomic QA -----------------------------------------------------------------------------------

DOC = "Ostby is a fishing port at the mouth of the river Osk. It was founded in 988."


def test_atomic_qa_prompt_and_schema():
    op = RagAtomicQaGenerator(RagAtomicQaGenerator.Params(max_pairs=2))
    assert op.build_messages({"document": DOC}) == [
        {
            "role": "user",
            "content": "Write up to 2 question-answer pairs about the document below, each on a different fact of it.\n\n"
            f"Document:\n{DOC}\n\n"
            "Rules:\n"
            '- Each question stands on its own: it names its subject (never "the document", "this town", "it").\n'
            "- Each answer is short and exact: a name, a number or a date, as the document writes it.\n"
            '- "support" is one sentence copied word for word from the document that states the fact.\n\n'
            'Reply with a JSON object {"pairs": [{"question": "...", "answer": "...", "support": "..."}]}.\n',
        }
    ]
    assert op.template_columns() == ["document"]  # `max_pairs` is the param, not a column
    pairs = op.json_schema()["properties"]["pairs"]
    assert pairs["maxItems"] == 2 and pairs["items"]["required"] == ["question", "answer", "support"]


def test_atomic_qa_parse():
    op = RagAtomicQaGenerator(RagAtomicQaGenerator.Params(max_pairs=1))
    text = json.dumps({"pairs": [{"question": " Q? ", "answer": "A", "support": "S"}, {"question": "x"}]})
    assert op.parse(text, {}) == [{"question": "Q?", "answer": "A", "support": "S"}]  # cut at max_pairs
    assert op.parse('```json\n{"pairs": []}\n```', {}) == []
    for bad, why in [
        ("The pairs are...", "answer is not JSON"),
        ("[]", "answer is not a JSON object"),
        ('{"pairs": {}}', "`pairs` is missing or not a list"),
        ('{"pairs": ["Q"]}', "pair 1 is not an object"),
        ('{"pairs": [{"question": "Q", "answer": " ", "support": "S"}]}', "`answer` is missing or empty"),
    ]:
        with pytest.raises(ParseError, match=why):
            RagAtomicQaGenerator().parse(bad, {})


def test_atomic_qa_fans_out_and_keeps_rows_aligned_when_a_call_returns_nothing():
    docs = ["Doc A says 1.", "Doc B says 2.", "Doc C says 3."]

    def script(request):
        text = prompt_of(request)
        if "Doc B" in text:
            return ""  # the model returns nothing
        letter = "A" if "Doc A" in text else "C"
        pair = {"question": f"What does {letter} say?", "answer": letter, "support": f"Doc {letter} says"}
        return json.dumps({"pairs": [pair, {**pair, "question": f"Again {letter}?"}]})

    op = RagAtomicQaGenerator()
    with bound(op, script) as backend:
        result = op.process(batch(document=docs))
    # An answer that does not match the JSON schema is asked again, then rejected with its text.
    assert sum("Doc B" in prompt_of(r) for r in backend.history) > 1
    assert isinstance(result, Partial) and result.failed == [None, "llm invalid_output", None]
    assert result.raw == [None, "", None]
    fanout = result.result
    assert isinstance(fanout, Fanout)
    assert fanout.source_index.to_pylist() == [0, 0, 2, 2]
    assert fanout.columns["question"] == ["What does A say?", "Again A?", "What does C say?", "Again C?"]
    assert fanout.columns["answer"] == ["A", "A", "C", "C"]


# Multi-hop question ------------------------------------------------------------------------

HOPS = [
    {
        "doc_id": "p-mara",
        "title": "Mara Quill",
        "question": "Where was Mara Quill born?",
        "answer": "Ostby",
        "support": "s1",
    },
    {
        "doc_id": "t-ostby",
        "title": "Ostby",
        "question": "In what year was Ostby founded?",
        "answer": "988",
        "support": "s2",
    },
]


def test_multihop_question_prompt_for_a_bridge():
    op = RagMultihopQuestionGenerator()
    messages = op.build_messages({"hops": HOPS, "composition": "bridge", "answer": "988"})
    assert messages == [
        {
            "role": "user",
            "content": "You combine facts from different documents into one question that needs every one of them.\n\n"
            "Fact 1 (about Mara Quill): Where was Mara Quill born? Answer: Ostby\n"
            "Fact 2 (about Ostby): In what year was Ostby founded? Answer: 988\n\n"
            'Fact 2 is about "Ostby", the answer of fact 1. Write one question that asks what fact 2 asks, but '
            'describes "Ostby" through fact 1 instead of naming it, so that answering it needs fact 1 first. '
            'Its answer must be "988". Do not write "Ostby" or "988" in the question.\n\n'
            'Reply with a JSON object {"question": "..."}.\n',
        }
    ]
    comparison = op.build_messages({"hops": HOPS, "composition": "comparison", "answer": "Ostby"})[0][
        "content"
    ]
    assert "Write one question that compares Mara Quill and Ostby on what the two facts ask" in comparison
    intersection = op.build_messages({"hops": HOPS, "composition": "intersection", "answer": "X"})[0][
        "content"
    ]
    assert "Both facts have the same answer." in intersection


def test_multihop_question_parse_rejects_shortcuts():
    op = RagMultihopQuestionGenerator()
    bridge = {"hops": HOPS, "composition": "bridge", "answer": "988"}
    good = '{"question": "In what year was the birthplace of Mara Quill founded?"}'
    assert op.parse(good, bridge) == {"question": "In what year was the birthplace of Mara Quill founded?"}
    with pytest.raises(ParseError) as named:
        op.parse('{"question": "In what year was Ostby, where Mara Quill was born, founded?"}', bridge)
    assert named.value.reason == "composed question names the bridge entity"
    with pytest.raises(ParseError) as leaked:
        op.parse('{"question": "Was the birthplace of Mara Quill founded in 988?"}', bridge)
    assert leaked.value.reason == "composed question names its answer"
    comparison = {"hops": HOPS, "composition": "comparison", "answer": "Ostby"}
    assert op.parse('{"question": "Which is older, Ostby or Pellam?"}', comparison)["question"].startswith(
        "Which"
    )
    with pytest.raises(ParseError, match="`question` is missing"):
        op.parse('{"q": "x"}', bridge)


# Answerability -----------------------------------------------------------------------------

MULTI_Q = "In what year was the town where Mara Quill was born founded?"
SHORTCUT_Q = "How long is the river that flows through Hollowmere?"
MARA = "Mara Quill was an architect born in Ostby in 1801."
OSTBY = "Ostby is a fishing port. It was founded in 988."
HOLLOWMERE = "Hollowmere is a town on the river Tarrow."
TARROW = "The Tarrow flows 96 km through Hollowmere to the sea."


def reader(request: Request) -> str:
    """A model that answers when the facts it needs are in the prompt (the shortcut question
    needs only the Tarrow document: it names Hollowmere)."""
    text = prompt_of(request)
    if MULTI_Q in text:
        return said("988" if MARA in text and OSTBY in text else "unknown")
    if SHORTCUT_Q in text:
        return said("96 km" if TARROW in text else "unknown")
    return said("unknown")


def multihop_batch():
    return batch(
        question=[MULTI_Q, SHORTCUT_Q],
        answer=[["988"], ["96 km", "96 kilometres"]],
        documents=[[MARA, OSTBY], [HOLLOWMERE, TARROW]],
        doc_ids=[["p-mara", "t-ostby"], ["t-hollowmere", "r-tarrow"]],
    )


def test_answerability_prompts_and_schema():
    op = RagAnswerabilityFilter()
    row = {"question": MULTI_Q, "documents": [MARA, OSTBY], "answer": "988", "doc_ids": ["a", "b"]}
    assert op.check_messages("with_documents", row, [MARA, OSTBY]) == [
        {"role": "user", "content": with_documents_prompt(MULTI_Q, [MARA, OSTBY])}
    ]
    assert op.check_messages("closed_book", row, None) == [
        {"role": "user", "content": closed_book_prompt(MULTI_Q)}
    ]
    assert op.build_messages(row) == op.check_messages("with_documents", row, [MARA, OSTBY])
    assert op.json_schema() == ANSWER_SCHEMA
    assert op.parse(said(" 988 ", " r "), row) == {"reason": "r", "answer": "988"}
    for bad in ("988", '{"answer": "988"}', '{"reason": "r", "answer": ""}'):
        with pytest.raises(ParseError):
            op.parse(bad, row)
    system = RagAnswerabilityFilter(RagAnswerabilityFilter.Params(system="Be exact."))
    assert system.check_messages("closed_book", row, None)[0] == {"role": "system", "content": "Be exact."}


def test_a_question_answerable_from_one_document_alone_is_rejected_with_that_reason():
    op = RagAnswerabilityFilter(
        RagAnswerabilityFilter.Params(checks=["with_documents", "closed_book", "single_document"])
    )
    with bound(op, reader) as backend:
        verdict = op.process(multihop_batch())
    assert isinstance(verdict, Verdict)
    assert list(verdict.keep) == [True, False]
    assert verdict.reason.to_pylist() == [None, "answerable from a single document"]
    assert verdict.detail.to_pylist() == [None, 'document 2 (`r-tarrow`) alone: answered "96 km" (F1 1.00)']
    checks = verdict.columns["answerability"].to_pylist()
    assert [(c["check"], c["passed"], c["answer"]) for c in checks[0]] == [
        ("with_documents", True, "988"),
        ("closed_book", True, "unknown"),
        ("single_document", True, "unknown"),
    ]
    assert checks[0][2]["reason"] == "no single document answers it (best: document 1, F1 0.00)"
    assert checks[1][2] == {
        "check": "single_document",
        "passed": False,
        "reason": 'document 2 (`r-tarrow`) alone: answered "96 km" (F1 1.00)',
        "answer": "96 km",
        "f1": 1.0,
    }
    assert verdict.columns["attempt"].to_pylist() == ["988", "96 km"]
    # Per row: with documents, closed-book, then each document alone; exactly these prompts.
    assert all(len(r.messages) == 1 and r.messages[0]["role"] == "user" for r in backend.history)
    assert sorted(prompt_of(r) for r in backend.history) == sorted(
        [
            with_documents_prompt(MULTI_Q, [MARA, OSTBY]),
            with_documents_prompt(SHORTCUT_Q, [HOLLOWMERE, TARROW]),
            closed_book_prompt(MULTI_Q),
            closed_book_prompt(SHORTCUT_Q),
            with_documents_prompt(MULTI_Q, [MARA]),
            with_documents_prompt(MULTI_Q, [OSTBY]),
            with_documents_prompt(SHORTCUT_Q, [HOLLOWMERE]),
            with_documents_prompt(SHORTCUT_Q, [TARROW]),
        ]
    )
    assert all(r.json_schema == ANSWER_SCHEMA and r.sampling == Sampling() for r in backend.history)


def test_checks_stop_at_the_first_failure_in_order():
    op = RagAnswerabilityFilter(
        RagAnswerabilityFilter.Params(checks=["closed_book", "with_documents"], min_f1=0.5)
    )

    def script(request):
        text = prompt_of(request)
        if "without any documents" in text:
            return said("the year 988" if "A well" in text else "unknown")  # F1 2/3 >= 0.5: correct
        return said("1801")

    rows = batch(
        question=["A well known question?", "Q2?"],
        answer=["988", "988"],
        documents=["d1", "d2"],
        doc_ids=["1", "2"],
    )
    with bound(op, script) as backend:
        verdict = op.process(rows)
    assert verdict.reason.to_pylist() == [
        "answered correctly closed-book",
        "not answered correctly with its documents",
    ]
    assert verdict.detail.to_pylist() == ['answered "the year 988" (F1 0.67)', 'answered "1801" (F1 0.00)']
    assert len(backend.history) == 3  # the first row never reached `with_documents`
    assert verdict.columns["attempt"].to_pylist() == [None, "1801"]


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    pytest.importorskip("bm25s")
    monkeypatch.chdir(tmp_path)
    _corpus._LOADED.clear()
    docs = [
        ("p-mara", "Mara Quill", MARA),
        ("t-ostby", "Ostby", OSTBY),
        ("t-hollowmere", "Hollowmere", HOLLOWMERE),
        ("r-tarrow", "Tarrow", TARROW),
        ("t-pellam", "Pellam", "Pellam was founded in 1219 on the river Brannock."),
        ("t-quenby", "Quenby", "Quenby is a town. It was founded in 1322."),
    ]
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps({"id": i, "title": t, "text": x}) + "\n" for i, t, x in docs)
    )
    yield "corpus.jsonl"
    _corpus._LOADED.clear()


def test_retrieval_check_asks_with_hits_that_miss_a_hop(corpus):
    op = RagAnswerabilityFilter(RagAnswerabilityFilter.Params(checks=["retrieval"], corpus=corpus, top_k=2))
    wrong_hops = "How long is the Tarrow that flows through Hollowmere?"

    def script(request):
        text = prompt_of(request)
        return said("96 km" if TARROW in text else "unknown")

    rows = batch(
        question=[MULTI_Q, SHORTCUT_Q, wrong_hops],
        answer=["988", "96 km", "96 km"],
        documents=[[MARA, OSTBY], [HOLLOWMERE, TARROW], ["x", TARROW]],
        doc_ids=[["p-mara", "t-ostby"], ["t-hollowmere", "r-tarrow"], ["t-pellam", "r-tarrow"]],
    )
    with bound(op, script) as backend:
        verdict = op.process(rows)
    assert list(verdict.keep) == [True, True, False]
    checks = [c[0] for c in verdict.columns["answerability"].to_pylist()]
    # Row 1: the top 2 (Mara Quill, then Quenby: "town", "founded") miss Ostby and do not answer it.
    assert checks[0]["passed"] and checks[0]["reason"] == (
        'top 2 hits (p-mara, t-quenby) miss t-ostby and do not answer it: "unknown" (F1 0.00)'
    )
    # Row 2: both of its documents are the top 2: nothing is missing, no request.
    assert checks[1] == {
        "check": "retrieval",
        "passed": True,
        "reason": "BM25 top 2 hold every document: no hop is missing",
        "answer": None,
        "f1": None,
    }
    # Row 3: the top 2 miss `t-pellam`, yet answer it: that hop is not needed.
    assert verdict.reason.to_pylist()[2] == "answerable from BM25 hits missing a hop"
    assert verdict.detail.to_pylist()[2] == (
        'top 2 hits (r-tarrow, t-hollowmere) miss t-pellam: answered "96 km" (F1 1.00)'
    )
    quenby = "Quenby is a town. It was founded in 1322."
    assert sorted(prompt_of(r) for r in backend.history) == sorted(
        [
            with_documents_prompt(MULTI_Q, [MARA, quenby]),
            with_documents_prompt(wrong_hops, [TARROW, HOLLOWMERE]),
        ]
    )
    assert op.fingerprint_extra()["corpus"][0]["path"].endswith("corpus.jsonl")


def test_failed_and_empty_answers_reject_their_row_only():
    op = RagAnswerabilityFilter()

    def script(request):
        text = prompt_of(request)
        if "Q1?" in text:
            return LLMError("bad_request", "refused", status=400)
        if "Q2?" in text and "without any documents" in text:
            return ""  # returns nothing
        return said("988" if "documents below" in text else "unknown")

    rows = batch(
        question=["Q0?", "Q1?", "Q2?", "Q3?"],
        answer=["988"] * 4,
        documents=["d"] * 4,
        doc_ids=["a", "b", "c", "d"],
    )
    with bound(op, script):
        result = op.process(rows)
    assert isinstance(result, Partial)
    assert result.failed == [
        None,
        "with_documents: llm bad_request (HTTP 400)",
        "closed_book: llm invalid_output",
        None,
    ]
    assert result.raw[2] == ""
    assert list(result.result.keep) == [True, True, True, True]  # failed rows' verdicts are ignored
    attempts = result.result.columns["attempt"].to_pylist()
    assert attempts[0] == attempts[3] == "988" and attempts[1] is None


def test_null_inputs_and_missing_gold_are_failures_without_a_request():
    op = RagAnswerabilityFilter()
    rows = batch(
        question=["Q?", None, "Q?"],
        answer=[["988"], ["988"], [" "]],
        documents=["d", "d", "d"],
        doc_ids=["a", "b", "c"],
    )
    with bound(op, lambda r: said("988" if "documents below" in prompt_of(r) else "unknown")) as backend:
        result = op.process(rows)
    assert result.failed == [None, "null `question` in prompt", "no gold answer"]
    assert len(backend.history) == 2


def test_answerability_params():
    P = RagAnswerabilityFilter.Params
    with pytest.raises(ValidationError, match="set `corpus`"):
        P(checks=["retrieval"])
    with pytest.raises(ValidationError, match="listed twice"):
        P(checks=["closed_book", "closed_book"])
    with pytest.raises(ValidationError, match="check_templates"):
        P(template="x")
    with pytest.raises(ValidationError):
        P(checks=["oracle"])
    custom = RagAnswerabilityFilter(
        P(check_templates={"closed_book": "Q: {{ question }} ({{ hint }})"}, checks=["closed_book"])
    )
    assert custom.template_columns() == ["hint", "question"]
    with pytest.raises(SpecError, match="must use `{{ documents }}`"):
        RagAnswerabilityFilter(P(check_templates={"with_documents": "{{ question }}"})).template_columns()
    staged = RagAnswerabilityFilter()
    staged.prompt = "x"
    with pytest.raises(SpecError, match="check_templates"):
        staged.template_columns()


def test_verdict_columns_have_the_declared_types():
    op = RagAnswerabilityFilter()
    with bound(op, lambda r: said("988")):
        verdict = op.process(batch(question=["Q?"], answer=["988"], documents=["d"], doc_ids=["a"]))
    declared = RagAnswerabilityFilter.outputs["answerability"].type
    assert str(verdict.columns["answerability"].type) == declared
    assert verdict.columns["answerability"].type == pa.list_(
        pa.struct(
            [
                ("check", pa.string()),
                ("passed", pa.bool_()),
                ("reason", pa.string()),
                ("answer", pa.string()),
                ("f1", pa.float64()),
            ]
        )
    )
