"""Generate SQL queries of chosen complexity types for each database."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import Field, field_validator

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Batch, Fanout, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.text2sql._common import (
    GuardParams,
    SchemaParams,
    SchemaPrompted,
    ask_counts,
    first_failure,
    known_types,
)
from dataflow_operators.text2sql._sqltext import extract_sql

COMPLEXITY_TYPES = {
    "simple": "a query on one table with a filter or a sort",
    "join": "a query joining two or more tables on their foreign keys",
    "nested": "a query with a subquery (IN, NOT IN, EXISTS or a scalar subquery)",
    "aggregation": "a query with aggregate functions and GROUP BY, optionally HAVING",
    "set_operation": "a query combining two SELECTs with UNION, INTERSECT or EXCEPT",
    "window": "a query using a window function (an aggregate or ranking function with OVER)",
    "cte": "a query built with a common table expression (WITH ... AS)",
}


class SqlGenerator(SchemaPrompted, LLMOperator, Generator):
    """Generate SQL queries for each database with an LLM, across complexity types.

    For every input row (only `db_id` is needed: a list of database names is enough), the model
    sees the database's schema with sample values and writes `n` queries; the k-th asks for
    complexity type `complexity_types[k % len]` (simple, join, nested, aggregation,
    set_operation, window, cte), recorded in `complexity`. Each answer's SQL is its last fenced
    code block (or the whole answer when it starts like a query). Each row becomes up to `n`
    rows (ids `<parent>.<k>`); answers without SQL are dropped, and a database for which none
    came back is rejected with the reason ("parse error: no SQL in answer", "unknown db_id").
    Queries are not checked here: follow with `sql_executability_filter` and
    `sql_execution_filter`.

    Inputs:
        db_id: the database to write queries for.
    Outputs:
        sql: a generated query.
        complexity: the complexity type asked for.
    Params:
        n: queries per database.
        complexity_types: the types to cycle through (default: all seven).
        schema_format: `ddl` or `compact` schema in the prompt.
        sample_values: distinct sample values shown per column.
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params
            (template variables: `db_id`, `schema`, `complexity`, `complexity_description`).
    """

    name = "sql_generator"
    inputs = {"db_id": Port("database to write queries for")}
    outputs = {"sql": Port("a generated SQL query"), "complexity": Port("complexity type asked for")}
    provided = ("schema", "complexity", "complexity_description")

    class Params(LLMParams, GuardParams, SchemaParams):
        n: int = Field(7, ge=1, le=500, description="Queries to write per database.")
        complexity_types: list[str] = Field(
            default_factory=lambda: list(COMPLEXITY_TYPES),
            min_length=1,
            description="Complexity types cycled through: " + ", ".join(COMPLEXITY_TYPES) + ".",
        )

        @field_validator("complexity_types")
        @classmethod
        def _known(cls, types: list[str]) -> list[str]:
            return known_types(types, COMPLEXITY_TYPES, "complexity type")

    default_template = default_prompt("sql_generator", domain="text2sql")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        sql = extract_sql(text)
        if sql is None:
            raise ParseError("no SQL in answer")
        return {"sql": sql}

    def generate(self, batch: Batch):
        types = self.params.complexity_types
        n = self.params.n
        rows = self.rows(batch)
        failures = self.with_schemas(rows)
        items, owners = [], []
        for i, row in enumerate(rows):
            if failures[i] is not None:
                continue
            for t, kind in enumerate(types):
                count = len(range(t, n, len(types)))  # k with k % len(types) == t
                if count:
                    prompt_row = {**row, "complexity": kind, "complexity_description": COMPLEXITY_TYPES[kind]}
                    items.append((self.build_messages(prompt_row), count))
                    owners.append((i, t))
        answers = dict(zip(owners, ask_counts(self, items), strict=True))
        sqls, kinds, source, raw = [], [], [], [None] * len(rows)
        for i, row in enumerate(rows):
            if failures[i] is not None:
                continue
            outcomes = []
            for k in range(n):
                t = k % len(types)
                outcome = self.parsed(answers[(i, t)][k // len(types)], row)
                outcomes.append(outcome)
                if outcome[1] is None:
                    sqls.append(outcome[0]["sql"]), kinds.append(types[t]), source.append(i)
            if not any(o[1] is None for o in outcomes):
                failures[i], raw[i] = first_failure(outcomes)
        result = Fanout({"sql": sqls, "complexity": kinds}, pa.array(source, pa.int64()))
        return Partial(result, failures, raw) if any(failures) else result
