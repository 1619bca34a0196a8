"""Generate variations of seed SQL queries (values, structure, functions, difficulty) with their questions."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import Field, field_validator

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError, json_object
from dataflow_cli.operator import Batch, Fanout, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.text2sql._common import (
    GuardParams,
    SchemaParams,
    SchemaPrompted,
    ask_counts,
    first_failure,
    known_types,
    null_inputs,
)
from dataflow_operators.text2sql._sqltext import extract_sql

VARIATION_TYPES = {
    "values": "keep the structure but change the literal values, using other values that occur in the data",
    "structure": "ask for something related with a different query structure (other joins, grouping, "
    "a subquery instead of a join, or the reverse)",
    "functions": "use different functions or aggregates (e.g. AVG instead of MAX, string or date functions)",
    "difficulty": "make it harder: add a condition, a join, a grouping or a nested query",
}

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "sql": {"type": "string", "minLength": 1},
        "question": {"type": "string", "minLength": 1},
        "evidence": {"type": "string"},
    },
    "required": ["sql", "question", "evidence"],
    "additionalProperties": False,
}


def parse_variant(text: str) -> dict[str, Any]:
    value = json_object(text)
    sql = value.get("sql")
    question = value.get("question")
    if not isinstance(sql, str) or not sql.strip():
        raise ParseError("no `sql` in answer")
    if not isinstance(question, str) or not question.strip():
        raise ParseError("no `question` in answer")
    evidence = value.get("evidence")
    evidence = evidence.strip() if isinstance(evidence, str) and evidence.strip() else None
    return {"sql": extract_sql(sql) or sql.strip(), "question": question.strip(), "evidence": evidence}


class SqlVariationGenerator(SchemaPrompted, LLMOperator, Generator):
    """Generate variations of each seed query, each with the question it answers, with an LLM.

    The model sees the schema (with sample values), the seed SQL and its question, and writes
    `n` variations; the k-th is of type `variation_types[k % len]`: `values` (same structure,
    other values), `structure` (a related question answered by a differently built query),
    `functions` (other functions or aggregates) or `difficulty` (harder: more conditions, joins,
    grouping or nesting). The answer is strict JSON `{sql, question, evidence}`; the type is
    recorded in `variation_type`. Each seed becomes up to `n` rows (ids `<parent>.<k>`); a seed
    for which no answer could be used is rejected with the reason. Follow with
    `sql_execution_filter` and `text2sql_consistency_filter`: nothing is checked here.

    Inputs:
        sql: the seed query.
        question: the seed question.
        db_id: the database.
    Outputs:
        variant_sql: the new query.
        variant_question: the question it answers.
        variant_evidence: external knowledge the question needs (null if none).
        variation_type: values, structure, functions or difficulty.
    Params:
        n: variations per seed.
        variation_types: the types to cycle through (default: all four).
        schema_format: `ddl` or `compact` schema in the prompt.
        sample_values: distinct sample values shown per column.
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params
            (template variables: `schema`, `sql`, `question`, `db_id`, `variation`, `variation_description`).
    """

    name = "sql_variation_generator"
    inputs = {
        "sql": Port("the seed SQL"),
        "question": Port("the seed question"),
        "db_id": Port("the database"),
    }
    outputs = {
        "variant_sql": Port("the varied SQL"),
        "variant_question": Port("the question the varied SQL answers"),
        "variant_evidence": Port("external knowledge for the question (null if none)"),
        "variation_type": Port("values, structure, functions or difficulty"),
    }
    provided = ("schema", "variation", "variation_description")

    class Params(LLMParams, GuardParams, SchemaParams):
        n: int = Field(4, ge=1, le=100, description="Variations to write per seed query.")
        variation_types: list[str] = Field(
            default_factory=lambda: list(VARIATION_TYPES),
            min_length=1,
            description="Variation types cycled through: " + ", ".join(VARIATION_TYPES) + ".",
        )

        @field_validator("variation_types")
        @classmethod
        def _known(cls, types: list[str]) -> list[str]:
            return known_types(types, VARIATION_TYPES, "variation type")

    default_template = default_prompt("sql_variation_generator", domain="text2sql")

    def json_schema(self) -> dict[str, Any]:
        return ANSWER_SCHEMA

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return parse_variant(text)

    def generate(self, batch: Batch):
        types = self.params.variation_types
        n = self.params.n
        rows = self.rows(batch)
        failures = [null_inputs(row, ("sql", "question")) for row in rows]
        for i, why in enumerate(self.with_schemas(rows)):
            failures[i] = failures[i] or why
        items, owners = [], []
        for i, row in enumerate(rows):
            if failures[i] is not None:
                continue
            for t, kind in enumerate(types):
                count = len(range(t, n, len(types)))
                if count:
                    prompt_row = {**row, "variation": kind, "variation_description": VARIATION_TYPES[kind]}
                    items.append((self.build_messages(prompt_row), count))
                    owners.append((i, t))
        answers = dict(zip(owners, ask_counts(self, items, self.json_schema()), strict=True))
        columns: dict[str, list] = {name: [] for name in self.outputs}
        source, raw = [], [None] * len(rows)
        for i, row in enumerate(rows):
            if failures[i] is not None:
                continue
            outcomes = []
            for k in range(n):
                t = k % len(types)
                outcome = self.parsed(answers[(i, t)][k // len(types)], row)
                outcomes.append(outcome)
                if outcome[1] is None:
                    value = outcome[0]
                    columns["variant_sql"].append(value["sql"])
                    columns["variant_question"].append(value["question"])
                    columns["variant_evidence"].append(value["evidence"])
                    columns["variation_type"].append(types[t])
                    source.append(i)
            if not any(o[1] is None for o in outcomes):
                failures[i], raw[i] = first_failure(outcomes)
        result = Fanout(columns, pa.array(source, pa.int64()))
        return Partial(result, failures, raw) if any(failures) else result
