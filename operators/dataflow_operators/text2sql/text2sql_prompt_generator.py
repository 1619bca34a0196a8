"""Write the training prompt of a text-to-SQL example: schema, sample values, question, evidence."""

from __future__ import annotations

from pydantic import Field, field_validator

from dataflow_cli.operator import Batch, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.text2sql._common import GuardParams, SchemaParams, SqlDatabases, row_failure
from dataflow_operators.text2sql._databases import UnknownDatabase
from dataflow_operators.text2sql._schema import SchemaError

VARIABLES = ("schema", "question", "evidence", "db_id")


class Text2sqlPromptGenerator(SqlDatabases, Generator):
    """Write each row's training prompt: the database schema with sample values, the question and its evidence.

    The schema is read from the row's database (cached per file) and written as `ddl` (CREATE
    TABLE statements with sample values and row counts as comments) or `compact` (one line per
    table, then sample values per column). The default template asks for reasoning and a final
    ```sql block; `template` replaces it (Jinja over `schema`, `question`, `evidence`, `db_id`;
    `evidence` is null when the row has none). A row whose database is unknown is rejected
    ("unknown db_id"). No model is called.

    Inputs:
        question: the natural-language question.
        evidence: external knowledge the question needs (may be null).
        db_id: the database the question is about.
    Outputs:
        prompt: the rendered prompt.
    Params:
        template: Jinja template of the prompt (default: schema, evidence, question, instructions).
        schema_format: `ddl` or `compact`.
        sample_values: distinct sample values shown per column (0 for none).
        db_root, timeout, max_rows, max_value_bytes, isolation, max_memory_mb: the database folder
            and the read-only guard's limits (see `sql_execution_filter`).
    """

    name = "text2sql_prompt_generator"
    inputs = {
        "question": Port("the question"),
        "evidence": Port("external knowledge for the question (may be null)"),
        "db_id": Port("database the question is about"),
    }
    outputs = {"prompt": Port("the training prompt")}

    class Params(GuardParams, SchemaParams):
        template: str | None = Field(
            None,
            description="Jinja template over `schema`, `question`, `evidence`, `db_id` (default built in).",
        )

        @field_validator("template")
        @classmethod
        def _compiles(cls, text: str | None) -> str | None:
            from dataflow_cli.errors import SpecError
            from dataflow_cli.prompts import compile_template

            if text is not None:
                try:
                    compile_template(text)
                except SpecError as exc:
                    raise ValueError(exc.reason) from None
            return text

    default_template = default_prompt("text2sql_prompt_generator", domain="text2sql")

    def render(self, schema: str, question: str, evidence: str | None, db_id: str) -> str:
        from dataflow_cli.prompts import compile_template

        template = compile_template(self.params.template or self.default_template)
        return template.render(
            schema=schema, question=question, evidence=evidence or None, db_id=db_id
        ).strip()

    def generate(self, batch: Batch):
        p = self.params
        prompts, failed = [], []
        rows = zip(batch.values("question"), batch.values("evidence"), batch.values("db_id"), strict=True)
        for question, evidence, db_id in rows:
            if not isinstance(question, str) or not question.strip():
                prompts.append(None), failed.append("null `question`")
                continue
            try:
                schema = self.schema(db_id, p.sample_values).render(p.schema_format)
            except (UnknownDatabase, SchemaError) as exc:
                prompts.append(None), failed.append(row_failure(exc))
                continue
            prompts.append(self.render(schema, question, evidence, db_id)), failed.append(None)
        return Partial({"prompt": prompts}, failed) if any(failed) else {"prompt": prompts}
