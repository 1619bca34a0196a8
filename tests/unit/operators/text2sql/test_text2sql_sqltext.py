"""Parsing helpers, statement kinds, SQL in model answers, Spider-style difficulty from the AST."""

from __future__ import annotations

import pytest

pytest.importorskip("sqlglot")

from dataflow_operators.text2sql._difficulty import components, difficulty  # noqa: E402
from dataflow_operators.text2sql._sqltext import (  # noqa: E402
    SqlParseError,
    canonical_sql,
    extract_sql,
    parse_one,
    statement_kind,
    writes_anything,
)


@pytest.mark.parametrize(
    "sql, kind",
    [
        ("SELECT 1", "query"),
        ("VALUES (1)", "query"),
        ("SELECT a FROM t UNION SELECT b FROM u", "query"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "query"),
        ("WITH x AS (SELECT 1) DELETE FROM t", "DELETE"),
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("DROP TABLE t", "DROP"),
        ("CREATE TABLE t (a)", "CREATE"),
        ("ATTACH 'x' AS y", "ATTACH"),
        ("PRAGMA query_only = 0", "PRAGMA"),
        ("VACUUM INTO 'x'", "VACUUM"),
    ],
)
def test_statement_kinds(sql, kind):
    assert statement_kind(parse_one(sql)) == kind


def test_one_statement_only():
    with pytest.raises(SqlParseError, match="multiple statements"):
        parse_one("SELECT 1; SELECT 2")
    with pytest.raises(SqlParseError, match="empty"):
        parse_one(" ; ")
    assert statement_kind(parse_one("SELECT 1;")) == "query"


def test_nothing_inside_a_query_writes():
    assert writes_anything(parse_one("SELECT a FROM t WHERE b IN (SELECT b FROM u)")) is None
    assert writes_anything(parse_one("WITH x AS (SELECT 1) DELETE FROM t")) == "DELETE"


@pytest.mark.parametrize(
    "text, sql",
    [
        ("```sql\nSELECT 1;\n```", "SELECT 1"),
        ("First ```sql\nSELECT 1\n``` then better:\n```sql\nSELECT 2\n```", "SELECT 2"),
        ("```\nSELECT 3\n```", "SELECT 3"),
        ("```SQL\nselect 4\n```", "select 4"),
        ("```sql\nSELECT 5", "SELECT 5"),  # an answer cut before the closing fence
        ("Reasoning...\nSQL: SELECT 6", "SELECT 6"),
        ("SELECT 7", "SELECT 7"),
        ("  with x as (select 1) select * from x", "with x as (select 1) select * from x"),
        ("I cannot answer that.", None),
        ("", None),
        (None, None),
        ("```sql\n\n```", None),
    ],
)
def test_sql_is_found_in_answers(text, sql):
    assert extract_sql(text) == sql


def test_canonical_sql_ignores_spelling():
    assert canonical_sql("select  A from T where x=1") == canonical_sql("SELECT a FROM t WHERE x = 1")
    assert canonical_sql("not sql at all (") == "not sql at all ("


# Spider's own examples of each level (Yu et al., 2018, figure of hardness criteria) and more.
@pytest.mark.parametrize(
    "sql, level",
    [
        ("SELECT count(*) FROM cars_data WHERE cylinders > 4", "easy"),
        ("SELECT count(*) FROM singer", "easy"),
        ("SELECT name, country, age FROM singer ORDER BY age DESC", "medium"),
        (
            "SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 "
            "ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id",
            "medium",
        ),
        ("SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)", "hard"),
        (
            "SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 30",
            "hard",
        ),
        (
            "SELECT T2.name, T2.capacity FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
            "WHERE T1.year >= 2014 GROUP BY T2.stadium_id ORDER BY count(*) DESC LIMIT 1",
            "extra",
        ),
        (
            "SELECT avg(life_expectancy) FROM country WHERE name NOT IN (SELECT T1.name FROM country AS T1 "
            "JOIN country_language AS T2 ON T1.code = T2.country_code WHERE T2.language = 'English' AND "
            "T2.is_official = 'T')",
            "hard",
        ),
        (
            "SELECT a FROM t WHERE b > 1 AND c < 2 GROUP BY a HAVING count(*) > 1 ORDER BY a LIMIT 3",
            "extra",
        ),
        ("WITH c AS (SELECT a FROM t) SELECT a FROM c", "hard"),
        ("SELECT a, rank() OVER (ORDER BY b) FROM t", "medium"),
    ],
)
def test_spider_levels(sql, level):
    assert difficulty(sql) == level


def test_keywords_in_strings_and_names_do_not_count():
    plain = components("SELECT name FROM t WHERE name = 'x'")
    assert components("SELECT name FROM t WHERE name = 'a OR b LIKE c UNION SELECT 1'") == plain
    assert components('SELECT "join" FROM t WHERE "join" = \'x\'') == plain
    assert components("SELECT name FROM t WHERE name = 'x' OR name LIKE 'y%'").component1 == 3


def test_counts_are_those_of_the_outermost_query():
    inner = "SELECT b FROM u WHERE c = 1 OR d LIKE 'x' GROUP BY b ORDER BY b LIMIT 1"
    counted = components(f"SELECT a FROM t WHERE a IN ({inner})")
    assert (counted.component1, counted.component2, counted.others) == (1, 1, 0)


def test_unparseable_sql_raises():
    with pytest.raises(SqlParseError):
        components("SELECT FROM WHERE")
