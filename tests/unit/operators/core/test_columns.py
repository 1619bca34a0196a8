import pyarrow as pa
import pytest
from dataflow_operators.core.columns import RenameColumnsRefiner, SelectColumnsRefiner
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch


def table():
    return pa.table(
        {
            "_id": ["0", "1", "2"],
            "a": [1, 2, None],
            "b": ["x", None, "日本😀"],
            "c": [1.5, 2.5, 3.5],
            "_meta": ["m0", "m1", "m2"],
        }
    )


def refine(op, data):
    out = op.process(Batch(data, op.input_columns))
    assert isinstance(out, pa.Table)
    assert out.num_rows == data.num_rows
    return out


# --- select_columns_refiner ---


def test_select_keeps_listed_columns_in_order_then_internal_ones():
    op = SelectColumnsRefiner(SelectColumnsRefiner.Params(columns=["c", "a"]))
    out = refine(op, table())
    assert out.column_names == ["c", "a", "_id", "_meta"]
    assert out.to_pydict() == {
        "c": [1.5, 2.5, 3.5],
        "a": [1, 2, None],
        "_id": ["0", "1", "2"],
        "_meta": ["m0", "m1", "m2"],
    }


def test_select_column_flow():
    op = SelectColumnsRefiner(SelectColumnsRefiner.Params(columns=["c", "a"]))
    assert op.required_columns() == ["c", "a"]
    assert op.written_columns() == []
    schema = {"_id": "string", "a": "int64", "b": "string", "c": "double"}
    assert op.transform_schema(schema) == {"c": "double", "a": "int64", "_id": "string"}
    assert list(op.transform_schema(schema)) == ["c", "a", "_id"]
    # A missing column is reported through required_columns, not by transform_schema.
    assert op.transform_schema({"a": "int64"}) == {"a": "int64"}


def test_select_on_an_empty_and_a_chunked_table():
    op = SelectColumnsRefiner(SelectColumnsRefiner.Params(columns=["b"]))
    assert refine(op, table().slice(0, 0)).column_names == ["b", "_id", "_meta"]
    chunked = pa.concat_tables([table(), table()])
    assert refine(op, chunked).column("b").to_pylist() == ["x", None, "日本😀"] * 2


def test_select_missing_column_at_run_time():
    op = SelectColumnsRefiner(SelectColumnsRefiner.Params(columns=["a", "bb"]))
    with pytest.raises(DataflowError, match=r"column `bb` is not in the batch; did you mean `b`\?"):
        refine(op, table())


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([], "at least 1 item"),
        (["a", "a"], "column `a` is listed twice"),
        (["_id"], "`_id`: columns starting with `_` are internal and always kept"),
        ([""], "a column name must not be empty"),
    ],
)
def test_select_params_validation(columns, message):
    with pytest.raises(ValidationError, match=message):
        SelectColumnsRefiner.Params(columns=columns)


def test_select_params_forbid_extra():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SelectColumnsRefiner.Params(columns=["a"], drop=["b"])


# --- rename_columns_refiner ---


def test_rename_keeps_position_type_and_values():
    op = RenameColumnsRefiner(RenameColumnsRefiner.Params(mapping={"a": "count", "b": "text"}))
    out = refine(op, table())
    assert out.column_names == ["_id", "count", "text", "c", "_meta"]
    assert out.schema.field("count").type == pa.int64()
    assert out.column("text").to_pylist() == ["x", None, "日本😀"]


def test_rename_swaps_at_once():
    op = RenameColumnsRefiner(RenameColumnsRefiner.Params(mapping={"a": "b", "b": "a"}))
    out = refine(op, table())
    assert out.column_names == ["_id", "b", "a", "c", "_meta"]
    assert out.column("a").to_pylist() == ["x", None, "日本😀"]
    assert op.transform_schema({"a": "int64", "b": "string"}) == {"b": "int64", "a": "string"}


def test_rename_column_flow():
    op = RenameColumnsRefiner(RenameColumnsRefiner.Params(mapping={"a": "count"}))
    assert op.required_columns() == ["a"]
    assert op.written_columns() == ["count"]
    schema = {"_id": "string", "a": "int64", "b": "string"}
    assert list(op.transform_schema(schema).items()) == [
        ("_id", "string"),
        ("count", "int64"),
        ("b", "string"),
    ]
    # Onto an existing column (validation refuses it as an overwrite): the renamed column replaces it.
    op = RenameColumnsRefiner(RenameColumnsRefiner.Params(mapping={"a": "b"}))
    assert op.transform_schema(schema) == {"_id": "string", "b": "int64"}
    # A missing source is reported through required_columns; transform_schema ignores it.
    assert op.transform_schema({"x": "int64"}) == {"x": "int64"}


def test_rename_errors_at_run_time():
    op = RenameColumnsRefiner(RenameColumnsRefiner.Params(mapping={"a": "b"}))
    with pytest.raises(DataflowError, match="renaming would create two columns named `b`"):
        refine(op, table())
    op = RenameColumnsRefiner(RenameColumnsRefiner.Params(mapping={"cc": "d"}))
    with pytest.raises(DataflowError, match=r"column `cc` is not in the batch; did you mean `c`\?"):
        refine(op, table())


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({}, "at least 1 item"),
        ({"a": "a"}, "`a` is renamed to itself"),
        ({"a": "x", "b": "x"}, "`a` and `b` are both renamed to `x`"),
        ({"_id": "id"}, "`_id`: columns starting with `_` are internal"),
        ({"a": "_a"}, "`_a`: columns starting with `_` are internal"),
        ({"a": ""}, "a column name must not be empty"),
        ({"a": 1}, "valid string"),
    ],
)
def test_rename_params_validation(mapping, message):
    with pytest.raises(ValidationError, match=message):
        RenameColumnsRefiner.Params(mapping=mapping)
