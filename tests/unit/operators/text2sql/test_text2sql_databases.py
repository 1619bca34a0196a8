"""Database folders (flat and Spider/BIRD layouts), schema extraction and rendering, and the
sample databases of the text-to-SQL pipelines (rebuilt from their script and compared)."""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3

import pytest
from dataflow_operators.text2sql._databases import UnknownDatabase, list_databases, resolve_database
from dataflow_operators.text2sql._schema import _CACHE, extract_schema

from dataflow_cli.sandbox.sql import SqlGuard, hash_file
from tests.conftest import REPO

GENERATE_DBS = REPO / "pipelines" / "text2sql_generate" / "databases"
REFINE_DBS = REPO / "pipelines" / "text2sql_refine" / "databases"


def tiny(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE team (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "group" TEXT);
        CREATE TABLE player (
          pid INTEGER, team_id INTEGER REFERENCES team, nick TEXT, score REAL, photo BLOB,
          PRIMARY KEY (pid, team_id)
        );
        CREATE VIEW best AS SELECT nick FROM player WHERE score > 9;
        INSERT INTO team VALUES (1, 'Zoë''s', 'A'), (2, 'Ōta', NULL);
        INSERT INTO player VALUES (1, 1, 'a very long nickname that goes on and on and on', 9.5, x'00'),
                                  (2, 1, NULL, 3.0, NULL), (3, 2, 'c', NULL, NULL);
        """
    )
    conn.commit()
    conn.close()
    return path


def test_both_layouts_are_found(tmp_path):
    tiny(tmp_path / "flat.sqlite")
    tiny(tmp_path / "spider" / "spider.sqlite")
    tiny(tmp_path / "bird" / "bird.db")
    assert resolve_database(tmp_path, "flat") == tmp_path / "flat.sqlite"
    assert resolve_database(tmp_path, "spider") == tmp_path / "spider" / "spider.sqlite"
    assert list(list_databases(tmp_path)) == ["bird", "flat", "spider"]
    for bad, reason in [
        ("nope", "unknown db_id"),
        ("../flat", "invalid db_id"),
        ("a/b", "invalid db_id"),
        (None, "invalid db_id"),
        ("..", "invalid db_id"),
        (".hidden", "invalid db_id"),
    ]:
        with pytest.raises(UnknownDatabase, match=reason):
            resolve_database(tmp_path, bad)


def test_schema_extraction_and_renderings(tmp_path):
    path = tiny(tmp_path / "tiny.sqlite")
    before = hash_file(path)
    schema = extract_schema(path, "tiny", SqlGuard(), sample_values=2)
    assert schema.ddl() == (
        "CREATE TABLE team (\n"
        "  id INTEGER PRIMARY KEY,  -- examples: 1, 2\n"
        "  name TEXT NOT NULL,  -- examples: 'Zoë''s', 'Ōta'\n"
        "  \"group\" TEXT  -- examples: 'A'\n"
        ");  -- 2 rows\n"
        "\n"
        "CREATE TABLE player (\n"
        "  pid INTEGER,  -- examples: 1, 2\n"
        "  team_id INTEGER,  -- examples: 1, 2\n"
        "  nick TEXT,  -- examples: 'a very long nickname that goes on and o…', 'c'\n"
        "  score REAL,  -- examples: 9.5, 3.0\n"
        "  photo BLOB,  -- examples: <blob 1 bytes>\n"
        "  PRIMARY KEY (pid, team_id),\n"
        "  FOREIGN KEY (team_id) REFERENCES team (id)\n"
        ");  -- 3 rows\n"
        "\n"
        "-- view best(nick)"
    )
    assert schema.compact(samples=False) == (
        'team(id INTEGER PK, name TEXT, "group" TEXT) [2 rows]\n'
        "player(pid INTEGER PK, team_id INTEGER PK -> team.id, nick TEXT, score REAL, photo BLOB) [3 rows]\n"
        "view best(nick TEXT)"
    )
    assert "  nick: 'a very long nickname that goes on and o…', 'c'" in schema.compact()
    assert hash_file(path) == before


def test_schemas_are_cached_per_file_identity(tmp_path):
    path = tiny(tmp_path / "tiny.sqlite")
    guard = SqlGuard()
    first = extract_schema(path, "tiny", guard)
    assert extract_schema(path, "tiny", guard) is first
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE extra (x)")
    conn.commit()
    conn.close()
    assert "extra" in extract_schema(path, "tiny", guard).table_names()
    assert sum(1 for key in _CACHE if key[0] == str(path.resolve())) == 2


def test_sample_databases_are_rebuilt_identically(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "build_sample_dbs", REPO / "scripts" / "build_sample_dbs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for db_id in module.BUILDERS:
        rebuilt = module.build(db_id, tmp_path / f"{db_id}.sqlite")
        committed = [GENERATE_DBS / f"{db_id}.sqlite"]
        if (REFINE_DBS / db_id).is_dir():
            committed.append(REFINE_DBS / db_id / f"{db_id}.sqlite")
        dump = list(sqlite3.connect(rebuilt).iterdump())
        for path in committed:
            assert list(sqlite3.connect(f"file:{path}?mode=ro", uri=True).iterdump()) == dump, path


@pytest.mark.parametrize("db_id", ["bookstore", "university", "world"])
def test_sample_databases_are_realistic(db_id):
    path = GENERATE_DBS / f"{db_id}.sqlite"
    schema = extract_schema(path, db_id, SqlGuard(), sample_values=0)
    assert sum(t.row_count for t in schema.tables) >= 200
    assert any(t.foreign_keys for t in schema.tables)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    nulls = non_ascii = 0
    for table in schema.tables:
        for column in table.columns:
            q = f'SELECT count(*) FROM "{table.name}" WHERE "{column.name}" IS NULL'
            nulls += conn.execute(q).fetchone()[0]
            if column.type == "TEXT":
                q = f'SELECT count(*) FROM "{table.name}" WHERE "{column.name}" GLOB \'*[^ -~]*\''
                non_ascii += conn.execute(q).fetchone()[0]
    assert nulls > 0 and non_ascii > 0
    assert not conn.execute("PRAGMA foreign_key_check").fetchall()


def test_spider_layout_copy_in_a_scratch_folder(tmp_path):
    shutil.copytree(REFINE_DBS, tmp_path / "dbs")
    assert list(list_databases(tmp_path / "dbs")) == ["bookstore", "world"]
