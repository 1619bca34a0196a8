"""Keep rows whose question (with evidence) an LLM judges to ask exactly what the SQL returns."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from dataflow_cli.llm.engine import strip_code_fence
from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Batch, Filter, Partial, Port, Verdict
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.text2sql._common import GuardParams, SchemaParams, SchemaPrompted, null_inputs

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"consistent": {"type": "boolean"}, "reason": {"type": "string", "minLength": 1}},
    "required": ["consistent", "reason"],
    "additionalProperties": False,
}
INCONSISTENT = "question does not match sql"


class Text2sqlConsistencyFilter(SchemaPrompted, LLMOperator, Filter):
    """Drop rows whose question and evidence an LLM judges not to ask for what the SQL returns.

    The judge sees the schema (with sample values), the question, the evidence and the SQL, and
    answers in strict JSON `{consistent: true|false, reason: "..."}` (a JSON schema is sent with
    the request; the answer is parsed as JSON, never searched for a word). An inconsistent row
    is dropped with the reason "question does not match sql" and the judge's reason as detail;
    an answer that is not such an object rejects the row with the raw answer kept.

    Inputs:
        question: the question.
        evidence: its external knowledge (may be null).
        sql: the SQL meant to answer it.
        db_id: the database.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        schema_format: `ddl` or `compact` schema in the prompt.
        sample_values: distinct sample values shown per column.
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params
            (template variables: `schema`, `question`, `evidence`, `sql`, `db_id`).
    """

    name = "text2sql_consistency_filter"
    inputs = {
        "question": Port("the question"),
        "evidence": Port("external knowledge for the question (may be null)"),
        "sql": Port("the SQL meant to answer it"),
        "db_id": Port("the database"),
    }

    class Params(LLMParams, GuardParams, SchemaParams):
        pass

    default_template = default_prompt("text2sql_consistency_filter", domain="text2sql")

    def json_schema(self) -> dict[str, Any]:
        return VERDICT_SCHEMA

    def parse(self, text: str, row: dict[str, Any]) -> Any:
        try:
            value = json.loads(strip_code_fence(text))
        except ValueError:
            raise ParseError("answer is not JSON") from None
        if not isinstance(value, dict) or not isinstance(value.get("consistent"), bool):
            raise ParseError("no boolean `consistent` in answer")
        reason = value.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ParseError("no `reason` in answer")
        return True if value["consistent"] else (False, INCONSISTENT, " ".join(reason.split())[:300])

    def filter(self, batch: Batch):
        rows = self.rows(batch)
        failures = [null_inputs(row, ("question", "sql")) for row in rows]
        for i, why in enumerate(self.with_schemas(rows)):
            failures[i] = failures[i] or why
        raw: list[str | None] = [None] * len(rows)
        asked = [i for i, why in enumerate(failures) if why is None]
        answers = self.ask_messages([self.build_messages(rows[i]) for i in asked], 1, self.json_schema())
        keep = [True] * len(rows)
        reason: list[str | None] = [None] * len(rows)
        detail: list[str | None] = [None] * len(rows)
        for i, per_row in zip(asked, answers, strict=True):
            verdict, why, text = self.parsed(per_row[0], rows[i])
            if why is not None:
                failures[i], raw[i] = why, text
            elif verdict is not True:
                keep[i], reason[i], detail[i] = False, verdict[1], verdict[2]
        result = Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))
        return Partial(result, failures, raw) if any(failures) else result
