"""BM25 search over the operator catalogue."""

from __future__ import annotations

import math

import pytest

from dataflow_cli.catalog.search import build_index, rank, search, tokenize


def op(name: str, summary: str = "", description: str = "", **extra) -> dict:
    return {"name": name, "summary": summary, "description": description, **extra}


def test_tokenize():
    assert tokenize("minhash_dedup_filter") == ["minhash", "dedup", "filter"]
    assert tokenize("Drop the duplicates of entries, in a Corpus!") == [
        "drop",
        "duplicate",
        "entry",
        "corpus",
    ]
    assert tokenize("class analysis status") == ["class", "analysis", "status"]


def test_bm25_score_by_hand():
    # Two one-field documents; the query word appears once, in the name of the first (weight 3).
    index = build_index([op("apple_filter"), op("pear_filter")])
    assert index["df"] == {"apple": 1, "filter": 2, "pear": 1}
    assert index["avg_length"] == 6
    ((name, score),) = rank(index, "apple")
    idf = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5))
    tf, norm = 3, 1.2 * (1 - 0.75 + 0.75 * 6 / 6)
    assert name == "apple_filter" and score == pytest.approx(idf * tf * 2.2 / (tf + norm), abs=1e-4)


def test_rank_weights_name_over_body_and_ignores_non_matches():
    index = build_index(
        [
            op("length_evaluator", "Count characters.", "Unrelated text about language."),
            op("language_filter", "Keep rows in allowed languages."),
            op("regex_filter", "Match a pattern."),
        ]
    )
    hits = rank(index, "language")
    assert [name for name, _ in hits] == ["language_filter", "length_evaluator"]
    assert rank(index, "zebra") == []
    assert rank(index, "") == []


def test_rank_fields_params_and_ports():
    index = build_index(
        [
            op("a_filter", params=[{"name": "threshold", "description": "Jaccard similarity bound."}]),
            op("b_filter", inputs=[{"name": "text", "description": "the email body"}]),
            op("c_filter", notes={"params": ["see the Jaccard paper"]}),
        ]
    )
    assert [n for n, _ in rank(index, "jaccard")] == ["a_filter", "c_filter"]
    assert [n for n, _ in rank(index, "email")] == ["b_filter"]


def test_prefix_match_when_no_exact_word():
    index = build_index([op("minhash_dedup_filter", "Drop near-duplicate texts."), op("x_refiner", "Other.")])
    assert rank(index, "deduplication")[0][0] == "minhash_dedup_filter"  # `dedup` prefixes it
    assert rank(index, "dup") == []  # too short to expand


def test_limit_and_order_are_stable():
    index = build_index([op(f"same{i}_filter", "Identical words here.") for i in range(5)])
    hits = rank(index, "identical words", k=3)
    assert [n for n, _ in hits] == ["same0_filter", "same1_filter", "same2_filter"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("near duplicate documents", {"minhash_dedup_filter", "simhash_dedup_filter"}),
        ("remove emails and phone numbers", {"pii_refiner"}),
        ("detect language", {"language_evaluator", "language_filter"}),
        ("numeric range min max", {"range_filter"}),
        ("llm judge score", {"prompted_evaluator", "pairwise_judge_evaluator"}),
        ("benchmark contamination", {"ngram_decontam_filter"}),
    ],
)
def test_search_installed_operators(query, expected):
    top = [name for name, _ in search(query, k=3)]
    assert expected & set(top), top
