"""What the format readers share: input errors with locations, UTF-8 checks, type rules, and
fitting a table to the one schema of a read.

The type rule: a column keeps one type for the whole input, and only lossless promotions
are made silently (what `promotes` accepts: null to any type, a narrower number to a wider
one, integers to float64 when every value is exact, string to large string, an object
gaining fields). A value of any other type is an `InputError` at its location, whether it
sits in a later block of the same file or in another file of a glob.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from dataflow_cli.errors import InputError

# Bytes handed to one pyarrow parse call for JSONL and CSV. It bounds memory and is also the
# sample from which column types are inferred, so it is generous. Tests shrink it; readers
# look it up at call time (`_shared.BLOCK_BYTES`) for that reason.
BLOCK_BYTES = 16 << 20

UTF8_BOM = b"\xef\xbb\xbf"
REENCODE_HINT = "re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.jsonl > out.jsonl`"

# locate(column, type) -> location of the first value of `column` that does not fit `type`
# (type None: of the first value at all), for error messages.
Locate = Callable[[str, pa.DataType | None], str]


# --------------------------------------------------------------------------- errors and locations


@contextmanager
def reading(path: Path) -> Iterator[None]:
    # A file that vanished or became unreadable after expand_inputs is still the user's problem.
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror or exc}", location=str(path)) from None


def short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    text = lines[0]
    return text if len(text) <= 200 else text[:197] + "..."


def line_col(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of character `position` in `text`."""
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1


def utf8_error(path: Path, data: bytes, position: int, first_line: int) -> InputError:
    line = first_line + data.count(b"\n", 0, position)
    column = position - (data.rfind(b"\n", 0, position) + 1) + 1
    return InputError(
        f"file is not valid UTF-8 (byte 0x{data[position]:02x} at column {column})",
        hint=REENCODE_HINT,
        location=f"{path}:{line}",
    )


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            yield line_no, raw.removeprefix(UTF8_BOM) if line_no == 1 else raw


def decoded_lines(path: Path, lines: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, str]]:
    for line_no, raw in lines:
        try:
            yield line_no, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise utf8_error(path, raw, exc.start, line_no) from None


def json_kind(value: object) -> str:
    # Names as pyarrow's JSON reader uses them in its messages.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def kind_phrase(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def reject_duplicate_columns(path: Path, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                f"column `{name}` appears twice",
                hint="give every column a distinct name",
                location=str(path),
            )
        seen.add(name)


def late_field(name: str, location: str) -> InputError:
    return InputError(
        f"field `{name}` first appears here, after the first rows had fixed the columns",
        hint="add the field (null is fine) to an early record, or convert the input to Parquet",
        location=location,
    )


# --------------------------------------------------------------------------- types


def promotes(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether values of `source` may become `target` without changing what they say.

    Exactness of each value (an integer above 2**53 does not fit a float64) is left to
    pyarrow's safe cast, which raises for such a value.
    """
    if pa.types.is_dictionary(source):
        source = source.value_type  # categorical values: decoding them loses nothing
    if source == target or pa.types.is_null(source):
        return True
    try:
        unified = pa.unify_schemas(
            [pa.schema([("x", target)]), pa.schema([("x", source)])], promote_options="permissive"
        )
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return False
    return unified.field("x").type == target


def is_number(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)


def nulls_as_strings(type_: pa.DataType) -> pa.DataType:
    return map_leaf_types(type_, lambda leaf: pa.string() if pa.types.is_null(leaf) else leaf)


def decoded(type_: pa.DataType) -> pa.DataType:
    # Dictionary encoding (e.g. a pandas categorical in Parquet) is storage, not a type of its
    # own: files that encode a column and files that do not must still agree.
    return map_leaf_types(type_, lambda leaf: leaf.value_type if pa.types.is_dictionary(leaf) else leaf)


def temporal_as_strings(type_: pa.DataType) -> pa.DataType:
    # pyarrow parses ISO-looking text in CSV/JSON as dates/timestamps; text data must stay text.
    return map_leaf_types(type_, lambda leaf: pa.string() if pa.types.is_temporal(leaf) else leaf)


def map_leaf_types(type_: pa.DataType, leaf: Callable[[pa.DataType], pa.DataType]) -> pa.DataType:
    if pa.types.is_struct(type_):
        return pa.struct(
            [
                type_.field(i).with_type(map_leaf_types(type_.field(i).type, leaf))
                for i in range(type_.num_fields)
            ]
        )
    if pa.types.is_large_list(type_):
        return pa.large_list(type_.value_field.with_type(map_leaf_types(type_.value_type, leaf)))
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(map_leaf_types(type_.value_type, leaf)))
    if pa.types.is_nested(type_):
        return type_
    return leaf(type_)


def schema_map(schema: pa.Schema, convert: Callable[[pa.DataType], pa.DataType]) -> pa.Schema:
    return pa.schema([field.with_type(convert(field.type)) for field in schema])


# --------------------------------------------------------------------------- fitting tables to the schema


def conform(table: pa.Table, schema: pa.Schema, locate: Locate) -> pa.Table:
    """Reorder/cast `table` to `schema`, adding all-null columns for fields it lacks."""
    if table.schema.equals(schema):
        return table
    for name in table.column_names:
        if schema.get_field_index(name) < 0:
            raise late_field(name, locate(name, None))
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type != field.type:
            column = _cast_column(column, field, locate)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _cast_column(column: pa.ChunkedArray, field: pa.Field, locate: Locate) -> pa.ChunkedArray:
    if _drops_struct_fields(column.type, field.type):
        raise late_field(field.name, locate(field.name, None))
    if promotes(column.type, field.type):
        try:
            return column.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # a value that is not exact in the wider type, e.g. an integer above 2**53
    numbers = is_number(column.type) and is_number(field.type)
    raise InputError(
        f"column `{field.name}` was typed {field.type} from the first rows, but holds "
        f"{'this value' if numbers else column.type} here",
        hint="write the column's numbers the same way from the first row on (1.0 rather than 1 for "
        "decimals), or convert the input to Parquet with explicit types"
        if numbers
        else "give the column one type throughout the input (null is fine for missing values)",
        location=locate(field.name, field.type),
    ) from None


def _drops_struct_fields(source: pa.DataType, target: pa.DataType) -> bool:
    # pyarrow silently drops struct fields missing from the cast target; that would lose data.
    if pa.types.is_struct(source) and pa.types.is_struct(target):
        target_names = {target.field(i).name: target.field(i).type for i in range(target.num_fields)}
        for i in range(source.num_fields):
            child = source.field(i)
            if child.name not in target_names or _drops_struct_fields(child.type, target_names[child.name]):
                return True
    if (pa.types.is_list(source) or pa.types.is_large_list(source)) and (
        pa.types.is_list(target) or pa.types.is_large_list(target)
    ):
        return _drops_struct_fields(source.value_type, target.value_type)
    return False


def fits(value: object, type_: pa.DataType) -> bool:
    """Whether one Python value read from JSON/CSV fits a column of `type_` under the type rule."""
    try:
        array = pa.array([value])
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return False
    if _drops_struct_fields(array.type, type_) or not promotes(array.type, type_):
        return False
    try:
        array.cast(type_)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return False
    return True
