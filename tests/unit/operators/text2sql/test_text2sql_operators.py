"""The rule-based text-to-SQL operators on the sample databases: executability, execution (with
its output columns), component difficulty, prompts and CoT voting against the gold result."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pytest

pytest.importorskip("sqlglot")

from dataflow_operators.text2sql.sql_component_difficulty_evaluator import (  # noqa: E402
    SqlComponentDifficultyEvaluator,
)
from dataflow_operators.text2sql.sql_executability_filter import SqlExecutabilityFilter  # noqa: E402
from dataflow_operators.text2sql.sql_execution_filter import SqlExecutionFilter  # noqa: E402
from dataflow_operators.text2sql.text2sql_cot_voting_generator import Text2sqlCotVotingGenerator  # noqa: E402
from dataflow_operators.text2sql.text2sql_prompt_generator import Text2sqlPromptGenerator  # noqa: E402

from dataflow_cli.errors import DataflowError  # noqa: E402
from dataflow_cli.operator import Partial, Verdict  # noqa: E402
from dataflow_cli.sandbox.sql import hash_file  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.support.llm_ops import batch  # noqa: E402

SAMPLES = REPO / "pipelines" / "text2sql_generate" / "databases"


@pytest.fixture
def root(tmp_path):
    """The sample databases in a scratch folder, checked byte-identical afterwards."""
    folder = tmp_path / "dbs"
    shutil.copytree(SAMPLES, folder)
    before = {p.name: hash_file(p) for p in folder.iterdir()}
    yield folder
    assert {p.name: hash_file(p) for p in folder.iterdir()} == before


def make(cls, root, **params):
    return cls(cls.Params(db_root=str(root), isolation="thread", **params))


def verdict_rows(verdict: Verdict):
    return list(zip(verdict.keep, verdict.reason.to_pylist(), verdict.detail.to_pylist(), strict=True))


def test_executability_checks_parse_kind_and_compile(root):
    op = make(SqlExecutabilityFilter, root)
    sql = [
        "SELECT title FROM books",
        "SELECT title FROM books; SELECT 1",
        "SELECT FROM WHERE",
        "WITH x AS (SELECT 1) DELETE FROM books",
        "PRAGMA table_info(books)",
        "SELECT nope FROM books",
        "SELECT title FROM books",
        "",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    ]
    db = ["bookstore"] * 6 + ["atlantis", "bookstore", "bookstore"]
    rows = verdict_rows(op.filter(batch(sql=sql, db_id=db)))
    assert [(keep, reason) for keep, reason, _ in rows] == [
        (True, None),
        (False, "sql multiple statements"),
        (False, "sql parse error"),
        (False, "sql not read-only: DELETE"),
        (False, "sql not read-only: PRAGMA"),
        (False, "sql error: no such column"),
        (False, "unknown db_id"),
        (False, "sql empty"),
        (True, None),  # compiled, never run: an endless query is executable
    ]
    assert rows[5][2] == "no such column: nope"


def test_execution_rejects_each_failure_with_its_reason_and_writes_fingerprints(root):
    op = make(SqlExecutionFilter, root, timeout=0.3, max_rows=200, reject_empty=True)
    sql = [
        "SELECT genre, count(*) FROM books GROUP BY genre",
        "SELECT count(*) AS n, genre FROM books GROUP BY genre ORDER BY n",
        "SELECT nope FROM books",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        f"ATTACH '{root}/evil.db' AS e",
        "SELECT 1; SELECT 2",
        "SELECT * FROM order_items",
        "SELECT title FROM books WHERE price < 0",
        "SELECT genre, count(*) FROM books GROUP BY genre ORDER BY 2",
        "SELECT 1",
    ]
    db = ["bookstore"] * 9 + ["../bookstore"]
    verdict = op.filter(batch(sql=sql, db_id=db))
    assert [(keep, reason) for keep, reason, _ in verdict_rows(verdict)] == [
        (True, None),
        (True, None),
        (False, "sql error: no such column"),
        (False, "sql timeout"),
        (False, "sql not read-only: ATTACH"),
        (False, "sql multiple statements"),
        (False, "sql too many rows"),
        (False, "empty result"),
        (True, None),
        (False, "invalid db_id"),
    ]
    fingerprints = verdict.columns["result_fingerprint"].to_pylist()
    counts = verdict.columns["result_rows"].to_pylist()
    assert counts == [7, 7, None, None, None, None, None, 0, 7, None]
    assert fingerprints[0] == fingerprints[8] != fingerprints[1]  # same rows; columns swapped
    assert fingerprints[7] is not None and fingerprints[2] is None
    assert not (root / "evil.db").exists()


def test_execution_keeps_empty_results_unless_asked(root):
    op = make(SqlExecutionFilter, root)
    verdict = op.filter(batch(sql=["SELECT 1 WHERE 0"], db_id=["world"]))
    assert list(verdict.keep) == [True] and verdict.columns["result_rows"].to_pylist() == [0]


def test_guard_limits_are_recorded_for_the_run_stats(root):
    op = make(SqlExecutionFilter, root, timeout=2.5, max_rows=50)
    limits = op.run_limits()["sql_guard"]
    assert (limits["timeout"], limits["max_rows"], limits["isolation"]) == (2.5, 50, "thread")


def test_a_missing_database_folder_is_a_clear_error(tmp_path):
    op = make(SqlExecutionFilter, tmp_path / "nowhere")
    with pytest.raises(DataflowError, match="database folder .* does not exist"):
        op.filter(batch(sql=["SELECT 1"], db_id=["x"]))


def test_relative_db_root_resolves_against_the_spec_folder(root, monkeypatch, tmp_path):
    op = SqlExecutionFilter(SqlExecutionFilter.Params(db_root="dbs", isolation="thread"))
    op.base_dir = tmp_path
    monkeypatch.chdir("/")
    assert list(op.filter(batch(sql=["SELECT 1"], db_id=["world"])).keep) == [True]


def test_component_difficulty(root):
    op = SqlComponentDifficultyEvaluator()
    out = op.evaluate(
        batch(sql=["SELECT count(*) FROM books", "SELECT FROM", None, "SELECT a FROM t ORDER BY a"])
    )
    assert isinstance(out, Partial)
    assert out.result == {
        "difficulty": ["easy", None, None, "easy"],
        "components": ["0/0/0", None, None, "1/0/0"],
    }
    assert out.failed == [None, "sql parse error", "sql empty", None]


def test_prompts_show_schema_samples_question_and_evidence(root):
    op = make(Text2sqlPromptGenerator, root, schema_format="compact", sample_values=1)
    out = op.generate(
        batch(
            question=["How many capitals are there?", "Which books?", None],
            evidence=["A capital has is_capital = 1.", None, None],
            db_id=["world", "atlantis", "world"],
        )
    )
    prompt = out.result["prompt"][0]
    assert prompt.startswith("Database `world` (SQLite):\n\ncountries(code TEXT PK, name TEXT,")
    assert "  name: 'Brasília'" in prompt
    assert (
        "External knowledge: A capital has is_capital = 1.\n\nQuestion: How many capitals are there?"
        in prompt
    )
    assert prompt.endswith("then give the final query in a ```sql code block.")
    assert out.failed == [None, "unknown db_id", "null `question`"]
    custom = make(
        Text2sqlPromptGenerator, root, template="{{ db_id }}|{{ question }}|{{ evidence }}", sample_values=0
    )
    assert custom.generate(batch(question=["q"], evidence=[None], db_id=["world"]))["prompt"] == [
        "world|q|None"
    ]


def traces(*sqls):
    return json.dumps([f"Step by step.\n```sql\n{sql}\n```" if sql else "No SQL here." for sql in sqls])


def test_voting_keeps_a_trace_equivalent_to_the_gold_result(root):
    op = make(Text2sqlCotVotingGenerator, root, timeout=0.3)
    gold = "SELECT genre, count(*) FROM books GROUP BY genre ORDER BY count(*) DESC"
    rows = {
        # wrong order, then two spellings of the right query (one vote), then a third correct one
        "majority": traces(
            "SELECT genre, count(*) FROM books GROUP BY genre ORDER BY count(*)",
            "select genre, COUNT(*) from books group by genre order by count(*) desc",
            "SELECT genre, count(*) AS n FROM books GROUP BY genre ORDER BY n DESC",
            "SELECT genre, count(*) FROM books GROUP BY genre ORDER BY count(*) DESC",
        ),
        "none": traces("SELECT genre FROM books", None, "SELECT nope FROM books"),
        "runaway": traces(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        ),
    }
    out = op.generate(
        batch(
            traces=[rows["majority"], rows["none"], rows["runaway"], rows["majority"], "[]"],
            sql=[gold, gold, gold, "SELECT nope", gold],
            db_id=["bookstore"] * 5,
        )
    )
    assert isinstance(out, Partial)
    assert out.result["cot"][0] == json.loads(rows["majority"])[1]  # the 2-vote group, earliest trace
    assert (
        out.result["cot_sql"][0] == "select genre, COUNT(*) from books group by genre order by count(*) desc"
    )
    assert (out.result["cot_correct"][0], out.result["cot_tried"][0]) == (3, 4)
    assert out.failed == [
        None,
        "no correct trace among 3",
        "no correct trace among 1",
        "gold sql failed: sql error: no such column",
        "no traces",
    ]


def test_voting_ties_go_to_the_earliest_trace(root):
    op = make(Text2sqlCotVotingGenerator, root)
    gold = "SELECT count(*) FROM books"
    out = op.generate(
        batch(
            traces=[traces("SELECT count(book_id) FROM books", "SELECT count(*) FROM books")],
            sql=[gold],
            db_id=["bookstore"],
        )
    )
    assert out["cot_sql"] == ["SELECT count(book_id) FROM books"]
    assert pa.array(out["cot_correct"]).to_pylist() == [2]


def test_a_broken_prompt_template_is_a_spec_error():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="template syntax error"):
        Text2sqlPromptGenerator.Params(db_root="x", template="{{ question ")
