"""Schema operators: keep or rename columns.

Both are refiners whose `refine` returns a whole `pyarrow.Table` (same rows, same order): the
engine takes it as the new batch table. Internal columns (names starting with `_`, e.g. `_id`)
always pass through untouched.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.errors import DataflowError, did_you_mean
from dataflow_cli.operator import RESERVED_PREFIX, Batch, Refiner


def _missing(table: pa.Table, columns, stage: str) -> None:
    absent = [c for c in columns if c not in table.column_names]
    if absent:
        column = absent[0]
        raise DataflowError(
            f"{stage}: column `{column}` is not in the batch{did_you_mean(column, table.column_names)}",
            hint="check the column names in the spec against the input (`dataflow validate`)",
        )


class SelectColumnsRefiner(Refiner):
    """Keep only the listed columns, in the listed order, dropping every other one.

    Internal columns (names starting with `_`, such as `_id`) are always kept, after the listed
    ones. The stage writes no column.

    Inputs:
        (none: the columns are given by `columns`)
    Outputs:
        (none: the batch keeps only the listed columns)
    Params:
        columns: the columns to keep, in output order (at least one).
    """

    name = "select_columns_refiner"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        columns: list[str] = Field(
            min_length=1,
            description="Columns to keep, in output order; every other column is dropped "
            "(internal `_` columns such as `_id` are always kept).",
        )

        @field_validator("columns")
        @classmethod
        def _valid(cls, columns: list[str]) -> list[str]:
            seen: set[str] = set()
            for column in columns:
                if not column:
                    raise ValueError("a column name must not be empty")
                if column.startswith(RESERVED_PREFIX):
                    raise ValueError(
                        f"`{column}`: columns starting with `_` are internal and always kept; do not list them"
                    )
                if column in seen:
                    raise ValueError(f"column `{column}` is listed twice")
                seen.add(column)
            return columns

    def _kept(self, names) -> list[str]:
        return [*self.params.columns, *(n for n in names if n.startswith(RESERVED_PREFIX))]

    def required_columns(self) -> list[str]:
        return list(self.params.columns)

    def transform_schema(self, schema: dict[str, str]) -> dict[str, str]:
        # A listed column missing from `schema` is reported through `required_columns`.
        return {c: schema[c] for c in self._kept(schema) if c in schema}

    def written_columns(self) -> list[str]:
        return []

    def refine(self, batch: Batch) -> pa.Table:
        _missing(batch.table, self.params.columns, self.name)
        return batch.table.select(self._kept(batch.table.column_names))


class RenameColumnsRefiner(Refiner):
    """Rename columns, keeping their position, type and values.

    All renames apply at once, so `{a: b, b: a}` swaps two columns. Renaming onto a column that
    exists and is not itself renamed is refused by validation (it would overwrite it).

    Inputs:
        (none: the columns are the keys of `mapping`)
    Outputs:
        (none: the renamed columns are the values of `mapping`)
    Params:
        mapping: old name -> new name (at least one entry).
    """

    name = "rename_columns_refiner"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        mapping: dict[str, str] = Field(
            min_length=1,
            description="Old column name -> new column name; all renames apply at once.",
            examples=[{"content": "text"}],
        )

        @field_validator("mapping")
        @classmethod
        def _valid(cls, mapping: dict[str, str]) -> dict[str, str]:
            targets: dict[str, str] = {}
            for old, new in mapping.items():
                for name in (old, new):
                    if not name:
                        raise ValueError("a column name must not be empty")
                    if name.startswith(RESERVED_PREFIX):
                        raise ValueError(
                            f"`{name}`: columns starting with `_` are internal and cannot be renamed to or from"
                        )
                if old == new:
                    raise ValueError(f"`{old}` is renamed to itself")
                if new in targets:
                    raise ValueError(f"`{targets[new]}` and `{old}` are both renamed to `{new}`")
                targets[new] = old
            return mapping

    def required_columns(self) -> list[str]:
        return list(self.params.mapping)

    def transform_schema(self, schema: dict[str, str]) -> dict[str, str]:
        renamed = self.params.mapping
        targets = {renamed[c] for c in schema if c in renamed}
        out: dict[str, str] = {}
        for column, kind in schema.items():
            if column in renamed:
                out[renamed[column]] = kind
            elif column not in targets:  # else overwritten: validation reports it
                out[column] = kind
        return out

    def written_columns(self) -> list[str]:
        return list(self.params.mapping.values())

    def refine(self, batch: Batch) -> pa.Table:
        table = batch.table
        mapping = self.params.mapping
        _missing(table, mapping, self.name)
        names = [mapping.get(n, n) for n in table.column_names]
        duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
        if duplicates:
            raise DataflowError(
                f"{self.name}: renaming would create two columns named `{duplicates[0]}`",
                hint="rename onto a name that is not already a column",
            )
        return table.rename_columns(names)
