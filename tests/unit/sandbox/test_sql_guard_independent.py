"""An independent attack corpus for the read-only SQL guard, written from the issue's threat
model (not from the guard's own tests): every hostile query is refused or stopped with a reason
within the time limit plus 100 ms, memory stays bounded, the database files stay byte-identical
and nothing appears beside them; benign look-alikes run.

Each query runs against copies of the sample databases (one of them switched to WAL mode, the
layout where a careless read-only open creates `-wal`/`-shm` files), under both isolations, except
that thread isolation is not asked to stop a single SQLite step that runs past the limit (the
guard documents that only a worker process can be killed mid-step): SINGLE_STEP lists those.
"""

from __future__ import annotations

import resource
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from dataflow_cli.sandbox.sql import SqlGuard, SqlLimits, hash_file

SAMPLES = Path(__file__).resolve().parents[3] / "pipelines" / "text2sql_generate" / "databases"
TIMEOUT = 0.5
SLACK = 0.1  # the bound: stopped within the limit + 100 ms
# One call of printf that builds 2e9 characters is one virtual-machine step of ~15 s.
SINGLE_STEP = frozenset({"printf_2e9"})


def _attacks(out: Path) -> list[tuple[str, str]]:
    """(name, sql). `out` is a folder a successful attack would write into."""
    target = out / "stolen.db"
    cross10 = "SELECT count(*) FROM " + ", ".join(f"books b{i}" for i in range(10))
    return [
        ("cte_insert", "WITH x AS (SELECT 1) INSERT INTO authors(name) SELECT 'x' FROM x"),
        ("cte_delete", "WITH x AS (SELECT 1) DELETE FROM authors WHERE author_id IN (SELECT * FROM x)"),
        ("cte_update", "WITH x AS (SELECT 1) UPDATE authors SET name = 'x'"),
        ("cte_replace", "WITH x AS (SELECT 1) REPLACE INTO authors(author_id, name) SELECT 1, 'x' FROM x"),
        ("replace_into", "REPLACE INTO authors(author_id, name) VALUES (1, 'x')"),
        ("insert_or_replace", "INSERT OR REPLACE INTO authors(author_id, name) VALUES (1, 'x')"),
        (
            "upsert",
            "INSERT INTO authors(author_id, name) VALUES (1, 'x') ON CONFLICT(author_id) DO UPDATE SET name = 'y'",
        ),
        ("trigger", "CREATE TRIGGER t AFTER INSERT ON authors BEGIN DELETE FROM books; END"),
        ("temp_trigger", "CREATE TEMP TRIGGER t AFTER INSERT ON authors BEGIN DELETE FROM books; END"),
        ("temp_table", "CREATE TEMP TABLE t AS SELECT * FROM authors"),
        ("temp_view", "CREATE TEMP VIEW v AS SELECT 1"),
        ("virtual_table", "CREATE VIRTUAL TABLE temp.v USING fts5(a)"),
        ("drop_table", "DROP TABLE authors"),
        ("writable_schema", "PRAGMA writable_schema = ON"),
        ("journal_mode_wal", "PRAGMA journal_mode = WAL"),
        ("wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)"),
        ("query_only_off", "PRAGMA query_only = 0"),
        ("pragma_function_journal", "SELECT * FROM pragma_journal_mode('wal')"),
        ("pragma_function_query_only", "SELECT * FROM pragma_query_only(0)"),
        ("vacuum", "VACUUM"),
        ("vacuum_into", f"VACUUM INTO '{target}'"),
        ("attach_rwc", f"ATTACH 'file:{target}?mode=rwc' AS x"),
        ("attach_memory", "ATTACH DATABASE ':memory:' AS m"),
        ("detach", "DETACH DATABASE main"),
        ("load_extension", "SELECT load_extension('/tmp/evil.so')"),
        ("readfile", "SELECT readfile('/etc/passwd')"),
        ("writefile", f"SELECT writefile('{out / 'w.txt'}', 'data')"),
        ("fts3_tokenizer", "SELECT fts3_tokenizer('simple')"),
        ("dbpage_update", "UPDATE sqlite_dbpage SET data = zeroblob(4096) WHERE pgno = 1"),
        (
            "dbpage_cte_insert",
            "WITH x AS (SELECT 1) INSERT INTO sqlite_dbpage(pgno, data) SELECT 1, zeroblob(4096) FROM x",
        ),
        ("comment_second", "SELECT 1; -- \n DROP TABLE authors"),
        ("second_statement", "SELECT 1; DROP TABLE authors"),
        ("comment_semicolon", "SELECT 1 /* ; */ ; DELETE FROM authors"),
        ("string_concat", "SELECT 'x' || 'y'; DROP TABLE authors; --'"),
        ("values_then_delete", "VALUES (1); DELETE FROM authors"),
        ("comment_prefix", "/* SELECT */ DELETE FROM authors"),
        ("line_comment_prefix", "-- SELECT\nDELETE FROM authors"),
        ("explain_delete", "EXPLAIN DELETE FROM authors"),
        ("begin", "BEGIN IMMEDIATE"),
        ("savepoint", "SAVEPOINT s"),
        ("analyze", "ANALYZE"),
        ("reindex", "REINDEX"),
        ("randomblob_2e9", "SELECT randomblob(2e9)"),
        ("zeroblob_1e9", "SELECT length(zeroblob(1e9))"),
        (
            "recursive_unbounded",
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c",
        ),
        (
            "recursive_unbounded_rows",
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT n FROM c",
        ),
        (
            "doubling_string",
            "WITH RECURSIVE c(n, s) AS (SELECT 1, 'x' UNION ALL SELECT n + 1, s || s FROM c WHERE n < 60) SELECT length(s) FROM c",
        ),
        ("cross_join_10", cross10),
        ("sorted_cross_join", "SELECT * FROM books a, books b, books c ORDER BY random()"),
        ("printf_2e9", "SELECT printf('%.*c', 2e9, 'x')"),
        ("replace_hex_zeroblob", "SELECT length(replace(hex(zeroblob(1e8)), '0', 'xx'))"),
        ("group_concat_huge", "SELECT length(group_concat(hex(randomblob(1000)))) FROM books a, books b"),
        ("wide_rows", "SELECT zeroblob(900000) FROM books a, books b"),
        ("wide_text_rows", "SELECT printf('%.*c', 900000, 'x') FROM books a, books b"),
        ("nested_parens", "SELECT " + "(" * 5000 + "1" + ")" * 5000),
        ("nested_plus", "SELECT 1" + " + 1" * 20000),
        ("nested_subqueries", "SELECT " + "(SELECT " * 2000 + "1" + ")" * 2000),
        ("one_megabyte", "SELECT 1 -- " + "x" * 1_000_000),
        ("one_megabyte_in_list", "SELECT 1 WHERE 1 IN (" + ",".join(["1"] * 300_000) + ")"),
        ("nul_byte", "SELECT 1\x00; DROP TABLE authors"),
        ("fullwidth_select", "ＳＥＬＥＣＴ 1; DROP TABLE authors"),
        ("homoglyph_drop", "DRΟP TABLE authors"),  # Greek capital omicron
        ("homoglyph_select_delete", "SΕLECT 1; DELETE FROM authors"),  # Greek capital epsilon
        ("lowercase_delete", "delete from authors"),
        ("mixedcase_drop", "dRoP tAbLe authors"),
        ("mixedcase_pragma", "pRaGmA query_only = off"),
        ("lowercase_attach", f"attach '{target}' as x"),
        ("lowercase_vacuum_into", f"vacuum into '{target}'"),
        ("select_then_attach", f"SELECT * FROM authors; ATTACH '{target}' AS x"),
    ]


BENIGN: list[tuple[str, str, list[tuple]]] = [
    ("string_drop", "SELECT 'DROP TABLE authors' AS s", [("DROP TABLE authors",)]),
    ("string_attach_vacuum", "SELECT 'ATTACH x; VACUUM INTO y' AS s", [("ATTACH x; VACUUM INTO y",)]),
    ("column_named_delete", 'SELECT "delete" FROM (SELECT 1 AS "delete")', [(1,)]),
    ("alias_delete", 'SELECT count(*) AS "delete" FROM authors', [(45,)]),
    ("cte_named_insert", 'WITH "insert" AS (SELECT 2 AS x) SELECT x FROM "insert"', [(2,)]),
    (
        "recursive_terminates",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100) SELECT sum(n) FROM c",
        [(5050,)],
    ),
    (
        "recursive_limit",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT max(n) FROM (SELECT n FROM c LIMIT 1000)",
        [(1000,)],
    ),
    ("comment_drop", "-- DROP TABLE authors\nSELECT count(*) FROM authors", [(45,)]),
    ("block_comment_delete", "/* DELETE FROM authors; */ SELECT count(*) FROM authors", [(45,)]),
    ("trailing_semicolons", "SELECT count(*) FROM authors;;  \n", [(45,)]),
    ("lowercase", "select count(*) from authors", [(45,)]),
    ("trailing_comment", "SELECT count(*) FROM authors; -- done", [(45,)]),
    ("mixed_case", "SeLeCt CoUnT(*) FrOm AuThOrS", [(45,)]),
    ("leading_whitespace", "  \n\t VALUES (1), (2)", [(1,), (2,)]),
    ("table_info", "SELECT count(*) FROM pragma_table_info('authors')", [(4,)]),
    ("sqlite_master", "SELECT count(*) FROM sqlite_master WHERE type = 'table'", [(6,)]),
    ("replace_function", "SELECT replace('drop table', 'drop', 'keep')", [("keep table",)]),
    ("small_zeroblob", "SELECT length(zeroblob(1000)), length(hex(randomblob(16)))", [(1000, 32)]),
    ("join_25600", "SELECT count(*) FROM books a, books b", [(25600,)]),
    ("json_each", "SELECT sum(value) FROM json_each('[1,2,3]')", [(6,)]),
    ("update_word_in_string", "SELECT upper('update') AS \"update\"", [("UPDATE",)]),
    ("pragma_in_string", "SELECT count(*) FROM authors WHERE name <> 'PRAGMA query_only=0'", [(45,)]),
    ("printf_small", "SELECT printf('%5d|%.3c', 42, 'x')", [("   42|xxx",)]),
    ("unicode", "SELECT name FROM publishers WHERE publisher_id = 2", [("Éditions du Nord",)]),
]


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dbs")
    for source in SAMPLES.glob("*.sqlite"):
        shutil.copy(source, folder / source.name)
    wal = folder / "bookstore_wal.sqlite"
    shutil.copy(folder / "bookstore.sqlite", wal)
    with sqlite3.connect(wal) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    sqlite3.connect(wal).close()  # the last close checkpoints and removes -wal/-shm
    assert sorted(p.name for p in folder.iterdir()) == [
        "bookstore.sqlite",
        "bookstore_wal.sqlite",
        "university.sqlite",
        "world.sqlite",
    ]
    return folder


@pytest.fixture(scope="module")
def guards():
    made = {
        i: SqlGuard(SqlLimits(timeout=TIMEOUT, max_memory_mb=1024), isolation=i)
        for i in ("process", "thread")
    }
    yield made
    for g in made.values():
        g.close()


def _state(folder: Path) -> dict[str, str]:
    return {p.name: hash_file(p) for p in sorted(folder.iterdir())}


_ATTACK_NAMES = [name for name, _ in _attacks(Path("/nonexistent"))]
_CASES = [
    (isolation, name)
    for isolation in ("process", "thread")
    for name in _ATTACK_NAMES
    if not (isolation == "thread" and name in SINGLE_STEP)
]


def test_corpus_size():
    assert len(_ATTACK_NAMES) >= 40 and len(set(_ATTACK_NAMES)) == len(_ATTACK_NAMES)
    assert len(BENIGN) >= 15


@pytest.mark.parametrize("db", ["bookstore.sqlite", "bookstore_wal.sqlite"])
@pytest.mark.parametrize(("isolation", "name"), _CASES)
def test_attack_is_refused_or_stopped(guards, databases, tmp_path, isolation, name, db):
    guard = guards[isolation]
    sql = dict(_attacks(tmp_path))[name]
    before = _state(databases)
    assert guard.execute(databases / db, "SELECT 1").rows == [(1,)]  # warm: a worker is running
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    result = guard.execute(databases / db, sql)
    elapsed = time.monotonic() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert not result.ok, f"{name} ran: {result.rows[:3]}"
    assert result.error and result.reason, name
    assert elapsed <= TIMEOUT + SLACK, f"{name}: {elapsed:.3f} s ({result.reason})"
    assert (rss_after - rss_before) * 1024 < 400 * 2**20, (
        f"{name}: memory grew by {rss_after - rss_before} KiB"
    )
    assert _state(databases) == before
    assert list(tmp_path.iterdir()) == []
    # The guard still answers afterwards (a killed worker is replaced).
    assert guard.execute(databases / db, "SELECT count(*) FROM authors").rows == [(45,)]


@pytest.mark.parametrize("isolation", ["process", "thread"])
@pytest.mark.parametrize(("name", "sql", "expected"), BENIGN, ids=[b[0] for b in BENIGN])
def test_benign_look_alike_runs(guards, databases, isolation, name, sql, expected):
    guard = guards[isolation]
    before = _state(databases)
    for db in ("bookstore.sqlite", "bookstore_wal.sqlite"):
        result = guard.execute(databases / db, sql)
        assert result.ok, f"{name}: {result.reason}"
        assert result.rows == expected
    assert _state(databases) == before
