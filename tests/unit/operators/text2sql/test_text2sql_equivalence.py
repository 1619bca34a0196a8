"""Result equivalence: the labelled set (accuracy printed and asserted), and the rule's corners."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("sqlglot")

from dataflow_operators.text2sql._equivalence import compare_results, multisets_equal, values_equal  # noqa: E402
from dataflow_operators.text2sql._sqltext import outer_order_by  # noqa: E402

from dataflow_cli.sandbox.sql import SqlGuard, SqlLimits, SqlResult  # noqa: E402
from tests.conftest import REPO  # noqa: E402

PAIRS = Path(__file__).parent / "data" / "equivalence_pairs.jsonl"
DATABASES = REPO / "pipelines" / "text2sql_generate" / "databases"


def test_the_labelled_set_is_judged_correctly(capsys):
    """(gold SQL, predicted SQL, equivalent?) pairs written by hand on the sample databases,
    labelled from the rule and the data, never from this implementation's output."""
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    covers = Counter(p["covers"] for p in pairs)
    assert len(pairs) >= 120
    for topic in ("ordering", "duplicates", "nulls", "numbers", "column order", "empty", "failures"):
        assert covers[topic] >= 5, topic
    guard = SqlGuard(SqlLimits(timeout=1.0))
    wrong = []
    for pair in pairs:
        path = DATABASES / f"{pair['db_id']}.sqlite"
        gold, predicted = guard.execute(path, pair["gold"]), guard.execute(path, pair["predicted"])
        verdict = compare_results(gold, predicted, outer_order_by(pair["gold"]))
        if verdict.equivalent != pair["equivalent"]:
            wrong.append((pair, verdict.reason))
    accuracy = 1 - len(wrong) / len(pairs)
    with capsys.disabled():
        print(
            f"\nresult equivalence: {len(pairs) - len(wrong)}/{len(pairs)} labelled pairs right, accuracy {accuracy:.4f}"
        )
    assert accuracy >= 0.99, wrong


def result(*rows, columns=None):
    width = len(rows[0]) if rows else (columns or 1)
    return SqlResult(tuple(f"c{i}" for i in range(width)), list(rows))


@pytest.mark.parametrize(
    "a, b, equal",
    [
        (None, None, True),
        (None, "", False),
        (None, 0, False),
        (600, 600.0, True),
        (600, 600.0000001, True),
        (600, 600.01, False),
        (1_000_000, 1_000_001, False),  # integers are exact
        (1_000_000, 1_000_000.5, True),  # a float on either side: relative tolerance 1e-6
        (0.0, 5.551115123125783e-17, True),  # rounding noise around zero
        (0.0, 1e-6, False),
        (1, "1", False),
        ("1", 1.0, False),
        ("a", "a", True),
        ("a", "A", False),
        ("a ", "a", False),
        ("a", b"a", False),
        (b"\x00", b"\x00", True),
        (float("inf"), float("inf"), True),
        (-0.0, 0, True),
    ],
)
def test_values(a, b, equal):
    assert values_equal(a, b) is equal
    assert values_equal(b, a) is equal


def test_failures_are_equivalent_to_nothing():
    failed = SqlResult(error="sql timeout")
    assert not compare_results(failed, failed, False).equivalent
    assert compare_results(result((1,)), failed, False).reason == "prediction failed: sql timeout"
    assert compare_results(failed, result((1,)), False).reason == "gold failed: sql timeout"


def test_two_empty_results_are_equal_whatever_their_columns():
    assert compare_results(result(columns=1), result(columns=3), True).equivalent
    assert not compare_results(result(columns=1), result((None,)), False).equivalent


def test_order_counts_only_when_asked():
    gold, predicted = result((1,), (2,)), result((2,), (1,))
    assert compare_results(gold, predicted, False).equivalent
    assert compare_results(gold, predicted, True).reason == "row 1 differs (order counts)"


def test_multisets_count_duplicates():
    assert not multisets_equal([(1,), (1,), (2,)], [(1,), (2,), (2,)])
    assert multisets_equal([(1,), (1,), (2,)], [(2,), (1,), (1,)])


def test_near_equal_floats_are_matched_whatever_their_sort_order():
    # Sorted, gold pairs (1.0000001, 'b') with ('a') first; a greedy sorted comparison fails.
    gold = [(1.0000001, "b"), (1.0, "a")]
    predicted = [(1.0, "b"), (1.0000001, "a")]
    assert multisets_equal(gold, predicted)
    gold = [(1.0, 2.0), (1.0000001, 3.0)]
    predicted = [(1.0000001, 2.0), (1.0, 3.0000001)]
    assert multisets_equal(gold, predicted)
    assert not multisets_equal([(1.0, 2.0), (1.0, 3.0)], [(1.0, 2.0), (1.0, 3.1)])


def test_column_count_and_row_count_must_match():
    assert compare_results(result((1, 2)), result((1,)), False).reason == "column count 1 != 2"
    assert compare_results(result((1,)), result((1,), (1,)), False).reason == "row count 2 != 1"


@pytest.mark.parametrize(
    "sql, ordered",
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("select a from t order by a desc limit 3", True),
        ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", True),
        ("SELECT a FROM t", False),
        ("SELECT * FROM (SELECT a FROM t ORDER BY a)", False),
        ("WITH c AS (SELECT a FROM t ORDER BY a) SELECT a FROM c", False),
        ("SELECT a, rank() OVER (ORDER BY b) FROM t", False),
        ("SELECT 'ORDER BY a' FROM t", False),
        ("SELECT a FROM t WHERE b IN (SELECT b FROM u ORDER BY b LIMIT 1)", False),
        ('SELECT "order by" FROM t', False),
        ("SELECT a FROM t -- ORDER BY a", False),
        ("SELECT a FROM t EXCEPT SELECT a FROM (SELECT a FROM u ORDER BY a)", False),
        ("WITH c AS (SELECT 1 AS a) SELECT a FROM c ORDER BY a", True),
        ("SELECT a FROM t ORDER BY a;", True),
        # sqlglot cannot parse this; its tokens still show an outer ORDER BY
        ("SELECT a FROM t WHERE ORDER BY a", True),
    ],
)
def test_outer_order_by_is_read_from_the_syntax_tree(sql, ordered):
    assert outer_order_by(sql) is ordered
