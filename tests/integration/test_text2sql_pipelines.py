"""Both text-to-SQL pipelines end to end: on a scripted fake backend (rows make it through every
stage, the guard's limits reach the run stats, the databases stay byte-identical) and on the
embedded local model (the tiny model writes poor SQL: only the shape is checked, every row
accounted for)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dataflow_cli.sandbox.sql import hash_file
from tests.conftest import REPO, read_jsonl

pytest.importorskip("sqlglot")

SQL = "SELECT name, type FROM sqlite_master WHERE type = 'table'"  # runs on every database
# Answers keyed on each stage's default prompt, so every stage gets an answer it can use.
REPLIES = (
    "{% if 'You write SQL queries' in prompt %}```sql\n" + SQL + "\n```"
    "{% elif 'You extend a text-to-SQL dataset' in prompt %}"
    '{"sql": "' + SQL + '", "question": "Which tables are there?", "evidence": ""}'
    "{% elif 'You write the natural-language question' in prompt %}"
    '{"question": "Which tables does the database have?", "evidence": "Tables are listed in sqlite_master."}'
    '{% elif \'Which question best\' in prompt %}{"best": 1, "reason": "clear"}'
    '{% elif \'You check examples\' in prompt %}{"consistent": true, "reason": "it matches"}'
    "{% else %}The tables are listed in sqlite_master.\n```sql\n" + SQL + "\n```{% endif %}"
)


def copy_pipeline(tmp_path: Path, name: str, backend: dict | None = None) -> Path:
    target = tmp_path / name
    shutil.copytree(REPO / "pipelines" / name, target, ignore=shutil.ignore_patterns("out", ".dataflow"))
    spec = target / "pipeline.yaml"
    if backend is not None:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
        data["backends"]["default"] = backend
        spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return spec


def database_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hash_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def accounted(stats: dict) -> bool:
    return (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )


@pytest.mark.slow
def test_text2sql_generate_on_a_scripted_backend(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = copy_pipeline(tmp_path, "text2sql_generate", {"provider": "fake", "reply_template": REPLIES})
    databases = spec.parent / "databases"
    before = database_hashes(databases)
    stats = cli.json(
        "run", spec, "--set", "stages.questions.params.select=vote", "--set", "stages.write_sql.params.n=2"
    )
    assert accounted(stats)
    assert stats["rows_read"] == 3 and stats["rows_written"] == 6
    rows = read_jsonl(spec.parent / "out" / "text2sql.jsonl")
    row = rows[0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][0]["content"].startswith(
        "Database `bookstore` (SQLite):\n\nCREATE TABLE authors ("
    )
    assert row["messages"][1]["content"].endswith("```sql\n" + SQL + "\n```")
    assert (row["difficulty"], row["exec_difficulty"], row["exec_pass_rate"]) == (
        "medium",
        "easy",
        1.0,
    )  # two columns: medium
    assert row["evidence"] == "Tables are listed in sqlite_master."
    stages = {s["name"]: s for s in stats["stages"]}
    assert stages["execute"]["limits"]["sql_guard"]["timeout"] == 5
    assert stages["execute"]["limits"]["sql_guard"]["max_rows"] == 10000
    assert stages["component_difficulty"]["limits"] is None
    assert database_hashes(databases) == before


@pytest.mark.slow
def test_text2sql_refine_on_a_scripted_backend(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = copy_pipeline(tmp_path, "text2sql_refine", {"provider": "fake", "reply_template": REPLIES})
    before = database_hashes(spec.parent / "databases")
    stats = cli.json("run", spec, "--set", "stages.vary.params.n=2")
    assert accounted(stats)
    assert stats["rows_read"] == 8 and stats["rows_written"] == 16
    rows = read_jsonl(spec.parent / "out" / "text2sql_refined.jsonl")
    assert {r["variation_type"] for r in rows} == {"values", "structure"}
    assert all(r["cot_sql"] == SQL and r["prompt"].startswith(f"Database `{r['db_id']}`") for r in rows)
    # what the execution filter measured travels with each kept row
    assert all(r["result_rows"] >= 3 and len(r["result_fingerprint"]) == 16 for r in rows)
    assert database_hashes(spec.parent / "databases") == before


# Small answers and small prompts: the tiny model is slow on 2 cores and its SQL is poor anyway.
LEAN = {
    "text2sql_generate": {
        "write_sql": {"n": 2, "max_tokens": 60, "schema_format": "compact", "sample_values": 1},
        "questions": {"candidates": 2, "max_tokens": 48, "schema_format": "compact", "sample_values": 0},
        "consistency": {"max_tokens": 40, "schema_format": "compact", "sample_values": 0},
        "reason": {"k": 2, "max_tokens": 80, "schema_format": "compact", "sample_values": 0},
        "prompts": {"schema_format": "compact", "sample_values": 0},
        "execution_difficulty": {"k": 2, "max_tokens": 80},
    },
    "text2sql_refine": {
        "vary": {"n": 2, "max_tokens": 80, "schema_format": "compact", "sample_values": 0},
        "consistency": {"max_tokens": 40, "schema_format": "compact", "sample_values": 0},
        "reason": {"k": 2, "max_tokens": 80, "schema_format": "compact", "sample_values": 0},
    },
}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(LEAN))
def test_text2sql_pipelines_on_the_embedded_model(cli, tmp_path, monkeypatch, name):
    pytest.importorskip("llama_cpp", reason="installed by `make test`")
    monkeypatch.chdir(tmp_path)
    spec = copy_pipeline(tmp_path, name)
    before = database_hashes(spec.parent / "databases")
    args = ["run", spec, "--limit", "1"]
    for stage, params in LEAN[name].items():
        for key, value in params.items():
            args += ["--set", f"stages.{stage}.params.{key}={value}"]
    stats = cli.json(*args)
    assert stats["rows_read"] == 1
    assert accounted(stats)
    out = spec.parent / "out"
    rejected = [row for path in sorted(out.rglob("*.rejects.jsonl")) for row in read_jsonl(path)]
    assert len(rejected) == stats["rows_rejected"]
    assert all(row["_stage"] and row["_reason"] for row in rejected)
    kept = [row for path in sorted(out.glob("*.jsonl")) for row in read_jsonl(path)]
    assert len(kept) == stats["rows_written"]
    assert database_hashes(spec.parent / "databases") == before
