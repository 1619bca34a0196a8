"""What every text-to-SQL operator shares: the database folder, the read-only guard and its
limits (spec params, recorded in the run stats), schemas, and running a row's gold query."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.sandbox.sql import SqlGuard, SqlLimits, SqlResult
from dataflow_operators.text2sql._databases import (
    UnknownDatabase,
    check_root,
    database_root,
    resolve_database,
    root_identity,
)
from dataflow_operators.text2sql._schema import Schema, SchemaError, extract_schema

GUARD_PARAMS_DOC = (
    "db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder and the "
    "read-only guard's limits (see `sql_execution_filter`)."
)


class GuardParams(BaseModel):
    """The database folder and the limits of the read-only SQL guard."""

    model_config = ConfigDict(extra="forbid")

    db_root: str = Field(
        min_length=1,
        description="Folder of SQLite databases: `<db_root>/<db_id>.sqlite` (flat) or "
        "`<db_root>/<db_id>/<db_id>.sqlite` (Spider, BIRD); relative to the spec file.",
    )
    timeout: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds one query may run (compile, execute, fetch) before it is stopped.",
    )
    max_rows: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="Most rows a query may return; more is an error, never truncated.",
    )
    max_value_bytes: int = Field(
        1_000_000, ge=1_000, le=1_000_000_000, description="Largest string or blob a query may read or build."
    )
    isolation: Literal["process", "thread"] = Field(
        "process",
        description="`process`: queries run in a worker process that is killed if one step of SQLite "
        "outlasts the time limit (e.g. a huge printf), with a memory cap; `thread`: in this process "
        "(faster start, the time limit relies on SQLite's progress handler alone).",
    )
    max_memory_mb: int = Field(
        2048, ge=64, le=1_000_000, description="Address-space cap of a worker process (process isolation)."
    )


class SchemaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_format: Literal["ddl", "compact"] = Field(
        "ddl", description="How the schema is written in prompts: `ddl` (CREATE TABLE) or `compact`."
    )
    sample_values: int = Field(3, ge=0, le=20, description="Distinct sample values shown per column.")


class SqlDatabases:
    """Mixin for operators whose Params include GuardParams."""

    params: Any
    base_dir: Path | None  # the spec file's folder (set by the spec loader), see Operator

    _guard_lock = threading.Lock()

    @property
    def guard(self) -> SqlGuard:
        guard = self.__dict__.get("_guard")
        if guard is None:
            with self._guard_lock:
                guard = self.__dict__.get("_guard")
                if guard is None:
                    guard = self.__dict__["_guard"] = SqlGuard(self.limits(), isolation=self.params.isolation)
        return guard

    def limits(self) -> SqlLimits:
        p = self.params
        return SqlLimits(
            timeout=p.timeout,
            max_rows=p.max_rows,
            max_value_bytes=p.max_value_bytes,
            max_memory_mb=p.max_memory_mb,
        )

    def run_limits(self) -> dict[str, Any]:
        """The guard's limits, for the run stats."""
        return {"sql_guard": {**self.limits().as_dict(), "isolation": self.params.isolation}}

    @property
    def db_root(self) -> Path:
        return database_root(self.params.db_root, self.base_dir)

    def database(self, db_id: Any) -> Path:
        """The database file of `db_id`; UnknownDatabase (a reject reason) if there is none.
        Found files are remembered: a query costs no lookup."""
        known: dict = self.__dict__.setdefault("_databases", {})
        path = known.get(db_id) if isinstance(db_id, str) else None
        if path is None:
            path = resolve_database(check_root(self.db_root), db_id)
            known[db_id] = path
        return path

    def fingerprint_extra(self) -> dict[str, Any]:
        return {"databases": root_identity(self.db_root)}

    def schema(self, db_id: Any, sample_values: int = 3) -> Schema:
        """The schema of `db_id` (UnknownDatabase or SchemaError carry the reject reason)."""
        return extract_schema(self.database(db_id), db_id, self.guard, sample_values)

    def execute(self, db_id: Any, sql: Any) -> SqlResult:
        """Run `sql` on `db_id` under the guard; an unknown db_id is a failed result."""
        try:
            path = self.database(db_id)
        except UnknownDatabase as exc:
            return SqlResult(error=str(exc), detail=f"db_id {db_id!r}")
        return self.guard.execute(path, sql)


def row_failure(exc: Exception) -> str:
    """The reject reason for an UnknownDatabase or SchemaError."""
    if isinstance(exc, (UnknownDatabase, SchemaError)):
        return str(exc)
    raise exc


class SchemaPrompted(SqlDatabases):
    """Mixin for LLM operators whose prompts show a database schema.

    The operator fills some template variables itself (`provided`: the schema, a complexity,
    a style ...): they are not columns, so validation must not ask for them.
    """

    provided: tuple[str, ...] = ("schema",)

    def template_columns(self) -> list[str]:
        return [c for c in super().template_columns() if c not in self.provided]  # type: ignore[misc]

    def schema_text(self, db_id: Any) -> str:
        """The schema of `db_id` as the prompt shows it (UnknownDatabase / SchemaError if none)."""
        p = self.params
        return self.schema(db_id, p.sample_values).render(p.schema_format)

    def with_schemas(self, rows: list[dict[str, Any]]) -> list[str | None]:
        """Add `schema` to each row; per row, the reason it could not be read (else None)."""
        failures: list[str | None] = []
        cache: dict[Any, str | Exception] = {}
        for row in rows:
            db_id = row.get("db_id")
            key = db_id if isinstance(db_id, str) else repr(db_id)
            if key not in cache:
                try:
                    cache[key] = self.schema_text(db_id)
                except (UnknownDatabase, SchemaError) as exc:
                    cache[key] = exc
            found = cache[key]
            if isinstance(found, Exception):
                failures.append(row_failure(found))
            else:
                row["schema"] = found
                failures.append(None)
        return failures


def known_types(values: list[str], known, what: str) -> list[str]:
    """`values` if each is in `known`; else a ValueError naming the first unknown one."""
    from dataflow_cli.errors import did_you_mean

    for value in values:
        if value not in known:
            raise ValueError(f"unknown {what} `{value}`{did_you_mean(value, known)}")
    return values


def null_inputs(row: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The reject reason for a row whose required input is null or blank."""
    for name in names:
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return f"null `{name}`"
    return None


def ask_counts(
    op: Any, items: list[tuple[list[dict[str, str]], int]], json_schema: dict[str, Any] | None = None
) -> list[list[Any]]:
    """`m` answers to each `(messages, m)`, in as few rounds as there are distinct counts.

    Asking for m samples of one conversation (rather than m copies of it) gives each answer its
    own sample number, hence its own cache entry: m identical prompts would get one answer."""
    answers: list[list[Any]] = [[] for _ in items]
    by_count: dict[int, list[int]] = {}
    for index, (_, count) in enumerate(items):
        if count > 0:
            by_count.setdefault(count, []).append(index)
    for count, indexes in sorted(by_count.items()):
        got = op.ask_messages([items[i][0] for i in indexes], count, json_schema)
        for i, per in zip(indexes, got, strict=True):
            answers[i] = per
    return answers


def first_failure(outcomes: list[tuple[Any, str | None, str | None]]) -> tuple[str | None, str | None]:
    """(reason, raw) of the first failed outcome of `LLMOperator.parsed`, or (None, None)."""
    for _, why, raw in outcomes:
        if why is not None:
            return why, raw
    return None, None
