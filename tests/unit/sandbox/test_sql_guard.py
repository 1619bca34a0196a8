"""The read-only SQL guard against an attack set: every attack is refused or stopped with a reason,
the database files stay byte-identical and no file appears; benign look-alikes run.

Each database is a copy of the pipelines' sample databases (plus one with awkward names) in a
temporary folder, hashed before and after every test.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from dataflow_cli.sandbox.sql import GRACE, SqlGuard, SqlLimits, _Guarded, hash_file, leading_keyword
from tests.conftest import REPO

SAMPLES = REPO / "pipelines" / "text2sql_generate" / "databases"
TIMEOUT = 0.3
RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
OVERRUN = 0.1  # the goal: no query runs more than 100 ms past its limit


@pytest.fixture
def dbs(tmp_path):
    """A folder of databases; asserts afterwards that nothing in it changed or appeared."""
    folder = tmp_path / "dbs"
    folder.mkdir()
    for path in SAMPLES.glob("*.sqlite"):
        shutil.copyfile(path, folder / path.name)
    quirks = sqlite3.connect(folder / "quirks.sqlite")
    quirks.executescript(
        'CREATE TABLE "select" ("delete" INTEGER, "drop" TEXT, [update] REAL);'
        "INSERT INTO \"select\" VALUES (1, 'DROP TABLE books;', 1.5), (2, NULL, NULL);"
        "CREATE TABLE bad (t TEXT); INSERT INTO bad VALUES (CAST(x'61ff62' AS TEXT));"
    )
    quirks.commit()
    quirks.close()
    before = {p.name: hash_file(p) for p in folder.iterdir()}
    yield folder
    after = {p.name: hash_file(p) for p in folder.iterdir()}
    assert after == before, "a database file changed or a file appeared"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbs"], "a file appeared beside the databases"


@pytest.fixture(params=["thread", "process"])
def guard(request):
    g = SqlGuard(SqlLimits(timeout=TIMEOUT), isolation=request.param)
    yield g
    g.close()


ATTACKS = [
    # writes and DDL, refused by name or by the authorizer
    ("DELETE FROM books", "sql not read-only: DELETE"),
    ("UPDATE books SET price = 0", "sql not read-only: UPDATE"),
    ("INSERT INTO authors (name) VALUES ('x')", "sql not read-only: INSERT"),
    ("REPLACE INTO authors VALUES (1, 'x', NULL, NULL)", "sql not read-only: REPLACE"),
    ("DROP TABLE books", "sql not read-only: DROP"),
    ("CREATE TABLE evil (a)", "sql not read-only: CREATE"),
    ("CREATE TEMP TABLE evil (a)", "sql not read-only: CREATE"),
    ("CREATE INDEX i ON books (title)", "sql not read-only: CREATE"),
    ("CREATE TRIGGER t AFTER INSERT ON books BEGIN DELETE FROM books; END", "sql not read-only: CREATE"),
    ("ALTER TABLE books RENAME TO b2", "sql not read-only: ALTER"),
    ("  /* a comment */ delete from books", "sql not read-only: DELETE"),
    ("-- a comment\nDROP TABLE books", "sql not read-only: DROP"),
    ("WITH x AS (SELECT 1) DELETE FROM books", "sql not read-only: DELETE"),
    ("WITH x AS (SELECT 1) UPDATE books SET price = 0", "sql not read-only: UPDATE"),
    ("WITH x AS (SELECT 'x') INSERT INTO authors (name) SELECT * FROM x", "sql not read-only: INSERT"),
    ("BEGIN", "sql not read-only: BEGIN"),
    ("SAVEPOINT s", "sql not read-only: SAVEPOINT"),
    ("ANALYZE", "sql not read-only: ANALYZE"),
    ("REINDEX", "sql not read-only: REINDEX"),
    ("EXPLAIN DELETE FROM books", "sql not read-only: EXPLAIN"),
    # files created next to the database
    ("ATTACH DATABASE '{dir}/evil.db' AS evil", "sql not read-only: ATTACH"),
    ("attach '{dir}/evil.db' as evil", "sql not read-only: ATTACH"),
    ("DETACH DATABASE main", "sql not read-only: DETACH"),
    ("VACUUM INTO '{dir}/copy.db'", "sql not read-only: VACUUM"),
    ("VACUUM", "sql not read-only: VACUUM"),
    # PRAGMA games
    ("PRAGMA query_only = 0", "sql not read-only: PRAGMA"),
    ("PRAGMA writable_schema = 1", "sql not read-only: PRAGMA"),
    ("PRAGMA journal_mode = WAL", "sql not read-only: PRAGMA"),
    ("PRAGMA user_version = 7", "sql not read-only: PRAGMA"),
    ("SELECT * FROM pragma_database_list", "sql not read-only"),
    ("SELECT * FROM pragma_query_only", "sql not read-only"),
    # native code
    ("SELECT load_extension('{dir}/evil.so')", "sql not read-only: load_extension()"),
    ("SELECT load_extension('libc.so.6', 'system')", "sql not read-only: load_extension()"),
    ("SELECT fts3_tokenizer('simple')", "sql not read-only: fts3_tokenizer()"),
    ("SELECT writefile('{dir}/x', 'y')", "sql error: no such function"),
    # several statements
    ("SELECT 1; DROP TABLE books", "sql multiple statements"),
    ("SELECT 1; ATTACH '{dir}/e.db' AS e", "sql multiple statements"),
    ("SELECT 1;;SELECT 2", "sql multiple statements"),
    ("SELECT 1\x00; DROP TABLE books", "sql error: null character"),
    # runaway queries
    (RUNAWAY, "sql timeout"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x FROM c) SELECT max(x) FROM c", "sql timeout"),
    ("SELECT count(*) FROM books a, books b, books c, books d, books e", "sql timeout"),
    (
        "SELECT count(*) FROM order_items a, order_items b, order_items c WHERE a.quantity < b.quantity",
        "sql timeout",
    ),
    ("SELECT a.title FROM books a, books b, books c ORDER BY random() LIMIT 1", "sql timeout"),
    # results too large
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", "sql too many rows"),
    # narrow rows, so the row cap (not the 0.3 s limit) is reached first even on a busy machine
    ("SELECT a.book_id, b.book_id FROM books a, books b", "sql too many rows"),
    ("SELECT randomblob(2000000)", "sql error: value too big"),
    ("SELECT zeroblob(1000000000)", "sql error: value too big"),
]

# One step of SQLite's virtual machine that outlasts any limit: only a killed worker stops it.
SINGLE_STEP_BOMBS = [
    ("SELECT printf('%.*c', 1000000000, 'x')", "sql timeout"),
    ("SELECT instr(printf('%.*c', 900000, 'a'), printf('%.*c', 450000, 'a') || 'b')", "sql timeout"),
    ("SELECT replace(printf('%.*c', 900000, 'a'), printf('%.*c', 400000, 'a') || 'b', 'c')", "sql timeout"),
    ("SELECT printf('%.*c', 900000, 'a') LIKE '%' || printf('%.*c', 40000, 'a') || 'b'", "sql timeout"),
]

BENIGN = [
    ("SELECT 'DROP TABLE books' AS s FROM books LIMIT 1", [("DROP TABLE books",)]),
    ("SELECT count(*) FROM books WHERE title = 'DELETE FROM authors; ATTACH x'", [(0,)]),
    ('SELECT 1 AS "delete", 2 AS "drop", 3 AS [update]', [(1, 2, 3)]),
    (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT sum(x) FROM c",
        [(500500,)],
    ),
    ("SELECT count(*) FROM books a, books b", [(25600,)]),
    (
        "SELECT name FROM pragma_table_info('publishers') ORDER BY cid",
        [("publisher_id",), ("name",), ("city",), ("founded",)],
    ),
    ("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [(6,)]),
    ("SELECT value FROM json_each('[1, 2, 3]')", [(1,), (2,), (3,)]),
    ("SELECT json_extract('{\"a\": 1}', '$.a')", [(1,)]),
    ("SELECT 1;", [(1,)]),
    ("SELECT 1; -- done", [(1,)]),
    ("-- explain\nSELECT 1", [(1,)]),
    ("/* VACUUM INTO 'x' */ SELECT 2", [(2,)]),
    ("VALUES (1), (2)", [(1,), (2,)]),
    ("WITH x AS (SELECT 'ATTACH' AS a) SELECT a FROM x", [("ATTACH",)]),
    ("SELECT printf('%.2f', 3.14159)", [("3.14",)]),
    ("select count(*) from BOOKS where GENRE = 'poetry'", [(13,)]),
]


def run(guard, dbs, sql, db="bookstore"):
    started = time.monotonic()
    result = guard.execute(dbs / f"{db}.sqlite", sql.replace("{dir}", str(dbs)))
    return result, time.monotonic() - started


@pytest.mark.parametrize("sql, reason", ATTACKS, ids=[a[0][:50] for a in ATTACKS])
def test_every_attack_is_refused_or_stopped_with_its_reason(guard, dbs, sql, reason):
    result, seconds = run(guard, dbs, sql)
    assert not result.ok
    assert result.error.startswith(reason), (result.error, result.detail)
    assert result.rows == []
    # Stopped by the guard, never by waiting it out (the overrun itself is measured below,
    # one query at a time; here a worker may also be restarting after a kill).
    assert seconds < TIMEOUT + 1.0


@pytest.mark.parametrize("sql, reason", SINGLE_STEP_BOMBS, ids=[a[0][:50] for a in SINGLE_STEP_BOMBS])
def test_one_endless_step_is_stopped_by_killing_the_worker(dbs, sql, reason):
    guard = SqlGuard(SqlLimits(timeout=TIMEOUT), isolation="process")
    guard.execute(dbs / "bookstore.sqlite", "SELECT 1")  # the worker is up: time the query only
    result, seconds = run(guard, dbs, sql)
    assert result.error == reason and "killed" in result.detail
    assert TIMEOUT <= seconds < TIMEOUT + OVERRUN
    # A new worker answers the next query.
    assert guard.execute(dbs / "bookstore.sqlite", "SELECT count(*) FROM books").rows == [(160,)]
    guard.close()


@pytest.mark.parametrize("sql, rows", BENIGN, ids=[b[0][:50] for b in BENIGN])
def test_benign_look_alikes_run(guard, dbs, sql, rows):
    result, _ = run(guard, dbs, sql)
    assert result.ok, (result.error, result.detail)
    assert result.rows == rows


def test_names_that_are_keywords_are_only_names(guard, dbs):
    result = guard.execute(
        dbs / "quirks.sqlite", 'SELECT "delete", "drop", [update] FROM "select" ORDER BY 1'
    )
    assert result.ok and result.rows == [(1, "DROP TABLE books;", 1.5), (2, None, None)]
    assert result.columns == ("delete", "drop", "update")


def test_the_authorizer_alone_denies_what_the_keyword_check_would(dbs):
    """Below the first-keyword check: the connection itself refuses, and no file appears."""
    guarded = _Guarded(dbs / "bookstore.sqlite", SqlLimits())
    try:
        for sql, denied in [
            (f"ATTACH DATABASE '{dbs}/evil.db' AS evil", "ATTACH"),
            (f"VACUUM INTO '{dbs}/copy.db'", "ATTACH"),  # VACUUM INTO attaches its target first
            ("PRAGMA query_only = 0", "PRAGMA query_only"),
            ("PRAGMA writable_schema = 1", "PRAGMA writable_schema"),
            ("DELETE FROM books", "DELETE"),
            ("CREATE TEMP TABLE t (a)", "INSERT"),  # into sqlite_temp_master, first
            ("BEGIN", "TRANSACTION"),
            ("SELECT load_extension('x')", "load_extension()"),
        ]:
            result = guarded.run(sql)
            assert result.error == f"sql not read-only: {denied}", (sql, result)
        assert guarded.run("SELECT count(*) FROM books").rows == [(160,)]  # reads still work
    finally:
        guarded.conn.close()


@pytest.mark.parametrize("isolation", ["thread", "process"])
@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        "SELECT count(*) FROM books a, books b, books c, books d, books e",
    ],
)
def test_a_runaway_query_stops_within_100_ms_of_the_limit(dbs, isolation, sql):
    guard = SqlGuard(SqlLimits(timeout=0.3), isolation=isolation)
    guard.execute(dbs / "world.sqlite", "SELECT 1")
    started = time.monotonic()
    result = guard.execute(dbs / "bookstore.sqlite", sql)
    elapsed = time.monotonic() - started
    assert result.error == "sql timeout"
    assert 0.3 <= elapsed < 0.3 + OVERRUN
    assert "stopped after" in result.detail  # the progress handler did it, not a kill
    guard.close()


def test_the_time_limit_runs_on_the_thread_that_runs_the_query(dbs):
    guard = SqlGuard(SqlLimits(timeout=0.3), isolation="thread")
    results = {}

    def work(name):
        results[name] = guard.execute(dbs / "bookstore.sqlite", RUNAWAY)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 0.3 + OVERRUN
    assert [r.error for r in results.values()] == ["sql timeout", "sql timeout"]


def test_memory_is_capped_in_a_worker(dbs):
    guard = SqlGuard(SqlLimits(timeout=5, max_memory_mb=256), isolation="process")
    result = guard.execute(
        dbs / "bookstore.sqlite", "SELECT randomblob(900000) FROM books a, books b ORDER BY 1"
    )
    assert result.error in ("sql error: out of memory", "sql timeout"), result
    assert guard.execute(dbs / "bookstore.sqlite", "SELECT 1").rows == [(1,)]
    guard.close()


def test_the_worker_gets_no_secret_of_its_parent(dbs, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    guard = SqlGuard(isolation="process")
    assert guard.execute(dbs / "world.sqlite", "SELECT 1").ok
    worker = guard._runner._local.worker
    environ = Path(f"/proc/{worker.process.pid}/environ").read_bytes()
    assert b"sk-secret" not in environ and b"OPENAI_API_KEY" not in environ
    guard.close()


def test_rows_are_capped_not_truncated(dbs):
    guard = SqlGuard(SqlLimits(max_rows=100))
    assert guard.execute(dbs / "bookstore.sqlite", "SELECT * FROM books LIMIT 100").row_count == 100
    result = guard.execute(dbs / "bookstore.sqlite", "SELECT * FROM books LIMIT 101")
    assert result.error == "sql too many rows" and result.rows == []


def test_results_keep_their_types_and_order(guard, dbs):
    result = guard.execute(
        dbs / "bookstore.sqlite", "SELECT 1, 1.5, 'x', x'00ff', NULL UNION ALL SELECT 2, 600.0, '', x'', NULL"
    )
    assert result.rows == [(1, 1.5, "x", b"\x00\xff", None), (2, 600.0, "", b"", None)]
    assert [type(v) for v in result.rows[1]] == [int, float, str, bytes, type(None)]
    assert result.column_count == 5


def test_text_that_is_not_utf8_is_decoded_with_replacement(guard, dbs):
    result = guard.execute(dbs / "quirks.sqlite", "SELECT t FROM bad")
    assert result.rows == [("a\ufffdb",)]


def test_the_fingerprint_ignores_row_order_and_int_float_spelling_but_not_types(dbs):
    guard = SqlGuard()
    path = dbs / "bookstore.sqlite"

    def fp(sql):
        return guard.execute(path, sql).fingerprint

    assert fp("SELECT genre FROM books ORDER BY genre") == fp("SELECT genre FROM books ORDER BY genre DESC")
    assert fp("SELECT 600") == fp("SELECT 600.0")
    assert fp("SELECT 1") != fp("SELECT '1'")
    assert fp("SELECT genre FROM books") != fp("SELECT DISTINCT genre FROM books")
    assert fp("SELECT 1, 2") != fp("SELECT 2, 1")
    assert fp("SELECT nope") is None


def test_an_edited_database_is_reopened(tmp_path):
    path = tmp_path / "x.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (a)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    guard = SqlGuard()
    assert guard.execute(path, "SELECT count(*) FROM t").rows == [(1,)]
    conn.execute("INSERT INTO t VALUES (2)")
    conn.commit()
    conn.close()
    assert guard.execute(path, "SELECT count(*) FROM t").rows == [(2,)]


def test_an_unreadable_or_missing_database_is_a_reason(tmp_path, guard):
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    assert guard.execute(tmp_path / "junk.sqlite", "SELECT 1").error == "sql database unreadable"
    assert guard.execute(tmp_path / "missing.sqlite", "SELECT 1").error == "sql database unreadable"
    assert not (tmp_path / "missing.sqlite").exists()


def test_reasons_keep_the_kind_of_error_and_details_the_message(guard, dbs):
    result, _ = run(guard, dbs, "SELECT nope FROM books")
    assert (result.error, result.detail) == ("sql error: no such column", "no such column: nope")
    assert result.reason == "sql error: no such column: no such column: nope"
    result, _ = run(guard, dbs, "SELECT * FROM nope")
    assert result.error == "sql error: no such table"
    result, _ = run(guard, dbs, "SELEC 1")
    assert result.error == "sql error: syntax error"
    result, _ = run(guard, dbs, "   ")
    assert result.error == "sql empty"


def test_explain_compiles_without_running(dbs):
    guard = SqlGuard(SqlLimits(timeout=0.3))
    started = time.monotonic()
    assert guard.explain(dbs / "bookstore.sqlite", RUNAWAY).ok  # would run forever
    assert time.monotonic() - started < 0.3
    assert (
        guard.explain(dbs / "bookstore.sqlite", "SELECT nope FROM books").error == "sql error: no such column"
    )


def test_leading_keyword():
    assert leading_keyword("  -- x\n /* y */ select 1") == "SELECT"
    assert leading_keyword("(SELECT 1)") is None
    assert leading_keyword("/* unterminated") is None


def test_grace_keeps_kills_within_the_overrun_goal():
    assert GRACE < OVERRUN / 2


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_wal_database_is_read_without_creating_files_beside_it(tmp_path, isolation):
    path = tmp_path / "wal.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (a)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()  # a clean close checkpoints and removes -wal and -shm
    before = hash_file(path)
    guard = SqlGuard(isolation=isolation)
    assert guard.execute(path, "SELECT a FROM t").rows == [(1,)]
    guard.close()
    assert [p.name for p in tmp_path.iterdir()] == ["wal.sqlite"]
    assert hash_file(path) == before
