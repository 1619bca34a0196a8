import decimal
import math

import pyarrow as pa
import pytest
from dataflow_operators.core.range_filter import RangeFilter, format_bound
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch


def run(values, column="chars", type=None, **params):
    op = RangeFilter(RangeFilter.Params(**params), inputs={"value": column})
    table = pa.table({column: pa.array(values, type), "_id": [str(i) for i in range(len(values))]})
    verdict = op.process(Batch(table, op.input_columns))
    keep = pa.array(verdict.keep)
    assert keep.type == pa.bool_() and keep.null_count == 0 and len(keep) == len(values)
    return keep.to_pylist(), pa.array(verdict.reason, pa.string()).to_pylist()


def test_inclusive_range_with_reasons():
    keep, reason = run([5, 10, 50, 5000, 5001, None], min=10, max=5000)
    assert keep == [False, True, True, True, False, False]
    assert reason == ["`chars` < 10", None, None, None, "`chars` > 5000", "`chars` is null"]


def test_exclusive_range():
    keep, reason = run([10, 11, 4999, 5000], min=10, max=5000, inclusive=False)
    assert keep == [False, True, True, False]
    assert reason == ["`chars` <= 10", None, None, "`chars` >= 5000"]


def test_one_sided_bounds():
    assert run([0, 1, 2], min=1) == ([False, True, True], ["`chars` < 1", None, None])
    assert run([0, 1, 2], max=1) == ([True, True, False], [None, None, "`chars` > 1"])


def test_floats_nan_and_null_are_never_in_range():
    keep, reason = run([0.5, math.nan, None, 1.0, -0.0], column="score", min=0, max=1)
    assert keep == [True, False, False, True, True]
    assert reason == [None, "`score` is NaN", "`score` is null", None, None]


def test_fractional_and_infinite_bounds():
    assert run([0.2, 0.3], column="x", min=0.25) == ([False, True], ["`x` < 0.25", None])
    assert run([1, 10**12], column="x", min=-math.inf, max=math.inf) == ([True, True], [None, None])
    assert run([1, 2], column="x", min=1.5) == ([False, True], ["`x` < 1.5", None])


def test_large_integers_compare_exactly():
    big = 2**53
    keep, _ = run([big, big + 1], column="n", max=big)
    assert keep == [True, False]


@pytest.mark.parametrize(
    ("values", "type"),
    [
        ([1, 3, 200], pa.uint64()),
        ([1, 3, 120], pa.int8()),
        ([1.0, 3.0, 200.0], pa.float32()),
        ([decimal.Decimal("1.5"), decimal.Decimal("3"), decimal.Decimal("200.25")], pa.decimal128(10, 2)),
    ],
)
def test_numeric_types(values, type):
    assert run(values, type=type, min=2, max=100)[0] == [False, True, False]


def test_all_null_and_empty_batches():
    assert run([None, None], type=pa.null(), min=0) == ([False, False], ["`chars` is null"] * 2)
    assert run([], type=pa.int64(), min=0) == ([], [])


def test_rejects_a_non_numeric_column():
    with pytest.raises(DataflowError, match="range_filter needs a numeric column, but `chars` is string"):
        run(["1", "2"], min=0)
    with pytest.raises(DataflowError, match="is bool"):
        run([True], min=0)


def test_column_flow():
    op = RangeFilter(RangeFilter.Params(min=1), inputs={"value": "words"})
    assert op.required_columns() == ["words"]
    assert op.written_columns() == []
    assert op.transform_schema({"words": "int64"}) == {"words": "int64"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give at least one of `min` and `max`"),
        ({"min": None, "max": None}, "give at least one of `min` and `max`"),
        ({"min": 10, "max": 5}, r"`min` \(10\) is greater than `max` \(5\)"),
        ({"min": 3, "max": 3, "inclusive": False}, "no value can be in range"),
        ({"min": math.nan}, "a bound must be a number, not NaN"),
        ({"min": "ten"}, "valid number"),
        ({"min": 1, "lo": 2}, "Extra inputs are not permitted"),
    ],
)
def test_params_validation(params, message):
    with pytest.raises(ValidationError, match=message):
        RangeFilter.Params(**params)


def test_equal_bounds_inclusive_is_allowed():
    assert run([2, 3, 4], min=3, max=3)[0] == [False, True, False]


def test_format_bound():
    assert [format_bound(v) for v in (10.0, -3.0, 0.25, math.inf, -math.inf, 1e20)] == [
        "10",
        "-3",
        "0.25",
        "inf",
        "-inf",
        "1e+20",
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"min": 1.5}, [False, False, True, True, True]),
        ({"min": 1.5, "inclusive": False}, [False, False, True, True, True]),
        ({"min": 2, "inclusive": False}, [False, False, False, True, True]),
        ({"max": 2.5}, [True, True, True, False, False]),
        ({"max": 3, "inclusive": False}, [True, True, True, False, False]),
        ({"min": -1e30, "max": 1e30}, [True] * 5),
        ({"min": 1e30}, [False] * 5),
        ({"max": -1e30}, [False] * 5),
        ({"min": -math.inf, "max": math.inf, "inclusive": False}, [True] * 5),
    ],
)
@pytest.mark.parametrize("type", [pa.int8(), pa.uint8(), pa.int64(), pa.uint64()])
def test_integer_columns_against_any_bound(params, expected, type):
    assert run([0, 1, 2, 3, 4], type=type, **params)[0] == expected


def test_uint64_beyond_float_precision():
    top = 2**64 - 1
    assert run([top, top - 1, 0], type=pa.uint64(), min=2**63, max=2**64) == (
        [True, True, False],
        [None, None, "`chars` < 9223372036854775808"],
    )
    assert run([top, None], type=pa.uint64(), max=2**63)[1] == [
        "`chars` > 9223372036854775808",
        "`chars` is null",
    ]


def test_integer_bounds_stay_exact():
    params = RangeFilter.Params(min=10, max=2**64 - 1)
    assert params.min == 10 and isinstance(params.min, int)
    assert params.max == 2**64 - 1
    assert run([2**64 - 1], type=pa.uint64(), max=2**64 - 2) == ([False], ["`chars` > 18446744073709551614"])
    assert run([1.0, 2.0], column="x", max=10**400) == ([True, True], [None, None])
