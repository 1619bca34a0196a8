"""Measure how hard a text-to-SQL example is for a model: pass@k by result equivalence."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from dataflow_cli.llm.operator import LLMOperator, LLMParams
from dataflow_cli.operator import Batch, Evaluator, Partial, Port
from dataflow_operators.text2sql._common import GuardParams, SqlDatabases, null_inputs
from dataflow_operators.text2sql._equivalence import compare_results
from dataflow_operators.text2sql._sqltext import extract_sql, outer_order_by


class SqlExecutionDifficultyEvaluator(SqlDatabases, LLMOperator, Evaluator):
    """Label each example by how often a model answers its prompt with SQL returning the gold result.

    The model answers the row's `prompt` `k` times; the SQL of each answer (its last ```sql
    block) runs under the read-only guard and is compared with the gold query's result by
    result equivalence (multiset of rows, columns by position, ordered only when the gold
    query's outermost query has ORDER BY; NULL equals NULL; numbers within a relative tolerance
    of 1e-6; text exactly, never equal to a number; a failed query equals nothing; two empty
    results are equal). The pass rate is correct answers over answers received; the label is
    `easy` from `easy_at`, `medium` from `medium_at`, `hard` from `hard_at`, else `extra`. A row
    whose gold query fails is rejected ("gold sql failed: ..."), as is one with no answer at all.

    Inputs:
        prompt: the prompt the model answers (e.g. from `text2sql_prompt_generator`).
        sql: the gold SQL.
        db_id: the database.
    Outputs:
        exec_passes: answers whose result matched the gold result.
        exec_samples: answers received.
        exec_pass_rate: exec_passes / exec_samples.
        exec_difficulty: easy, medium, hard or extra.
    Params:
        k: answers drawn per prompt.
        easy_at: lowest pass rate labelled easy.
        medium_at: lowest pass rate labelled medium.
        hard_at: lowest pass rate labelled hard (below it: extra).
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params
            (the default template is the prompt itself).
    """

    name = "sql_execution_difficulty_evaluator"
    inputs = {
        "prompt": Port("the prompt the model answers"),
        "sql": Port("the gold SQL"),
        "db_id": Port("the database"),
    }
    outputs = {
        "exec_passes": Port("answers matching the gold result", "int64"),
        "exec_samples": Port("answers received", "int64"),
        "exec_pass_rate": Port("passes / samples", "float64"),
        "exec_difficulty": Port("easy, medium, hard or extra"),
    }
    template_needs = ("prompt",)
    requires = ("sqlglot",)

    class Params(LLMParams, GuardParams):
        k: int = Field(5, ge=1, le=64, description="Answers drawn per prompt.")
        easy_at: float = Field(0.8, ge=0, le=1, description="Lowest pass rate labelled easy.")
        medium_at: float = Field(0.4, ge=0, le=1, description="Lowest pass rate labelled medium.")
        hard_at: float = Field(
            0.01, ge=0, le=1, description="Lowest pass rate labelled hard; below it, extra."
        )

        @model_validator(mode="after")
        def _ordered(self):
            if not self.easy_at >= self.medium_at >= self.hard_at:
                raise ValueError("need easy_at >= medium_at >= hard_at")
            return self

    default_template = "{{ prompt }}"

    def label(self, rate: float) -> str:
        p = self.params
        if rate >= p.easy_at:
            return "easy"
        if rate >= p.medium_at:
            return "medium"
        if rate >= p.hard_at:
            return "hard"
        return "extra"

    def evaluate(self, batch: Batch):
        rows = self.rows(batch)
        failures = [null_inputs(row, ("prompt", "sql")) for row in rows]
        golds: dict[int, Any] = {}
        for i, row in enumerate(rows):
            if failures[i] is None:
                gold = self.execute(row.get("db_id"), row["sql"])
                if gold.ok:
                    golds[i] = gold
                else:
                    failures[i] = f"gold sql failed: {gold.error}"
        asked = sorted(golds)
        answers = self.ask_messages([self.build_messages(rows[i]) for i in asked], self.params.k)
        columns: dict[str, list] = {name: [None] * len(rows) for name in self.outputs}
        raw: list[str | None] = [None] * len(rows)
        for i, per_row in zip(asked, answers, strict=True):
            received = [a for a in per_row if a.ok]
            if not received:
                failures[i], raw[i] = per_row[0].failure, per_row[0].raw
                continue
            ordered = outer_order_by(rows[i]["sql"])
            results: dict[str | None, bool] = {}
            passes = 0
            for answer in received:
                sql = extract_sql(answer.text)
                if sql not in results:
                    predicted = self.execute(rows[i].get("db_id"), sql) if sql else None
                    results[sql] = (
                        predicted is not None and compare_results(golds[i], predicted, ordered).equivalent
                    )
                passes += results[sql]
            rate = passes / len(received)
            columns["exec_passes"][i] = passes
            columns["exec_samples"][i] = len(received)
            columns["exec_pass_rate"][i] = rate
            columns["exec_difficulty"][i] = self.label(rate)
        return Partial(columns, failures, raw) if any(failures) else columns
