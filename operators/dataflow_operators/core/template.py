"""Render a Jinja2 template per row (sandboxed, strict about missing variables)."""

from __future__ import annotations

import jinja2
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.operator import Batch, Generator, Port
from dataflow_cli.prompts import compile_template, environment, template_variables


class _NullUsed(Exception):
    """A null value was printed or computed with: the row renders to null."""


class _Null(jinja2.Undefined):
    """A null column value inside a template: falsy, iterates as empty, satisfies
    `default(...)` and fails `is defined`, but printing it or computing with it raises
    `_NullUsed` (the row becomes null) instead of writing "None" into the data."""

    __slots__ = ()

    def __str__(self) -> str:
        raise _NullUsed


NULL = _Null(name="null", exc=_NullUsed)


def columns_of(template: str) -> list[str]:
    """The columns a template reads: its free variables minus the Jinja globals (`range`, ...)."""
    return sorted(template_variables(template) - set(environment().globals))


class TemplateGenerator(Generator):
    """Render a Jinja2 template for every row into a new text column.

    The template reads columns by name (`{{ question }}`). A null value may be tested
    (`{% if context %}`, `context is defined`) or replaced (`{{ context | default("n/a") }}`), but a
    row that prints a null or computes with one renders to null, never to "None" (drop it with a
    later filter), unless `null_as_empty` is set, which passes nulls as "". Nulls nested inside
    lists or structs are plain Python None. A template error on a row (e.g. a missing attribute)
    stops the run and names the row.

    Inputs:
        (none: the columns are the variables the template reads)
    Outputs:
        text: the rendered template (string; null when the row printed a null value).
    Params:
        template: the Jinja2 template (sandboxed; undefined variables are errors).
        null_as_empty: render null values as "" instead of producing a null row (default false).
    """

    name = "template_generator"
    cpu_bound = True  # Jinja renders row by row in Python: a process pool pays
    outputs = {"text": Port("the rendered template; null when the row printed a null value", "string")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        template: str = Field(
            min_length=1,
            description="Jinja2 template rendered per row; columns are variables, e.g. "
            "'Q: {{ question }}\\nA: {{ answer }}'.",
        )
        null_as_empty: bool = Field(
            False,
            description="Pass null column values as empty strings. By default a null can be tested "
            "or defaulted in the template, and a row that prints one gets a null output.",
        )

        @field_validator("template")
        @classmethod
        def _compiles(cls, template: str) -> str:
            try:
                compile_template(template)
            except SpecError as exc:
                raise ValueError(exc.reason) from None
            return template

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self._template = compile_template(self.params.template)
        self._columns = columns_of(self.params.template)

    def required_columns(self) -> list[str]:
        return list(self._columns)

    def generate(self, batch: Batch) -> dict[str, pa.Array]:
        names = self._columns
        values = [batch.values(name) for name in names]
        null = "" if self.params.null_as_empty else NULL
        render = self._template.render
        out: list[str | None] = [None] * batch.num_rows
        for i, row in enumerate(zip(*values, strict=True) if names else [()] * batch.num_rows):
            try:
                out[i] = render({name: null if v is None else v for name, v in zip(names, row, strict=True)})
            except _NullUsed:
                out[i] = None
            except Exception as exc:  # a template problem on this row's data: the user's to fix
                raise DataflowError(
                    f"{self.name}: template failed on row _id {_row_id(batch, i)}: {type(exc).__name__}: {exc}",
                    hint="fix the template or the data (drop or fill the rows it cannot render first)",
                ) from None
        return {"text": pa.array(out, pa.string())}


def _row_id(batch: Batch, index: int) -> str:
    if "_id" in batch.table.column_names:
        return str(batch.table.column("_id")[index].as_py())
    return f"#{index}"
