"""Keep the reasoning trace whose SQL returns what the gold query returns."""

from __future__ import annotations

import json
from collections import defaultdict

from dataflow_cli.operator import Batch, Generator, Partial, Port
from dataflow_operators.text2sql._common import GuardParams, SqlDatabases
from dataflow_operators.text2sql._equivalence import compare_results
from dataflow_operators.text2sql._sqltext import canonical_sql, extract_sql, outer_order_by


def load_traces(value: object) -> list[str]:
    """Traces from a JSON array of strings (what `text2sql_cot_generator` writes) or a list."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, list):
        return [t for t in value if isinstance(t, str) and t.strip()]
    return []


class Text2sqlCotVotingGenerator(SqlDatabases, Generator):
    """Pick, per row, a reasoning trace whose final SQL returns the gold query's result.

    The SQL of every trace (its last ```sql block) is run under the read-only guard and its
    result compared with the gold query's by result equivalence: multiset of rows, columns by
    position, ordered only when the gold query's outermost query has ORDER BY (sqlglot AST);
    NULL equals NULL; numbers within a relative tolerance of 1e-6 (integers exactly); text
    exactly and never equal to a number; a failed query equals nothing; two empty results are
    equal. Among the correct traces, the majority wins: traces are grouped by their SQL as
    sqlglot writes it back (so spelling differences do not split a vote), the largest group
    is chosen, ties going to the group with the earliest trace; its earliest trace is kept.
    A row with no correct trace is rejected with the count tried ("no correct trace among 4");
    one whose gold query fails is rejected with that failure ("gold sql failed: sql timeout").

    Inputs:
        traces: the candidate traces (a JSON array of strings, as `text2sql_cot_generator` writes).
        sql: the gold SQL.
        db_id: the database.
    Outputs:
        cot: the chosen trace.
        cot_sql: the SQL of the chosen trace.
        cot_correct: how many traces returned the gold result.
        cot_tried: how many traces there were.
    Params:
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
    """

    name = "text2sql_cot_voting_generator"
    inputs = {
        "traces": Port("candidate reasoning traces (JSON array of strings)"),
        "sql": Port("the gold SQL"),
        "db_id": Port("the database"),
    }
    outputs = {
        "cot": Port("the chosen reasoning trace"),
        "cot_sql": Port("SQL of the chosen trace"),
        "cot_correct": Port("traces whose result matched the gold result", "int64"),
        "cot_tried": Port("traces tried", "int64"),
    }
    requires = ("sqlglot",)
    Params = GuardParams

    def vote(self, traces: list[str], gold_sql: str, db_id: object) -> tuple[dict | None, str | None]:
        """(outputs, None) for the chosen trace, or (None, reject reason)."""
        gold = self.execute(db_id, gold_sql)
        if not gold.ok:
            return None, f"gold sql failed: {gold.error}"
        ordered = outer_order_by(gold_sql)
        results: dict[str, bool] = {}  # each distinct SQL runs once
        correct: list[tuple[int, str]] = []
        for i, trace in enumerate(traces):
            sql = extract_sql(trace)
            if sql is None:
                continue
            if sql not in results:
                results[sql] = compare_results(gold, self.execute(db_id, sql), ordered).equivalent
            if results[sql]:
                correct.append((i, sql))
        if not correct:
            return None, f"no correct trace among {len(traces)}"
        groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i, sql in correct:
            groups[canonical_sql(sql)].append((i, sql))
        best = min(groups.values(), key=lambda members: (-len(members), members[0][0]))
        index, sql = best[0]
        return {
            "cot": traces[index],
            "cot_sql": sql,
            "cot_correct": len(correct),
            "cot_tried": len(traces),
        }, None

    def generate(self, batch: Batch):
        columns: dict[str, list] = {name: [] for name in self.outputs}
        failed: list[str | None] = []
        rows = zip(batch.values("traces"), batch.values("sql"), batch.values("db_id"), strict=True)
        for traces_value, gold_sql, db_id in rows:
            traces = load_traces(traces_value)
            if not isinstance(gold_sql, str) or not gold_sql.strip():
                chosen, why = None, "null `sql`"
            elif not traces:
                chosen, why = None, "no traces"
            else:
                chosen, why = self.vote(traces, gold_sql, db_id)
            for name, values in columns.items():
                values.append(chosen[name] if chosen else None)
            failed.append(why)
        return Partial(columns, failed) if any(failed) else columns
