"""Write Arrow tables to Parquet, JSON Lines, JSON or CSV, atomically.

Output goes to a hidden temp file next to the destination (`.<name>.tmp-<pid>-<random>`) and only
`commit()` moves it into place with `os.replace`, after an fsync. A crash or an error therefore
never leaves a half-written file at the destination, and a previous file there survives until
the new one is complete. Temp files left by a killed process are removed by
`remove_stale_temp_files`.

JSON text is produced column-wise with Arrow compute kernels (escaping, number formatting,
concatenation) rather than row by row in Python, which keeps JSONL output fast; only nested and
unusual types go through Python's json module.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.io.paths import FORMATS, format_for

# Rows gathered before a Parquet row group is written: tiny row groups make files slow to read.
PARQUET_ROW_GROUP_ROWS = 64 * 1024
PARQUET_ROW_GROUP_BYTES = 8 << 20

_WRITE_HINT = "check that the output directory can be created and is writable, or choose another output path"

# Temp files this process is writing right now; remove_stale_temp_files must not touch them.
_ACTIVE_TEMPS: set[Path] = set()


# --------------------------------------------------------------------------- temp files


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _open_temp(path: Path) -> tuple[Path, BinaryIO]:
    """Create the destination's directory and an exclusive temp file beside it."""
    if path.is_dir():
        raise DataflowError(
            f"cannot write `{path}`: it is a directory", hint="give a file path such as `out/result.jsonl`"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _temp_path(path)
        handle = open(temp, "xb")  # exclusive: never reuse another writer's file
    except OSError as exc:
        raise DataflowError(f"cannot write `{path}`: {exc.strerror or exc}", hint=_WRITE_HINT) from None
    _ACTIVE_TEMPS.add(temp)
    return temp, handle


def _finish_temp(handle: BinaryIO, temp: Path, path: Path) -> None:
    """fsync and close `handle`, then move `temp` onto `path`."""
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(temp, path)
    _ACTIVE_TEMPS.discard(temp)
    _fsync_directory(path.parent)


def _discard_temp(handle: BinaryIO, temp: Path) -> None:
    try:
        handle.close()
    except OSError:
        pass  # the file is being thrown away; a failed flush does not matter
    temp.unlink(missing_ok=True)
    _ACTIVE_TEMPS.discard(temp)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform/filesystem allows it, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see either the old or the new content."""
    path = Path(path)
    temp, handle = _open_temp(path)
    try:
        handle.write(data)
        _finish_temp(handle, temp, path)
    except OSError as exc:
        _discard_temp(handle, temp)
        raise DataflowError(f"cannot write `{path}`: {exc.strerror or exc}", hint=_WRITE_HINT) from None
    except BaseException:
        _discard_temp(handle, temp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temp_files(directory: Path, name: str) -> list[Path]:
    """Delete `.<name>.tmp-*` files left in `directory` by a writer that was killed.

    Files belonging to another process that is still running are kept, as are this process's
    own open writers. Returns the removed paths.
    """
    pattern = re.compile(rf"\.{re.escape(name)}\.tmp-(\d+)-[0-9a-f]+")
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        path = Path(directory) / entry.name
        if not match or path in _ACTIVE_TEMPS or _is_other_live_process(int(match[1])):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _is_other_live_process(pid: int) -> bool:
    # Our own pid counts as dead: a container restart reuses pids, and our live temps are known.
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill would terminate the process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- TableWriter


class TableWriter:
    """Stream tables into one output file; nothing appears at `path` until `commit()`.

    The first table (or `schema=`) fixes the columns. Later tables must have the same column
    names; for Parquet and CSV they are cast to the first table's types.

        with TableWriter(Path("out.jsonl")) as writer:
            for table in tables:
                writer.write(table)
            writer.commit()
    """

    def __init__(
        self,
        path: Path,
        fmt: str | None = None,
        *,
        schema: pa.Schema | None = None,
        compression: str = "zstd",
    ):
        self.path = Path(path)
        self.fmt = fmt or format_for(self.path)
        if self.fmt not in FORMATS:
            raise SpecError(f"unknown output format `{self.fmt}`; choose one of {', '.join(FORMATS)}")
        self.rows_written = 0
        self._schema: pa.Schema | None = None
        self._state = "open"
        self._temp, self._file = _open_temp(self.path)
        self._sink = _SINKS[self.fmt](self._file, compression)
        if schema is not None:
            self._start(schema)

    @property
    def schema(self) -> pa.Schema | None:
        return self._schema

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._state == "open":
            self.abort()

    def write(self, table: pa.Table) -> None:
        """Append the rows of `table`."""
        self._require_open()
        if self._schema is None:
            self._start(table.schema)
        else:
            table = self._match(table)
        if table.num_rows:
            self._guarded(self._sink.write, table)
            self.rows_written += table.num_rows

    def commit(self) -> None:
        """Finish the file, fsync it and atomically move it to `path`."""
        self._require_open()
        self._guarded(self._sink.finish, self._schema)
        self._guarded(_finish_temp, self._file, self._temp, self.path)
        self._state = "committed"

    def abort(self) -> None:
        """Throw the output away; whatever was at `path` before stays untouched."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._sink.close()
        except Exception:  # the output is being discarded anyway
            pass
        _discard_temp(self._file, self._temp)

    def _start(self, schema: pa.Schema) -> None:
        self._schema = schema.remove_metadata()
        self._guarded(self._sink.start, self._schema)

    def _match(self, table: pa.Table) -> pa.Table:
        schema = self._schema
        assert schema is not None  # write() starts the sink with the first table's schema
        if table.schema.equals(schema):
            return table
        if sorted(table.column_names) != sorted(schema.names):
            raise ValueError(
                f"table columns {table.column_names} differ from the first table's {schema.names}"
            )
        table = table.select(schema.names)
        # JSON has no fixed column types, so a null-typed column may later carry values there.
        return table.cast(schema) if self._sink.typed else table

    def _guarded(self, action, *args) -> None:
        try:
            action(*args)
        except OSError as exc:
            self.abort()
            raise DataflowError(
                f"cannot write `{self.path}`: {exc.strerror or exc}", hint=_WRITE_HINT
            ) from None
        except BaseException:
            self.abort()
            raise

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"TableWriter for `{self.path}` is already {self._state}")


# --------------------------------------------------------------------------- per-format sinks


class _Sink:
    typed = False

    def __init__(self, handle: BinaryIO, compression: str):
        self.handle = handle
        self.compression = compression

    def start(self, schema: pa.Schema) -> None:
        """Called once, before the first write, with the output schema."""

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def finish(self, schema: pa.Schema | None) -> None:
        """Complete the file; `schema` is None when nothing fixed one."""

    def close(self) -> None:
        """Release format writers without completing the file."""


class _ParquetSink(_Sink):
    typed = True

    def __init__(self, handle: BinaryIO, compression: str):
        super().__init__(handle, compression)
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def start(self, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(self.handle, schema, compression=self.compression)

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        if self._pending_rows >= PARQUET_ROW_GROUP_ROWS or self._pending_bytes >= PARQUET_ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            assert self._writer is not None  # started before the first write
            table = pa.concat_tables(self._pending)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def finish(self, schema: pa.Schema | None) -> None:
        if self._writer is None:
            self.start(pa.schema([]))  # an empty table with no columns is still valid Parquet
        self._flush()
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _CsvSink(_Sink):
    typed = True

    def __init__(self, handle: BinaryIO, compression: str):
        super().__init__(handle, compression)
        self._writer: pa_csv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    def start(self, schema: pa.Schema) -> None:
        self._schema = pa.schema([_csv_field(field) for field in schema])
        self._writer = pa_csv.CSVWriter(self.handle, self._schema)

    def write(self, table: pa.Table) -> None:
        assert self._writer is not None  # started before the first write
        columns = [_csv_column(column) for column in table.columns]
        self._writer.write_table(pa.Table.from_arrays(columns, schema=self._schema))

    def finish(self, schema: pa.Schema | None) -> None:
        self.close()  # with no schema at all the file stays empty: CSV cannot say more

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _csv_field(field: pa.Field) -> pa.Field:
    # CSV has no nested values: lists and structs are written as JSON text.
    return field.with_type(pa.large_string()) if pa.types.is_nested(field.type) else field


def _csv_column(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    if not pa.types.is_nested(column.type):
        return column
    values = column.combine_chunks()
    return pc.if_else(values.is_null(), pa.scalar(None, pa.large_string()), _python_json(values))


class _JsonLinesSink(_Sink):
    def write(self, table: pa.Table) -> None:
        self.handle.write(_render_rows(table, "\n"))


class _JsonArraySink(_Sink):
    def __init__(self, handle: BinaryIO, compression: str):
        super().__init__(handle, compression)
        self._rows = 0

    def start(self, schema: pa.Schema) -> None:
        self.handle.write(b"[\n")

    def write(self, table: pa.Table) -> None:
        # Rows are rendered with a trailing ",\n" each; the last one of the file must not have
        # it, so each batch drops its own and the next batch puts one back in front.
        text = _render_rows(table, ",\n")
        if self._rows:
            self.handle.write(b",\n")
        self.handle.write(text[:-2])
        self._rows += table.num_rows

    def finish(self, schema: pa.Schema | None) -> None:
        if schema is None:
            self.start(pa.schema([]))
        self.handle.write(b"\n]\n" if self._rows else b"]\n")


_SINKS = {"parquet": _ParquetSink, "csv": _CsvSink, "jsonl": _JsonLinesSink, "json": _JsonArraySink}


# --------------------------------------------------------------------------- JSON rendering


def _render_rows(table: pa.Table, terminator: str) -> memoryview:
    """Render each row as a JSON object followed by `terminator`, returned as one UTF-8 buffer."""
    if table.num_columns == 0:
        return memoryview(("{}" + terminator).encode() * table.num_rows)

    def literal(text: str) -> pa.Scalar:
        return pa.scalar(text, pa.large_string())

    parts: list[object] = []
    for index, (name, column) in enumerate(zip(table.column_names, table.columns, strict=True)):
        key = json.dumps(name, ensure_ascii=False)
        parts.append(literal(("{" if index == 0 else ",") + key + ":"))
        parts.append(_json_values(column.combine_chunks()))
    parts.append(literal("}" + terminator))
    rows = pc.binary_join_element_wise(*parts, literal(""))
    return _string_data(rows)


def _string_data(array: pa.Array) -> memoryview:
    # The concatenation of all values of a string array is simply its data buffer.
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    data = array.buffers()[2]
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


def _json_values(array: pa.Array) -> pa.Array:
    """JSON text of every value of `array` (nulls become `null`), as a large_string array."""
    type_ = array.type
    if pa.types.is_dictionary(type_):
        return _json_values(array.dictionary_decode())
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        texts = _json_strings(array)
    elif pa.types.is_integer(type_) or pa.types.is_boolean(type_) or pa.types.is_decimal(type_):
        texts = array.cast(pa.string())
    elif pa.types.is_floating(type_):
        texts = _json_floats(array)
    elif pa.types.is_null(type_):
        texts = pa.nulls(len(array), pa.string())
    else:
        texts = _python_json(array)
    return texts.cast(pa.large_string()).fill_null("null")


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'
_RARE_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _json_strings(array: pa.Array) -> pa.Array:
    array = array.cast(pa.large_string())
    quote = pa.scalar('"', pa.large_string())
    nothing = pa.scalar("", pa.large_string())
    if not pc.any(pc.match_substring_regex(array, _NEEDS_ESCAPE)).as_py():
        return pc.binary_join_element_wise(quote, array, quote, nothing)
    escaped = array
    for raw, replacement in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = pc.replace_substring(escaped, raw, replacement)
    quoted = pc.binary_join_element_wise(quote, escaped, quote, nothing)
    rare = pc.match_substring_regex(array, _RARE_CONTROL).fill_null(False)
    if pc.any(rare).as_py():
        # Other control characters need \u00XX escapes; few rows have them, so Python does those.
        quoted = pc.replace_with_mask(quoted, rare, _python_json(array.filter(rare)))
    return quoted


def _json_floats(array: pa.Array) -> pa.Array:
    texts = array.cast(pa.string())
    # "1" would read back as an integer; JSON has no NaN or infinity.
    integral = pc.invert(pc.match_substring_regex(texts, "[.eEn]"))
    texts = pc.if_else(integral, pc.binary_join_element_wise(texts, ".0", ""), texts)
    return pc.if_else(pc.is_finite(array), texts, pa.scalar(None, pa.string()))


def _python_json(array: pa.Array) -> pa.Array:
    texts = [
        json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        for value in array.to_pylist()
    ]
    return pa.array(texts, pa.large_string())


def _json_default(value: object) -> object:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    return str(value)
