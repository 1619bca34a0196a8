"""The rule-based rag operators: supporting spans, answer scores, hop chains."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from dataflow_operators.rag import _corpus
from dataflow_operators.rag.answer_score import RagAnswerScoreEvaluator
from dataflow_operators.rag.hop_pairs import RagHopPairGenerator
from dataflow_operators.rag.support import RagSupportFilter

from dataflow_cli.operator import Batch, Fanout, Partial
from tests.support.llm_ops import batch

DOC = "Hollowmere is a town on the river Tarrow. It was founded in 1142 by Edda Varn."


def test_support_filter_finds_the_span_and_the_answer_in_it():
    op = RagSupportFilter()
    rows = [
        ("It was founded in 1142 by Edda Varn.", "1142"),  # kept
        ("“it was founded in 1142 by Edda Varn”", "Edda Varn"),  # kept: quotes and case are form
        ("Hollowmere was founded in 1142.", "1142"),  # a paraphrase
        ("on the river Tarrow", "the Tarrow"),  # found, 4 words: kept
        ("Hollowmere is a town ... founded in 1142", "1142"),  # an ellipsis for an omitted part
        ("river Tarrow", "Tarrow"),  # too short to support anything
        ("It was founded in 1142 by Edda Varn.", "1143"),  # the answer is not in the span
        (None, "1142"),
        ("It was founded in 1142", None),
    ]
    verdict = op.process(
        batch(document=[DOC] * len(rows), support=[r[0] for r in rows], answer=[r[1] for r in rows])
    )
    assert list(verdict.keep) == [True, True, False, True, True, False, False, False, False]
    assert verdict.reason.to_pylist() == [
        None,
        None,
        "support not in document",
        None,
        None,
        "support too short",
        "answer not in support",
        "missing support",
        "missing answer",
    ]


def test_support_filter_params():
    op = RagSupportFilter(RagSupportFilter.Params(min_words=1, require_answer=False))
    verdict = op.process(batch(document=[DOC], support=["Tarrow"], answer=["Osk"]))
    assert list(verdict.keep) == [True]


def test_answer_score_evaluator():
    op = RagAnswerScoreEvaluator()
    result = op.process(
        batch(
            prediction=["The Tarrow", "Tarrow river", "Osk", None, "x"],
            gold=[["Tarrow"], ["Tarrow"], ["Tarrow", "the Osk"], ["Tarrow"], []],
        )
    )
    assert result["exact_match"].to_pylist() == [True, False, True, None, None]
    assert result["f1"].to_pylist() == [1.0, pytest.approx(2 / 3), 1.0, None, None]
    one_gold = op.process(batch(prediction=["the Osk"], gold=["Osk"]))
    assert one_gold["exact_match"].to_pylist() == [True]


# Hop chains ------------------------------------------------------------------------------

CORPUS = [
    {"id": "p-mara", "title": "Mara Quill", "text": "Mara Quill was an architect born in Ostby in 1801."},
    {"id": "t-ostby", "title": "Ostby", "text": "Ostby is a port. It was founded in 988."},
    {"id": "r-tarrow", "title": "Tarrow", "text": "The Tarrow flows 96 km."},
    {"id": "r-osk", "title": "Osk", "text": "The Osk rises in Lake Imber and flows 54 km."},
    {"id": "r-fennet", "title": "Fennet", "text": "The Fennet rises in Lake Imber."},
    {"id": "t-pellam", "title": "Pellam", "text": "Pellam was founded in 1219."},
]
FACTS = [  # doc_id, question, answer, support
    ("p-mara", "Where was Mara Quill born?", "Ostby", "born in Ostby in 1801"),
    ("t-ostby", "In what year was Ostby founded?", "988", "It was founded in 988."),
    ("r-tarrow", "How long is the Tarrow?", "96 km", "The Tarrow flows 96 km."),
    ("r-osk", "How long is the Osk?", "54 km", "flows 54 km"),
    ("r-osk", "Where does the Osk rise?", "Lake Imber", "rises in Lake Imber"),
    ("r-fennet", "Where does the Fennet rise?", "Lake Imber", "rises in Lake Imber"),
    ("t-pellam", "In what year was Pellam founded?", "1219", "Pellam was founded in 1219."),
    ("nowhere", "What is it?", "x", "x"),
]


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _corpus._LOADED.clear()
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    yield "corpus.jsonl"
    _corpus._LOADED.clear()


def run_pairs(op, facts, batch_size):
    table = pa.table(
        {name: [f[i] for f in facts] for i, name in enumerate(("doc_id", "question", "answer", "support"))}
    )
    batches = [Batch(table.slice(i, batch_size)) for i in range(0, len(facts), batch_size)]
    results = list(op.process_all(iter(batches)))
    assert len(results) == len(batches)
    chains, failures = [], []
    for k, result in enumerate(results):
        failed = result.failed if isinstance(result, Partial) else [None] * batches[k].num_rows
        fanout = result.result if isinstance(result, Partial) else result
        assert isinstance(fanout, Fanout)
        columns = {name: array.to_pylist() for name, array in fanout.columns.items()}
        for j, source in enumerate(fanout.source_index.to_pylist()):
            chains.append((k * batch_size + source, {name: values[j] for name, values in columns.items()}))
        failures.extend(failed)
    return chains, failures


@pytest.mark.parametrize("batch_size", [100, 3, 1])
def test_hop_pairs_bridge_comparison_intersection(corpus, batch_size):
    op = RagHopPairGenerator(RagHopPairGenerator.Params(corpus=corpus))
    chains, failures = run_pairs(op, FACTS, batch_size)
    summary = [(source, c["composition"], c["hop_doc_ids"], c["multihop_answer"]) for source, c in chains]
    assert summary == [
        (0, "bridge", ["p-mara", "t-ostby"], "988"),  # Ostby is the title of hop 2's document
        (1, "comparison", ["t-ostby", "t-pellam"], "Pellam"),  # 1219 > 988, same question shape
        (2, "comparison", ["r-tarrow", "r-osk"], "Tarrow"),  # 96 km > 54 km
        (4, "intersection", ["r-osk", "r-fennet"], "Lake Imber"),
    ]
    mara = chains[0][1]
    assert mara["hops"] == [
        {
            "doc_id": "p-mara",
            "title": "Mara Quill",
            "question": FACTS[0][1],
            "answer": "Ostby",
            "support": FACTS[0][3],
        },
        {
            "doc_id": "t-ostby",
            "title": "Ostby",
            "question": FACTS[1][1],
            "answer": "988",
            "support": FACTS[1][3],
        },
    ]
    assert mara["hop_documents"] == [CORPUS[0]["text"], CORPUS[1]["text"]]
    # A row that starts no chain says why: Fennet and Pellam are only ever second hops.
    assert failures == [
        None,
        None,
        None,
        "no hop partner",
        None,
        "no hop partner",
        "no hop partner",
        "document not in corpus",
    ]


def test_hop_pairs_bridge_through_a_mention_and_the_limits(corpus):
    facts = [
        ("p-mara", "Where was Mara Quill born?", "Ostby", "born in Ostby"),
        ("r-osk", "Which river reaches the sea at Ostby?", "Osk", "x"),  # names hop 1's answer
        ("t-ostby", "In what year was Ostby founded?", "988", "It was founded in 988."),
        ("t-pellam", "Is Pellam old?", "yes", "y"),  # yes/no answers are not entities
    ]
    op = RagHopPairGenerator(RagHopPairGenerator.Params(corpus=corpus, compositions=["bridge"]))
    chains, _ = run_pairs(op, facts, 10)
    assert [(s, c["hop_doc_ids"]) for s, c in chains] == [
        (0, ["p-mara", "r-osk"]),
        (0, ["p-mara", "t-ostby"]),
    ]
    capped = RagHopPairGenerator(RagHopPairGenerator.Params(corpus=corpus, max_per_row=1))
    chains, _ = run_pairs(capped, facts, 10)
    assert [(s, c["hop_doc_ids"]) for s, c in chains] == [(0, ["p-mara", "r-osk"])]


def test_hop_pairs_need_a_corpus():
    with pytest.raises(ValueError, match="set `corpus`"):
        RagHopPairGenerator.Params()
