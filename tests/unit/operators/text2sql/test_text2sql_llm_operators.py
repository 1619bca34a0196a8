"""The LLM text-to-SQL operators: exact prompts, parsing, and runs against a real `LLMEngine`
over a scripted fake backend (every request recorded)."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytest.importorskip("sqlglot")

from dataflow_operators.text2sql.sql_execution_difficulty_evaluator import (  # noqa: E402
    SqlExecutionDifficultyEvaluator,
)
from dataflow_operators.text2sql.sql_generator import SqlGenerator  # noqa: E402
from dataflow_operators.text2sql.sql_variation_generator import SqlVariationGenerator  # noqa: E402
from dataflow_operators.text2sql.text2sql_consistency_filter import Text2sqlConsistencyFilter  # noqa: E402
from dataflow_operators.text2sql.text2sql_cot_generator import Text2sqlCotGenerator  # noqa: E402
from dataflow_operators.text2sql.text2sql_question_generator import (  # noqa: E402
    CANDIDATE_SCHEMA,
    Text2sqlQuestionGenerator,
    medoid,
)

from dataflow_cli.llm.operator import ParseError  # noqa: E402
from dataflow_cli.llm.types import Request, Sampling  # noqa: E402
from dataflow_cli.operator import Fanout, Partial, Verdict  # noqa: E402
from tests.support.llm_ops import batch, bound  # noqa: E402

SCHEMA_TEXT = "team(id INTEGER PK, name TEXT) [2 rows]"


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "dbs"
    folder.mkdir()
    conn = sqlite3.connect(folder / "league.sqlite")
    conn.executescript(
        "CREATE TABLE team (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO team VALUES (1, 'Ajax'), (2, 'Öster');"
    )
    conn.commit()
    conn.close()
    return folder


def make(cls, root, **params):
    if "schema_format" in cls.Params.model_fields:
        params.setdefault("schema_format", "compact")
        params.setdefault("sample_values", 0)
    return cls(cls.Params(db_root=str(root), isolation="thread", **params))


def last(request: Request) -> str:
    return request.messages[-1]["content"]


def sql_block(sql: str) -> str:
    return f"Here it is:\n```sql\n{sql}\n```"


# --- sql_generator ---------------------------------------------------------------------------


def test_sql_generator_default_prompt_is_exact(root):
    op = make(SqlGenerator, root)
    row = {
        "db_id": "league",
        "schema": SCHEMA_TEXT,
        "complexity": "join",
        "complexity_description": "two tables",
    }
    assert op.build_messages(row) == [
        {
            "role": "user",
            "content": "You write SQL queries for a text-to-SQL dataset.\n\nDatabase `league` (SQLite):\n\n"
            f"{SCHEMA_TEXT}\n\nWrite one SQLite query of this kind: join, that is two tables.\n"
            "Use only the tables and columns above, and values that occur in the data (see the examples),\n"
            "so that the query runs and returns a meaningful, non-empty result.\n"
            "Answer with the query alone, in a ```sql code block.\n",
        }
    ]
    assert op.template_columns() == ["db_id"]  # schema and complexity are filled in, not columns


def test_sql_generator_cycles_complexity_types_with_distinct_samples(root):
    op = make(
        SqlGenerator, root, n=5, complexity_types=["simple", "aggregation"], template="{{ complexity }}"
    )

    def reply(request: Request) -> str:
        kind = last(request)
        return (
            "no sql, sorry"
            if request.sample_index == 2
            else sql_block(f"SELECT '{kind}{request.sample_index}'")
        )

    with bound(op, reply) as backend:
        out = op.generate(batch(db_id=["league", "atlantis"]))
    assert sorted((last(r), r.sample_index) for r in backend.history) == [
        ("aggregation", 0),
        ("aggregation", 1),
        ("simple", 0),
        ("simple", 1),
        ("simple", 2),
    ]
    assert isinstance(out, Partial) and isinstance(out.result, Fanout)
    assert out.result.columns == {
        "sql": ["SELECT 'simple0'", "SELECT 'aggregation0'", "SELECT 'simple1'", "SELECT 'aggregation1'"],
        "complexity": ["simple", "aggregation", "simple", "aggregation"],
    }
    assert out.result.source_index.to_pylist() == [0, 0, 0, 0]
    assert out.failed == [None, "unknown db_id"]


def test_sql_generator_rejects_a_database_without_any_sql(root):
    op = make(SqlGenerator, root, n=2, template="x")
    with bound(op, lambda request: "I don't know") as _:
        out = op.generate(batch(db_id=["league"]))
    assert out.failed == ["parse error: no SQL in answer"] and out.raw == ["I don't know"]


def test_unknown_complexity_type_is_a_spec_error():
    with pytest.raises(ValueError, match="unknown complexity type `joins`; did you mean `join`"):
        SqlGenerator.Params(db_root="x", complexity_types=["joins"])


# --- sql_variation_generator -----------------------------------------------------------------


def test_variations_are_strict_json_with_their_type(root):
    op = make(
        SqlVariationGenerator,
        root,
        n=3,
        variation_types=["values", "difficulty"],
        template="{{ variation }}: {{ sql }}",
    )
    answers = {
        "values": json.dumps(
            {"sql": "SELECT name FROM team WHERE id = 2", "question": "Team 2?", "evidence": ""}
        ),
        "difficulty": "not json",
    }
    with bound(op, lambda r: answers[last(r).split(":")[0]]) as backend:
        out = op.generate(
            batch(sql=["SELECT name FROM team WHERE id = 1"], question=["Team 1?"], db_id=["league"])
        )
    assert all(r.json_schema["required"] == ["sql", "question", "evidence"] for r in backend.history)
    assert last(backend.history[0]).endswith(": SELECT name FROM team WHERE id = 1")
    assert isinstance(out, Fanout)
    assert out.columns == {
        "variant_sql": ["SELECT name FROM team WHERE id = 2"] * 2,
        "variant_question": ["Team 2?"] * 2,
        "variant_evidence": [None, None],
        "variation_type": ["values", "values"],
    }


def test_variation_parse():
    op = SqlVariationGenerator(SqlVariationGenerator.Params(db_root="x"))
    parsed = op.parse(
        '```json\n{"sql": "```sql\\nSELECT 1;\\n```", "question": " Q ", "evidence": "E"}\n```', {}
    )
    assert parsed == {"sql": "SELECT 1", "question": "Q", "evidence": "E"}
    for text, reason in [
        ("[1]", "not a JSON object"),
        ('{"sql": "", "question": "q"}', "no `sql`"),
        ("{", "not JSON"),
    ]:
        with pytest.raises(ParseError, match=reason):
            op.parse(text, {})


# --- text2sql_question_generator -----------------------------------------------------------------


def question_op(root, **params):
    params.setdefault("template", "{{ style }}|{{ sql }}")
    return make(Text2sqlQuestionGenerator, root, **params)


def test_question_candidates_and_the_vote(root):
    op = question_op(root, candidates=3, select="vote", styles=["formal"])

    def reply(request: Request) -> str:
        if request.json_schema == CANDIDATE_SCHEMA:
            return json.dumps(
                {"question": f"Q{request.sample_index}?", "evidence": "E" if request.sample_index else ""}
            )
        return json.dumps({"best": 2, "reason": "clearest"})

    with bound(op, reply) as backend:
        out = op.generate(batch(sql=["SELECT name FROM team"], db_id=["league"]))
    assert [last(r) for r in backend.history[:3]] == ["formal|SELECT name FROM team"] * 3
    assert [r.sample_index for r in backend.history[:3]] == [0, 1, 2]
    vote = backend.history[3]
    assert vote.json_schema["properties"]["best"]["enum"] == [1, 2, 3]
    assert last(vote) == (
        "Which question best describes what this SQL query returns: clear, complete, and with no other reading?\n\n"
        "SQL:\n```sql\nSELECT name FROM team\n```\n\nCandidates:\n1. Q0?\n2. Q1? (evidence: E)\n3. Q2? (evidence: E)\n\n"
        'Answer with a JSON object: {"best": <the number of the best candidate>, "reason": "..."}.'
    )
    assert out == {
        "question": ["Q1?"],
        "evidence": ["E"],
        "question_style": ["formal"],
        "question_candidates": [3],
    }


def test_question_medoid_uses_embeddings(root):
    vectors = {"A?": [1.0, 0.0], "B?": [0.9, 0.1], "C?": [0.0, 1.0]}
    op = Text2sqlQuestionGenerator(
        Text2sqlQuestionGenerator.Params(
            db_root=str(root), isolation="thread", candidates=3, template="{{ sql }}"
        ),
        embed=lambda texts: [vectors[t] for t in texts],
    )
    assert op.selection() == "medoid"
    names = ["A?", "C?", "B?"]
    with bound(op, lambda r: json.dumps({"question": names[r.sample_index], "evidence": ""})) as backend:
        out = op.generate(batch(sql=["SELECT 1"], db_id=["league"]))
    assert len(backend.history) == 3  # no vote call
    assert out["question"] == ["B?"]
    assert medoid([[1, 0], [1, 0], [0, 1]]) == 0


def test_question_style_is_stable_per_query(root):
    op = question_op(root)
    row = {"db_id": "league", "sql": "SELECT 1"}
    assert op.style_for(row) == op.style_for(dict(row)) in op.params.styles


def test_a_failed_vote_rejects_the_row(root):
    op = question_op(root, candidates=2, select="vote")

    def reply(request):
        if request.json_schema == CANDIDATE_SCHEMA:
            return json.dumps({"question": f"Q{request.sample_index}", "evidence": ""})
        return '{"best": 7, "reason": "x"}'

    with bound(op, reply):
        out = op.generate(batch(sql=["SELECT 1", None], db_id=["league", "league"]))
    assert out.failed == ["llm invalid_output", "null `sql`"]  # 7 is outside the schema's enum
    with pytest.raises(ParseError, match="vote names no candidate"):
        op.parse_vote('{"best": 0, "reason": "x"}', 2)
    assert op.parse_vote('{"best": 2, "reason": "x"}', 2) == 1


# --- text2sql_consistency_filter ------------------------------------------------------------------


def test_consistency_verdicts_are_strict_json(root):
    op = make(
        Text2sqlConsistencyFilter, root, template="{{ question }}|{{ evidence }}|{{ sql }}|{{ schema }}"
    )
    replies = {
        "Q1": '{"consistent": true, "reason": "matches"}',
        "Q2": '{"consistent": false, "reason": "the SQL  ignores\\nthe year"}',
        "Q3": "consistent: yes",  # no substring parsing: this is a parse error
    }
    with bound(op, lambda r: replies[last(r).split("|")[0]]) as backend:
        out = op.filter(
            batch(
                question=["Q1", "Q2", "Q3"],
                evidence=["E", None, None],
                sql=["SELECT 1"] * 3,
                db_id=["league"] * 3,
            )
        )
    assert last(backend.history[0]) == f"Q1|E|SELECT 1|{SCHEMA_TEXT}"
    assert backend.history[0].json_schema["required"] == ["consistent", "reason"]
    assert isinstance(out, Partial) and isinstance(out.result, Verdict)
    assert list(out.result.keep) == [True, False, True]
    assert out.result.reason.to_pylist() == [None, "question does not match sql", None]
    assert out.result.detail.to_pylist() == [None, "the SQL ignores the year", None]
    assert out.failed == [None, None, "llm invalid_output"]  # the engine checks answers against the schema
    assert out.raw == [None, None, "consistent: yes"]


# --- text2sql_cot_generator -------------------------------------------------------------------------


def test_cot_traces_are_a_json_array_of_usable_traces(root):
    op = make(
        Text2sqlCotGenerator, root, k=3, template="{{ question }}{% if show_sql %}|{{ sql }}{% endif %}"
    )
    replies = [sql_block("SELECT 1"), "I give up", sql_block("SELECT 2")]
    with bound(op, lambda r: replies[r.sample_index]) as backend:
        out = op.generate(batch(question=["Q"], evidence=[None], sql=["SELECT 1"], db_id=["league"]))
    assert [(last(r), r.sample_index) for r in backend.history] == [
        ("Q|SELECT 1", 0),
        ("Q|SELECT 1", 1),
        ("Q|SELECT 1", 2),
    ]
    assert json.loads(out["cot_traces"][0]) == [replies[0], replies[2]]


def test_cot_rows_without_any_trace_are_rejected(root):
    op = make(Text2sqlCotGenerator, root, k=2, show_sql=False, template="{{ question }}")
    with bound(op, lambda r: "no sql"):
        out = op.generate(batch(question=["Q"], evidence=[None], sql=["SELECT 1"], db_id=["league"]))
    assert out.failed == ["parse error: no SQL in trace"]


# --- sql_execution_difficulty_evaluator -----------------------------------------------------------


def test_execution_difficulty_is_pass_at_k_by_result_equivalence(root):
    op = make(SqlExecutionDifficultyEvaluator, root, k=4, temperature=0.5)
    op_params = op.params
    assert (op_params.easy_at, op_params.medium_at, op_params.hard_at) == (0.8, 0.4, 0.01)
    answers = {
        "p1": [
            sql_block("SELECT name FROM team ORDER BY id DESC"),  # order ignored: gold has none
            sql_block("SELECT name FROM team"),
            sql_block("SELECT id FROM team"),
            "no idea",
        ],
        "p2": [sql_block("SELECT nope")] * 4,
    }
    with bound(op, lambda r: answers[last(r)][r.sample_index]) as backend:
        out = op.evaluate(
            batch(
                prompt=["p1", "p2", "p3"],
                sql=["SELECT name FROM team", "SELECT 1", "SELECT nope"],
                db_id=["league"] * 3,
            )
        )
    assert backend.history[0] == Request(
        ({"role": "user", "content": "p1"},), Sampling(temperature=0.5), None, 0
    )
    assert out.result["exec_passes"] == [2, 0, None]
    assert out.result["exec_samples"] == [4, 4, None]
    assert out.result["exec_pass_rate"] == [0.5, 0.0, None]
    assert out.result["exec_difficulty"] == ["medium", "extra", None]
    assert out.failed == [None, None, "gold sql failed: sql error: no such column"]


def test_difficulty_bands_must_be_ordered():
    with pytest.raises(ValueError, match="easy_at >= medium_at >= hard_at"):
        SqlExecutionDifficultyEvaluator.Params(db_root="x", easy_at=0.3, medium_at=0.5)
