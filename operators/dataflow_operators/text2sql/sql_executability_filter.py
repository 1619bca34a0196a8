"""Keep SQL that parses as one read-only query and compiles against its database."""

from __future__ import annotations

import pyarrow as pa

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators.text2sql._common import GuardParams, SqlDatabases
from dataflow_operators.text2sql._databases import UnknownDatabase
from dataflow_operators.text2sql._sqltext import SqlParseError, parse_one, statement_kind, writes_anything


class SqlExecutabilityFilter(SqlDatabases, Filter):
    """Keep SQL that is one read-only query SQLite can compile against the row's database.

    Three checks, cheapest first, each with its own reason: the text parses with sqlglot (SQLite
    dialect) as exactly one statement ("sql parse error", "sql multiple statements"); that
    statement is a query (SELECT, a set operation or VALUES, with any CTEs) and nothing in it
    writes ("sql not read-only: DELETE": a `WITH ... DELETE` is not a query); and `EXPLAIN`
    of it succeeds under the read-only guard, which compiles it against the database's schema
    without running it ("sql error: no such column", "sql not read-only: ATTACH"). A db_id with
    no database file is "unknown db_id". The query itself is not run: see `sql_execution_filter`.

    Inputs:
        sql: the SQL to check.
        db_id: the database it is written for.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
    """

    name = "sql_executability_filter"
    inputs = {"sql": Port("SQL to check"), "db_id": Port("database the SQL is written for")}
    requires = ("sqlglot",)
    Params = GuardParams

    def check(self, sql: object, db_id: object) -> tuple[str, str | None] | None:
        """(reason, detail) when `sql` fails a check, else None."""
        if not isinstance(sql, str) or not sql.strip():
            return "sql empty", None
        try:
            tree = parse_one(sql)
        except SqlParseError as exc:
            if str(exc) == "multiple statements":
                return "sql multiple statements", None
            if str(exc) == "empty":
                return "sql empty", None
            return "sql parse error", str(exc)
        kind = statement_kind(tree)
        if kind != "query":
            return f"sql not read-only: {kind}", None
        writer = writes_anything(tree)
        if writer is not None:
            return f"sql not read-only: {writer}", None
        try:
            path = self.database(db_id)
        except UnknownDatabase as exc:
            return str(exc), f"db_id {db_id!r}"
        result = self.guard.explain(path, sql)
        return None if result.ok else (result.error, result.detail)

    def filter(self, batch: Batch) -> Verdict:
        keep, reason, detail = [], [], []
        for sql, db_id in zip(batch.values("sql"), batch.values("db_id"), strict=True):
            failure = self.check(sql, db_id)
            keep.append(failure is None)
            reason.append(failure[0] if failure else None)
            detail.append(failure[1] if failure else None)
        return Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))
