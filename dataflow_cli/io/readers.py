"""Read Parquet, JSON Lines, JSON and CSV inputs as a stream of equally sized Arrow tables.

Everything here streams: Parquet row groups, CSV blocks and JSONL blocks of whole lines are parsed
by pyarrow's C++ readers and re-chunked into `batch_size`-row tables, so memory stays bounded
whatever the input size. Only JSON array files are read whole.

All tables of one `iter_batches` call share one schema. It is fixed before the first table is
produced from each file's cheap-to-read head (Parquet footer, first CSV/JSONL block, whole JSON
file) so that a column appearing only in a later file is still known up front.

Bad input never surfaces as a pyarrow/json/codec exception: it becomes an `InputError` with a
one-line reason and a `file:line[:col]` location. pyarrow's messages rarely say where the problem
is, so when it fails we re-scan the offending block (or file) in Python just to find the line.
"""

from __future__ import annotations

import csv
import glob
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from dataflow_cli.errors import InputError, SpecError, did_you_mean

FORMATS = ("parquet", "jsonl", "json", "csv")

_SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}

# Bytes handed to one pyarrow parse call for JSONL and CSV. It bounds memory and is also the
# sample from which column types are inferred, so it is generous. Tests shrink it.
BLOCK_BYTES = 16 << 20

_UTF8_BOM = b"\xef\xbb\xbf"
_GLOB_CHARS = re.compile(r"[*?\[]")
_REENCODE_HINT = "re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 in.jsonl > out.jsonl`"
_JSONL_HINT = 'every line of a .jsonl file must be one JSON object, e.g. {"text": "..."}'


# --------------------------------------------------------------------------- paths and formats


def format_for(path: Path) -> str:
    """Return the format name for `path` from its suffix, or raise `SpecError`."""
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        supported = ", ".join(f"`{suffix}`" for suffix in _SUFFIXES)
        raise SpecError(
            f"cannot tell the format of `{path}` from its suffix; supported suffixes are {supported}",
            hint="rename the file so that its suffix says what it contains",
        )
    return fmt


def expand_inputs(pattern: str, base_dir: Path) -> list[Path]:
    """Resolve a path or glob (`*`, `**`, `?`) against `base_dir` into a sorted list of files."""
    given = Path(pattern).expanduser()
    full = given if given.is_absolute() else Path(base_dir) / given
    if _GLOB_CHARS.search(pattern):
        files = _glob_files(str(given), Path(base_dir))
        if not files:
            raise _not_found(pattern, full, Path(base_dir), "no file matches")
    elif full.is_dir():
        raise InputError(
            f"input `{pattern}` is a directory, not a file",
            hint=f"to read the files in it use a glob such as `{pattern.rstrip('/')}/*.jsonl`",
        )
    elif not full.is_file():
        raise _not_found(pattern, full, Path(base_dir), "no such file")
    else:
        files = [full]
    for path in files:
        format_for(path)
    return files


def _glob_files(pattern: str, base_dir: Path) -> list[Path]:
    # root_dir keeps glob characters in base_dir itself from being interpreted.
    if Path(pattern).is_absolute():
        matches = [Path(match) for match in glob.glob(pattern, recursive=True)]
    else:
        matches = [base_dir / match for match in glob.glob(pattern, root_dir=base_dir, recursive=True)]
    return sorted(path for path in matches if path.is_file())


def _not_found(pattern: str, full: Path, base_dir: Path, why: str) -> InputError:
    parent = full.parent
    if not _GLOB_CHARS.search(str(parent)) and not parent.is_dir():
        detail = f"directory `{parent}` does not exist"
    else:
        try:
            siblings = [entry.name for entry in parent.iterdir()]
        except OSError:
            siblings = []
        detail = f"{why} in `{parent}`{did_you_mean(full.name, siblings)}"
    hint = detail if Path(pattern).is_absolute() else f"{detail}; relative paths start at `{base_dir}`"
    return InputError(f"input file `{pattern}` not found", hint=hint)


# --------------------------------------------------------------------------- read_schema


def read_schema(paths: list[Path]) -> dict[str, str]:
    """Map column name to Arrow type string, from each file's head only (no data is read).

    CSV columns are all reported as "string": the result is meant for column-existence checks.
    """
    columns: dict[str, str] = {}
    for path in paths:
        with _reading(path):
            peeked = _peek_columns(Path(path))
        for name, type_name in peeked.items():
            if columns.get(name, "null") == "null":
                columns[name] = type_name
    if not columns:
        raise _no_rows(paths)
    return columns


def _peek_columns(path: Path) -> dict[str, str]:
    if _is_empty_file(path):
        return {}
    fmt = format_for(path)
    if fmt == "parquet":
        schema = _parquet_schema(path)
    elif fmt == "csv":
        return dict.fromkeys(_csv_header(path) or [], "string")
    elif fmt == "jsonl":
        schema = _first_jsonl_record_schema(path)
    else:
        records = _load_json_array(path)
        schema = _records_to_table(path, records[:1]).schema
    return {field.name: str(field.type) for field in schema}


def _first_jsonl_record_schema(path: Path) -> pa.Schema:
    for line_no, raw in _numbered_lines(path):
        if raw.strip():
            return _parse_jsonl_block(path, raw, line_no, None).schema
    return pa.schema([])


# --------------------------------------------------------------------------- iter_batches


def iter_batches(paths: list[Path], batch_size: int, limit: int | None = None) -> Iterator[pa.Table]:
    """Stream every row of `paths` in order as tables of exactly `batch_size` rows (the last may be
    shorter), all with one schema; stop after `limit` rows when given.

    Tables may span file boundaries and may consist of several chunks.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    paths = [Path(path) for path in paths]
    if not paths:
        raise InputError("no input files given")
    if limit is not None and limit <= 0:
        return
    schema = _unified_schema(paths)
    rechunker = _Rechunker(batch_size)
    remaining = limit
    for path in paths:
        with _reading(path):
            for table in _iter_file(path, schema, batch_size):
                if remaining is not None and table.num_rows >= remaining:
                    yield from rechunker.push(table.slice(0, remaining))
                    yield from rechunker.flush()
                    return
                if remaining is not None:
                    remaining -= table.num_rows
                yield from rechunker.push(table)
    if rechunker.total_rows == 0:
        raise _no_rows(paths)
    yield from rechunker.flush()


class _Rechunker:
    """Collects tables and hands them back in slices of exactly `size` rows (zero-copy)."""

    def __init__(self, size: int):
        self.size = size
        self.total_rows = 0
        self._parts: list[pa.Table] = []
        self._rows = 0

    def push(self, table: pa.Table) -> Iterator[pa.Table]:
        if table.num_rows == 0:
            return
        self.total_rows += table.num_rows
        self._parts.append(table)
        self._rows += table.num_rows
        if self._rows < self.size:
            return
        whole = pa.concat_tables(self._parts) if len(self._parts) > 1 else self._parts[0]
        offset = 0
        while self._rows - offset >= self.size:
            yield whole.slice(offset, self.size)
            offset += self.size
        rest = whole.slice(offset)
        self._parts = [rest] if rest.num_rows else []
        self._rows = rest.num_rows

    def flush(self) -> Iterator[pa.Table]:
        if self._rows:
            yield pa.concat_tables(self._parts) if len(self._parts) > 1 else self._parts[0]
        self._parts, self._rows = [], 0


def _iter_file(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    if _is_empty_file(path):
        return
    fmt = format_for(path)
    if fmt == "parquet":
        yield from _iter_parquet(path, schema, batch_size)
    elif fmt == "csv":
        yield from _iter_csv(path, schema)
    elif fmt == "jsonl":
        yield from _iter_jsonl(path, schema)
    else:
        table = _records_to_table(path, _load_json_array(path))
        yield _conform(table, schema, lambda name, type_: str(path))


def _is_empty_file(path: Path) -> bool:
    return path.stat().st_size == 0


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    # A file that vanished or became unreadable after expand_inputs is still the user's problem.
    try:
        yield
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror or exc}", location=str(path)) from None


def _no_rows(paths: list[Path]) -> InputError:
    hint = "check that the input is the file you meant and that it is not empty"
    if len(paths) == 1:
        return InputError(f"input `{paths[0]}` has no rows", hint=hint, location=str(paths[0]))
    more = len(paths) - 1
    return InputError(f"input `{paths[0]}` (and {more} more file{'s' * (more > 1)}) has no rows", hint=hint)


# --------------------------------------------------------------------------- one schema for all files


def _unified_schema(paths: list[Path]) -> pa.Schema:
    """Merge the schema of every file's head; columns typed null everywhere become strings.

    Nothing is yielded before this is known, so a column first seen in a later file, or a column
    that is null in one file and text in another, still ends up with one type for all tables.
    A column that is null throughout every sampled head is typed string: later values are then
    cast to text rather than lost.
    """
    merged: pa.Schema | None = None
    origin: dict[str, Path] = {}
    for path in paths:
        with _reading(path):
            schema = _file_schema(path)
        if schema is None:
            continue
        _reject_duplicate_columns(path, schema.names)
        merged = schema if merged is None else _merge_schemas(merged, schema, origin, path)
        for name in schema.names:
            origin.setdefault(name, path)
    if merged is None:
        raise _no_rows(paths)
    return pa.schema([field.with_type(_nulls_as_strings(field.type)) for field in merged])


def _file_schema(path: Path) -> pa.Schema | None:
    if _is_empty_file(path):
        return None
    fmt = format_for(path)
    if fmt == "parquet":
        return _parquet_schema(path)
    if fmt == "csv":
        return _csv_schema(path)
    if fmt == "jsonl":
        head = next(_jsonl_blocks(path), None)
        return None if head is None else _parse_jsonl_block(path, head[1], head[0], None).schema
    return _records_to_table(path, _load_json_array(path)).schema


def _merge_schemas(merged: pa.Schema, schema: pa.Schema, origin: dict[str, Path], path: Path) -> pa.Schema:
    try:
        return pa.unify_schemas([merged, schema], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    # Scalars that disagree (a number here, text there) meet as text; anything else is an error.
    left, right = list(merged), list(schema)
    for i, field in enumerate(left):
        j = schema.get_field_index(field.name)
        if j < 0 or _types_merge(field.type, right[j].type):
            continue
        if not (_is_flat(field.type) and _is_flat(right[j].type)):
            raise InputError(
                f"column `{field.name}` is {field.type} in `{origin[field.name]}` but {right[j].type} here",
                hint="make the column hold the same kind of value in every input file",
                location=str(path),
            )
        text = pa.large_string() if _is_large(field.type, right[j].type) else pa.string()
        left[i], right[j] = field.with_type(text), right[j].with_type(text)
    return pa.unify_schemas([pa.schema(left), pa.schema(right)], promote_options="permissive")


def _types_merge(left: pa.DataType, right: pa.DataType) -> bool:
    try:
        pa.unify_schemas([pa.schema([("x", left)]), pa.schema([("x", right)])], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return False
    return True


def _is_flat(type_: pa.DataType) -> bool:
    return not pa.types.is_nested(type_)


def _is_large(*types: pa.DataType) -> bool:
    return any(pa.types.is_large_string(type_) or pa.types.is_large_binary(type_) for type_ in types)


def _nulls_as_strings(type_: pa.DataType) -> pa.DataType:
    return _map_leaf_types(type_, lambda leaf: pa.string() if pa.types.is_null(leaf) else leaf)


def _temporal_as_strings(type_: pa.DataType) -> pa.DataType:
    # pyarrow parses ISO-looking text in CSV/JSON as dates/timestamps; text data must stay text.
    return _map_leaf_types(type_, lambda leaf: pa.string() if pa.types.is_temporal(leaf) else leaf)


def _map_leaf_types(type_: pa.DataType, leaf: Callable[[pa.DataType], pa.DataType]) -> pa.DataType:
    if pa.types.is_struct(type_):
        return pa.struct(
            [
                type_.field(i).with_type(_map_leaf_types(type_.field(i).type, leaf))
                for i in range(type_.num_fields)
            ]
        )
    if pa.types.is_large_list(type_):
        return pa.large_list(type_.value_field.with_type(_map_leaf_types(type_.value_type, leaf)))
    if pa.types.is_list(type_):
        return pa.list_(type_.value_field.with_type(_map_leaf_types(type_.value_type, leaf)))
    if pa.types.is_nested(type_):
        return type_
    return leaf(type_)


def _schema_map(schema: pa.Schema, convert: Callable[[pa.DataType], pa.DataType]) -> pa.Schema:
    return pa.schema([field.with_type(convert(field.type)) for field in schema])


def _reject_duplicate_columns(path: Path, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                f"column `{name}` appears twice",
                hint="give every column a distinct name",
                location=str(path),
            )
        seen.add(name)


def _conform(
    table: pa.Table, schema: pa.Schema, locate: Callable[[str, pa.DataType | None], str]
) -> pa.Table:
    """Reorder/cast `table` to `schema`, adding all-null columns for fields it lacks.

    `locate(column, type)` names the place of the first value of `column` that does not fit
    `type` (None: the first value at all), for the error message.
    """
    if table.schema.equals(schema):
        return table
    for name in table.column_names:
        if schema.get_field_index(name) < 0:
            raise _late_field(name, locate(name, None))
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


def _cast_column(column: pa.ChunkedArray, field: pa.Field, locate) -> pa.ChunkedArray:
    if _drops_struct_fields(column.type, field.type):
        raise _late_field(field.name, locate(field.name, None))
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise InputError(
            f"column `{field.name}` was typed {field.type} from the first rows, but this value does not fit",
            hint="write the column's values with one consistent type (e.g. 1.0 rather than 1 for numbers)",
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


def _late_field(name: str, location: str) -> InputError:
    return InputError(
        f"field `{name}` first appears here, after the first rows had fixed the columns",
        hint="add the field (null is fine) to an early record, or convert the input to Parquet",
        location=location,
    )


# --------------------------------------------------------------------------- Parquet


def _parquet_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path).remove_metadata()
    except (pa.ArrowException, OSError) as exc:
        raise _bad_parquet(path, exc) from None


def _iter_parquet(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    try:
        # Buffered column reads: memory stays bounded by batch size, not by row-group size.
        parquet_file = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
        batches = parquet_file.iter_batches(batch_size=batch_size)
    except (pa.ArrowException, OSError) as exc:
        raise _bad_parquet(path, exc) from None
    try:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise _bad_parquet(path, exc) from None
            yield _conform(pa.Table.from_batches([batch]), schema, lambda name, type_: str(path))
    finally:
        parquet_file.close()


def _bad_parquet(path: Path, exc: BaseException) -> InputError:
    return InputError(
        f"not a readable Parquet file: {_short(exc)}",
        hint="the file may be truncated or not Parquet at all; re-create it",
        location=str(path),
    )


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    text = lines[0]
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------- CSV


def _csv_schema(path: Path) -> pa.Schema | None:
    header = _csv_header(path)
    if not header:
        return None
    _reject_duplicate_columns(path, header)
    try:
        reader = pa_csv.open_csv(
            path, read_options=_csv_read_options(), convert_options=_csv_convert_options()
        )
    except pa.ArrowException as exc:
        raise _locate_csv_error(path, exc) from None
    schema = reader.schema
    reader.close()
    if any(pa.types.is_binary(field.type) for field in schema):
        # pyarrow types a column with invalid UTF-8 as binary instead of failing.
        raise _locate_csv_error(path, pa.ArrowInvalid("invalid UTF8 data"))
    return _schema_map(schema, _temporal_as_strings)


def _csv_header(path: Path) -> list[str] | None:
    _raise_csv_field_limit()
    lines = (text for _, text in _decoded_lines(path, _numbered_lines(path)))
    return next(csv.reader(lines), None)


def _csv_read_options() -> pa_csv.ReadOptions:
    return pa_csv.ReadOptions(block_size=BLOCK_BYTES)


def _csv_convert_options(schema: pa.Schema | None = None) -> pa_csv.ConvertOptions:
    # Only an unquoted empty field is null: words like "NA" or "None" are text, and a quoted ""
    # stays an empty string, so nulls and empty strings both survive a CSV round trip.
    return pa_csv.ConvertOptions(
        column_types={field.name: field.type for field in schema or []},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )


def _iter_csv(path: Path, schema: pa.Schema) -> Iterator[pa.Table]:
    try:
        reader = pa_csv.open_csv(
            path, read_options=_csv_read_options(), convert_options=_csv_convert_options(schema)
        )
    except pa.ArrowException as exc:
        raise _locate_csv_error(path, exc) from None
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowException as exc:
                raise _locate_csv_error(path, exc) from None
            yield _conform(pa.Table.from_batches([batch]), schema, lambda name, type_: str(path))
    finally:
        reader.close()


_CSV_CONVERSION = re.compile(r"column #(\d+): CSV conversion error to (.+?): invalid value '(.*)'", re.S)


def _locate_csv_error(path: Path, exc: BaseException) -> InputError:
    """Find, with Python's csv module, the line pyarrow choked on (its messages have no line)."""
    _raise_csv_field_limit()
    reader = csv.reader(text for _, text in _decoded_lines(path, _numbered_lines(path)))
    header = next(reader, None) or []
    conversion = _CSV_CONVERSION.search(str(exc))
    row_start = reader.line_num + 1
    for row in reader:
        if row and len(row) != len(header):
            return InputError(
                f"row has {len(row)} fields but the header has {len(header)}",
                hint="quote fields that contain the delimiter, and give every row the same number of fields",
                location=f"{path}:{row_start}",
            )
        if conversion and row and row[int(conversion[1])] == conversion[3]:
            column = header[int(conversion[1])]
            return InputError(
                f"column `{column}` was typed {conversion[2]} from the first rows, but holds {conversion[3]!r} here",
                hint="make the column's values consistent, or convert the input to JSONL/Parquet with explicit types",
                location=f"{path}:{row_start}",
            )
        row_start = reader.line_num + 1
    return InputError(f"cannot parse CSV: {_short(exc)}", location=str(path))


def _raise_csv_field_limit() -> None:
    # Python's csv module refuses fields over 128 KiB by default; huge text cells are legitimate.
    if csv.field_size_limit() < sys.maxsize // 2:
        csv.field_size_limit(min(sys.maxsize, 2**62))


# --------------------------------------------------------------------------- JSON Lines


def _iter_jsonl(path: Path, schema: pa.Schema) -> Iterator[pa.Table]:
    for first_line, data in _jsonl_blocks(path):
        table = _parse_jsonl_block(path, data, first_line, schema)

        def locate(name: str, type_: pa.DataType | None, data=data, first_line=first_line) -> str:
            return _first_line_with(path, data, first_line, name, type_)

        yield _conform(table, schema, locate)


def _jsonl_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield (number of the first line, bytes) for blocks of about BLOCK_BYTES of whole lines."""
    line_no = 1
    pending: list[bytes] = []
    with open(path, "rb") as handle:
        first = True
        while True:
            block = handle.read(BLOCK_BYTES)
            if first:
                block = block.removeprefix(_UTF8_BOM)
                first = False
            if not block:
                break
            cut = block.rfind(b"\n")
            if cut < 0:
                pending.append(block)  # one line longer than a block: keep reading
                continue
            data = b"".join([*pending, block[: cut + 1]])
            pending = [block[cut + 1 :]]
            if data.strip():
                yield line_no, data
            line_no += data.count(b"\n")
    rest = b"".join(pending)
    if rest.strip():
        yield line_no, rest


def _parse_jsonl_block(path: Path, data: bytes, first_line: int, schema: pa.Schema | None) -> pa.Table:
    """Parse a block of JSON lines with pyarrow, using `schema` for known fields when given."""
    try:
        table = _parse_jsonl_bytes(path, data, first_line, schema)
    except UnicodeDecodeError:
        # A key that is not UTF-8: pyarrow cannot even name the column.
        _raise_if_not_utf8(path, data, first_line)
        raise
    _check_utf8(path, data, first_line, table)
    return table


def _parse_jsonl_bytes(path: Path, data: bytes, first_line: int, schema: pa.Schema | None) -> pa.Table:
    try:
        return _read_json_bytes(data, schema)
    except pa.ArrowException as exc:
        if schema is None:
            raise _locate_jsonl_error(path, data, first_line, exc) from None
    # The block may be fine on its own and merely disagree with `schema`; _conform casts.
    try:
        return _read_json_bytes(data, None)
    except pa.ArrowException as exc:
        raise _locate_jsonl_error(path, data, first_line, exc) from None


def _read_json_bytes(data: bytes, schema: pa.Schema | None) -> pa.Table:
    table = _read_json_with(data, schema)
    # Re-parse only when pyarrow inferred dates/timestamps itself (not when `schema` asked for them).
    wanted = pa.schema(
        [
            field if _given(schema, field) else field.with_type(_temporal_as_strings(field.type))
            for field in table.schema
        ]
    )
    if not wanted.equals(table.schema):
        table = _read_json_with(data, wanted)
    return table


def _given(schema: pa.Schema | None, field: pa.Field) -> bool:
    return (
        schema is not None
        and schema.get_field_index(field.name) >= 0
        and schema.field(field.name).type == field.type
    )


def _read_json_with(data: bytes, schema: pa.Schema | None) -> pa.Table:
    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        return pa_json.read_json(pa.BufferReader(data), parse_options=parse)
    except pa.ArrowInvalid as exc:
        if "straddle" not in str(exc):
            raise
    # A line longer than pyarrow's parse block: parse the whole block at once instead.
    options = pa_json.ReadOptions(block_size=len(data) + 1)
    return pa_json.read_json(pa.BufferReader(data), read_options=options, parse_options=parse)


def _check_utf8(path: Path, data: bytes, first_line: int, table: pa.Table) -> None:
    # pyarrow's JSON reader passes invalid UTF-8 through; validating the parsed table is far
    # cheaper than decoding the raw bytes, so that happens first.
    if data.isascii():
        return
    try:
        table.validate(full=True)
        _all_field_names(table.schema)
        return
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    _raise_if_not_utf8(path, data, first_line)


def _raise_if_not_utf8(path: Path, data: bytes, first_line: int) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, data, exc.start, first_line) from None


def _all_field_names(fields: Iterable[pa.Field]) -> list[str]:
    # Reading a name that is not valid UTF-8 raises UnicodeDecodeError, which is the point.
    names = []
    for field in fields:
        names.append(field.name)
        type_ = field.type
        if pa.types.is_struct(type_):
            names += _all_field_names(type_.field(i) for i in range(type_.num_fields))
        elif pa.types.is_list(type_) or pa.types.is_large_list(type_):
            names += _all_field_names([type_.value_field])
    return names


def _utf8_error(path: Path, data: bytes, position: int, first_line: int) -> InputError:
    line = first_line + data.count(b"\n", 0, position)
    column = position - (data.rfind(b"\n", 0, position) + 1) + 1
    return InputError(
        f"file is not valid UTF-8 (byte 0x{data[position]:02x} at column {column})",
        hint=_REENCODE_HINT,
        location=f"{path}:{line}",
    )


_TYPE_CHANGE = re.compile(r"Column\((?P<path>[^)]*)\) changed from (?P<old>\w+) to (?P<new>\w+)")


def _locate_jsonl_error(path: Path, data: bytes, first_line: int, exc: BaseException) -> InputError:
    """Turn a pyarrow failure on a JSONL block into an InputError pointing at the bad line."""
    lines = data.split(b"\n")
    records: list[tuple[int, object]] = []
    for offset, raw in enumerate(lines):
        line_no = first_line + offset
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _utf8_error(path, raw, error.start, line_no) from None
        if not text.strip():
            continue
        try:
            value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as error:
            return InputError(
                f"malformed JSON line: {error.msg}",
                hint=_JSONL_HINT,
                location=f"{path}:{line_no}:{error.colno}",
            )
        except _DuplicateKey as error:
            return InputError(f"key `{error}` appears twice in one object", location=f"{path}:{line_no}")
        if not isinstance(value, dict):
            return InputError(
                f"JSON line is {_kind_phrase(value)}, not an object",
                hint=_JSONL_HINT,
                location=f"{path}:{line_no}",
            )
        records.append((line_no, value))
    change = _TYPE_CHANGE.search(str(exc))
    if change:
        line_no = _find_type_change(records, change["path"], change["old"], change["new"])
        return InputError(
            f"field `{change['path'].lstrip('/') or '(root)'}` changes from {change['old']} to {change['new']}",
            hint="give a field the same JSON type on every line (null is fine for missing values)",
            location=f"{path}:{line_no or first_line}",
        )
    return InputError(f"cannot parse JSON lines: {_short(exc)}", location=f"{path}:{first_line}")


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _find_type_change(records: list[tuple[int, object]], field_path: str, old: str, new: str) -> int | None:
    parts = [part for part in field_path.split("/") if part]
    seen_old = False
    for line_no, record in records:
        for value in _values_at(record, parts):
            kind = _json_kind(value)
            if kind == new and seen_old:
                return line_no
            seen_old = seen_old or kind == old
    return None


def _values_at(value: object, parts: list[str]) -> Iterator[object]:
    if not parts:
        yield value
    elif parts[0] == "[]" and isinstance(value, list):
        for item in value:
            yield from _values_at(item, parts[1:])
    elif isinstance(value, dict) and parts[0] in value:
        yield from _values_at(value[parts[0]], parts[1:])


def _json_kind(value: object) -> str:
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


def _kind_phrase(value: object) -> str:
    kind = _json_kind(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _first_line_with(path: Path, data: bytes, first_line: int, name: str, type_: pa.DataType | None) -> str:
    """Location of the first line whose `name` value is present (type_ None) or does not fit type_."""
    for offset, raw in enumerate(data.split(b"\n")):
        try:
            record = json.loads(raw) if raw.strip() else None
        except ValueError:
            continue
        value = record.get(name) if isinstance(record, dict) else None
        if value is not None and (type_ is None or not _fits(value, type_)):
            return f"{path}:{first_line + offset}"
    return f"{path}:{first_line}"


def _fits(value: object, type_: pa.DataType) -> bool:
    try:
        pa.array([value]).cast(type_)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return False
    return True


def _numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            yield line_no, raw.removeprefix(_UTF8_BOM) if line_no == 1 else raw


def _decoded_lines(path: Path, lines: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, str]]:
    for line_no, raw in lines:
        try:
            yield line_no, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _utf8_error(path, raw, exc.start, line_no) from None


# --------------------------------------------------------------------------- JSON arrays


def _load_json_array(path: Path) -> list[dict]:
    """Read a whole `[{...}, ...]` file; anything else is an InputError with a location."""
    data = path.read_bytes().removeprefix(_UTF8_BOM)
    if not data.strip():
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, data, exc.start, 1) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg}", location=f"{path}:{exc.lineno}:{exc.colno}") from None
    hint = "a .json input must be an array of objects, [{...}, {...}]; for one object per line use .jsonl"
    if not isinstance(value, list):
        raise InputError(
            f"expected a JSON array of objects, got {_kind_phrase(value)}", hint=hint, location=str(path)
        )
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            location = _array_item_location(path, text, index)
            raise InputError(
                f"array item {index + 1} is {_kind_phrase(item)}, not an object", hint=hint, location=location
            )
    return value


_ITEM_GAP = re.compile(r"[ \t\n\r]*,?[ \t\n\r]*")


def _array_item_location(path: Path, text: str, index: int) -> str:
    decoder = json.JSONDecoder()
    position = _ITEM_GAP.match(text, text.index("[") + 1).end()
    for _ in range(index):
        _, position = decoder.raw_decode(text, position)
        position = _ITEM_GAP.match(text, position).end()
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"{path}:{line}:{column}"


def _records_to_table(path: Path, records: list[dict]) -> pa.Table:
    if not records:
        return pa.table({})
    try:
        # pa.array infers one struct type over all records (Table.from_pylist would only look
        # at the first record's keys).
        return pa.Table.from_struct_array(pa.array(records))
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise InputError(
            f"cannot turn the JSON objects into columns: {_short(exc)}",
            hint="give each key the same kind of value in every object (null is fine)",
            location=str(path),
        ) from None
