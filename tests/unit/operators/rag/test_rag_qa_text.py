"""Answer normalization, exact match and token F1 (SQuAD's definition)."""

from __future__ import annotations

import pytest
from dataflow_operators._lib.qa_text import (
    contains_answer,
    exact_match,
    gold_list,
    normalize_answer,
    token_f1,
)


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The River Tarrow", "river tarrow"),
        ("  an   Apple, a pear!  ", "apple pear"),
        ("1,204", "1204"),
        ("“Lake Imber”", "lake imber"),  # Unicode quotation marks are punctuation too
        ("Theatre", "theatre"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_against_several_golds():
    assert exact_match("the Tarrow.", ["Osk", "Tarrow"])
    assert not exact_match("Tarrow river", ["Tarrow"])


def test_token_f1_is_the_best_over_golds():
    # prediction "tarrow river" vs gold "tarrow": precision 1/2, recall 1/1 -> F1 2/3
    assert token_f1("Tarrow river", ["Tarrow"]) == pytest.approx(2 / 3)
    assert token_f1("Tarrow river", ["Osk", "the river Tarrow"]) == 1.0
    # Tokens count as a multiset: "a a b" vs "a b": precision 2/3, recall 1 -> 0.8
    assert token_f1("x x y", ["x y"]) == pytest.approx(0.8)
    assert token_f1("Osk", ["Tarrow"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both normalize to nothing
    assert token_f1("Osk", []) == 0.0


def test_gold_list_takes_a_string_or_a_list():
    assert gold_list("Osk") == ["Osk"]
    assert gold_list(["Osk", None, " ", "Tarrow"]) == ["Osk", "Tarrow"]
    assert gold_list(None) == [] and gold_list(" ") == []


def test_contains_answer_needs_a_run_of_whole_words():
    assert contains_answer("It was founded in 1,204 by Edda.", "1204")
    assert contains_answer("on the river Tarrow, known for glass", "The Tarrow")
    assert not contains_answer("Tarrowmere lies here", "Tarrow")
    assert not contains_answer("founded by Edda Varn", "Varn Edda")
    assert not contains_answer("anything", "the")
