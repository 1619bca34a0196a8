"""Type-agnostic operators that work on any column."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import reasons


def format_bound(value: int | float) -> str:
    """A bound as a user wrote it: `10` rather than `10.0`, `0.5`, `inf`."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range
        return math.inf if value > 0 else -math.inf


class RangeFilter(Filter):
    """Keep rows whose numeric value lies within [min, max].

    Dropped rows get reasons built from the bound column, e.g. "`chars` < 10", "`chars` > 5000",
    "`chars` is null" (null is never in range) or "`score` is NaN" (NaN is never in range).
    Integer columns are compared exactly against integral bounds.

    Inputs:
        value: a numeric column (integer, floating point or decimal).
    Outputs:
        (none: rows are kept or dropped)
    Params:
        min: lower bound (omit for none).
        max: upper bound (omit for none); at least one of min and max is required.
        inclusive: the bounds themselves are in range (default true).
    """

    name = "range_filter"
    inputs = {"value": Port("numeric column to test")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        min: float | int | None = Field(
            None, description="Lower bound; rows below it are dropped. Omit for none."
        )
        max: float | int | None = Field(
            None, description="Upper bound; rows above it are dropped. Omit for none."
        )
        inclusive: bool = Field(True, description="Whether a value equal to a bound is kept.")

        @field_validator("min", "max")
        @classmethod
        def _not_nan(cls, value: int | float | None) -> int | float | None:
            if isinstance(value, float) and math.isnan(value):
                raise ValueError("a bound must be a number, not NaN")
            return value

        @model_validator(mode="after")
        def _consistent(self):
            if self.min is None and self.max is None:
                raise ValueError("give at least one of `min` and `max`")
            if self.min is not None and self.max is not None:
                if self.min > self.max:
                    raise ValueError(
                        f"`min` ({format_bound(self.min)}) is greater than `max` ({format_bound(self.max)})"
                    )
                if self.min == self.max and not self.inclusive:
                    raise ValueError(
                        f"`min` equals `max` ({format_bound(self.min)}) with `inclusive: false`: "
                        "no value can be in range"
                    )
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        column = self.input_columns["value"]
        below, above = ("<", ">") if self.params.inclusive else ("<=", ">=")
        self._null_reason = f"`{column}` is null"
        self._nan_reason = f"`{column}` is NaN"
        self._min_reason = (
            None if self.params.min is None else f"`{column}` {below} {format_bound(self.params.min)}"
        )
        self._max_reason = (
            None if self.params.max is None else f"`{column}` {above} {format_bound(self.params.max)}"
        )

    def filter(self, batch: Batch) -> Verdict:
        values = batch.column("value")
        kind = values.type
        if pa.types.is_dictionary(kind):
            values = values.dictionary_decode()
            kind = values.type
        if pa.types.is_null(kind):
            values = values.cast(pa.float64())
            kind = values.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            raise DataflowError(
                f"range_filter needs a numeric column, but `{self.input_columns['value']}` is {kind}",
                hint="bind `value` to a numeric column (e.g. `chars` from length_evaluator)",
            )
        conditions = [(pc.is_null(values), self._null_reason)]
        if pa.types.is_floating(kind):
            conditions.append((pc.is_nan(values).fill_null(False), self._nan_reason))
        inclusive = self.params.inclusive
        if self.params.min is not None:
            conditions.append((_beyond(values, self.params.min, "below", inclusive), self._min_reason))
        if self.params.max is not None:
            conditions.append((_beyond(values, self.params.max, "above", inclusive), self._max_reason))
        dropped = conditions[0][0]
        for condition, _ in conditions[1:]:
            dropped = pc.or_(dropped, condition)
        return Verdict(keep=pc.invert(dropped), reason=reasons(conditions, len(values)))


def _beyond(values: pa.Array, bound: int | float, side: str, inclusive: bool) -> pa.Array:
    """Rows strictly outside the range on `side` ("below" the min or "above" the max); null -> False."""
    kind = values.type
    if not pa.types.is_integer(kind):
        scalar = pa.scalar(_as_float(bound), pa.float64())
        if side == "below":
            compare = pc.less if inclusive else pc.less_equal
        else:
            compare = pc.greater if inclusive else pc.greater_equal
        return compare(values, scalar).fill_null(False)
    # Integers: compare exactly against an integral bound within the column type's range (a
    # float comparison would lose precision above 2**53 and Arrow refuses to cast such values).
    info = np.iinfo(np.dtype(str(kind)))  # not to_pandas_dtype(): that imports pandas (0.5 s)
    if side == "below":  # value < ceil(min), or value <= floor(min) i.e. value < floor(min) + 1
        limit = _integral(bound, math.ceil if inclusive else lambda b: math.floor(b) + 1)
        if limit <= info.min:
            return _constant(values, False)
        if limit > info.max:
            return _constant(values, True)
        return pc.less(values, pa.scalar(limit, kind)).fill_null(False)
    # value > floor(max), or value >= ceil(max) i.e. value > ceil(max) - 1
    limit = _integral(bound, math.floor if inclusive else lambda b: math.ceil(b) - 1)
    if limit >= info.max:
        return _constant(values, False)
    if limit < info.min:
        return _constant(values, True)
    return pc.greater(values, pa.scalar(limit, kind)).fill_null(False)


def _integral(bound: int | float, rounding) -> int | float:
    return bound if isinstance(bound, float) and math.isinf(bound) else rounding(bound)


def _constant(values: pa.Array, value: bool) -> pa.Array:
    """`value` for every non-null row, False for nulls."""
    if not value:
        return pa.array(np.zeros(len(values), bool))
    return pc.is_valid(values)
