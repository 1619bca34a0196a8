"""Generate K reasoning traces that end in a SQL query, for each question."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Batch, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.text2sql._common import GuardParams, SchemaParams, SchemaPrompted, null_inputs
from dataflow_operators.text2sql._sqltext import extract_sql


class Text2sqlCotGenerator(SchemaPrompted, LLMOperator, Generator):
    """Generate K step-by-step reasoning traces per question, each ending in a ```sql block.

    The model sees the schema (with sample values), the question, its evidence and, with
    `show_sql` (default), the reference SQL to reason towards without quoting it; it answers
    `k` times. Traces without a SQL block are dropped; the others are written as a JSON array
    of strings in `cot_traces`, for `text2sql_cot_voting_generator` to check against the gold
    query's result. A row whose answers all fail is rejected with the reason.

    Inputs:
        question: the question.
        evidence: its external knowledge (may be null).
        sql: the reference (gold) SQL.
        db_id: the database.
    Outputs:
        cot_traces: the usable traces, as a JSON array of strings.
    Params:
        k: traces drawn per question.
        show_sql: show the reference SQL in the prompt (the trace must still derive it).
        schema_format: `ddl` or `compact` schema in the prompt.
        sample_values: distinct sample values shown per column.
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params
            (template variables: `schema`, `question`, `evidence`, `sql`, `db_id`, `show_sql`).
    """

    name = "text2sql_cot_generator"
    inputs = {
        "question": Port("the question"),
        "evidence": Port("external knowledge for the question (may be null)"),
        "sql": Port("the reference SQL"),
        "db_id": Port("the database"),
    }
    outputs = {"cot_traces": Port("usable reasoning traces, a JSON array of strings")}
    provided = ("schema", "show_sql")

    class Params(LLMParams, GuardParams, SchemaParams):
        k: int = Field(4, ge=1, le=64, description="Reasoning traces drawn per question.")
        show_sql: bool = Field(True, description="Show the reference SQL in the prompt to reason towards.")

    default_template = default_prompt("text2sql_cot_generator", domain="text2sql")

    def parse(self, text: str, row: dict[str, Any]) -> str:
        if extract_sql(text) is None:
            raise ParseError("no SQL in trace")
        return text.strip()

    def generate(self, batch: Batch):
        rows = self.rows(batch)
        failures = [null_inputs(row, ("question", "sql")) for row in rows]
        for i, why in enumerate(self.with_schemas(rows)):
            failures[i] = failures[i] or why
        raw: list[str | None] = [None] * len(rows)
        traces: list[str | None] = [None] * len(rows)
        asked = [i for i, why in enumerate(failures) if why is None]
        conversations = [self.build_messages({**rows[i], "show_sql": self.params.show_sql}) for i in asked]
        for i, per_row in zip(asked, self.ask_messages(conversations, self.params.k), strict=True):
            outcomes = [self.parsed(answer, rows[i]) for answer in per_row]
            good = [value for value, why, _ in outcomes if why is None]
            if good:
                traces[i] = json.dumps(good, ensure_ascii=False)
            else:
                failures[i], raw[i] = next((why, r) for _, why, r in outcomes if why is not None)
        result = {"cot_traces": traces}
        return Partial(result, failures, raw) if any(failures) else result
