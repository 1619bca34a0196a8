"""Run SQL under the read-only guard; drop what fails, times out or (optionally) returns nothing."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators.text2sql._common import GuardParams, SqlDatabases

EMPTY = "empty result"


class SqlExecutionFilter(SqlDatabases, Filter):
    """Execute each row's SQL read-only on its database and drop the rows whose query fails.

    Every query runs under the read-only guard (`dataflow_cli.sandbox.sql`): a read-only
    connection whose authorizer allows reading only (writes, DDL, ATTACH/DETACH, VACUUM INTO,
    state-changing PRAGMAs and load_extension are denied), one statement only, a time limit
    that really interrupts (SQLite's progress handler; with `isolation: process` the worker is
    also killed if one step of SQLite runs past it), a cap on rows fetched and on value size,
    extensions off. Database files are never written. The limits are recorded in the run stats.

    Dropped rows say why, each failure with its own reason: "sql timeout", "sql error: no such
    column" (the kind of SQLite error; its message is the detail), "sql not read-only: ATTACH",
    "sql multiple statements", "sql too many rows", "unknown db_id", and, with `reject_empty`,
    "empty result". Every row, kept or dropped, gets the result's fingerprint (a hash of the
    rows as a multiset, equal for results holding the same rows) and row count; both are null
    when the query failed.

    Inputs:
        sql: the SQL to run.
        db_id: the database to run it on.
    Outputs:
        result_fingerprint: hash of the result (column count and rows, order ignored).
        result_rows: number of rows the query returned.
    Params:
        reject_empty: also drop queries that return no rows (reason "empty result").
        db_root: folder of the databases: `<db_root>/<db_id>.sqlite` or `<db_root>/<db_id>/<db_id>.sqlite`
            (Spider, BIRD), relative to the spec file.
        timeout: seconds one query may run (compile, execute, fetch) before it is stopped (default 5).
        max_rows: most rows a query may return; more is the error "sql too many rows" (default 10000).
        max_value_bytes: largest string or blob a query may read or build (default 1000000).
        isolation: `process` (default: queries run in a worker process per thread, killed if one step
            outlasts the limit, memory capped) or `thread` (in this process).
        max_memory_mb: address-space cap of a worker process (default 2048).
    """

    name = "sql_execution_filter"
    inputs = {"sql": Port("SQL to run"), "db_id": Port("database to run it on")}
    outputs = {
        "result_fingerprint": Port("hash of the result's rows as a multiset (null if the query failed)"),
        "result_rows": Port("rows returned (null if the query failed)", "int64"),
    }

    class Params(GuardParams):
        reject_empty: bool = Field(False, description="Also drop queries that return no rows.")

    def filter(self, batch: Batch) -> Verdict:
        keep, reason, detail, fingerprints, counts = [], [], [], [], []
        for sql, db_id in zip(batch.values("sql"), batch.values("db_id"), strict=True):
            result = self.execute(db_id, sql)
            if not result.ok:
                keep.append(False), reason.append(result.error), detail.append(result.detail)
                fingerprints.append(None), counts.append(None)
                continue
            fingerprints.append(result.fingerprint), counts.append(result.row_count)
            if self.params.reject_empty and not result.rows:
                keep.append(False), reason.append(EMPTY), detail.append(None)
            else:
                keep.append(True), reason.append(None), detail.append(None)
        return Verdict(
            keep,
            pa.array(reason, pa.string()),
            pa.array(detail, pa.string()),
            columns={
                "result_fingerprint": pa.array(fingerprints, pa.string()),
                "result_rows": pa.array(counts, pa.int64()),
            },
        )
