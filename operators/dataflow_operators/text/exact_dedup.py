"""Exact deduplication over the whole stream (a global operator)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from hashlib import blake2b

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Verdict
from dataflow_operators._lib.arrow import _bytes_and_offsets
from dataflow_operators._lib.kernels import kernels

_BINARY = pa.large_binary()


@cache
def _separators() -> tuple:
    """(null marker, value marker, ":", ""): built on first use, since creating Arrow scalars
    imports pandas, which `validate` must not pay for."""
    return (
        pa.scalar(b"\x00", _BINARY),  # a null value
        pa.scalar(b"\x01", _BINARY),  # a value follows: its byte length in decimal, ":", its bytes
        pa.scalar(b":", _BINARY),
        pa.scalar(b"", _BINARY),
    )


def normalize_key(text: str) -> str:
    """Casefold, collapse every whitespace run to one space and strip (`normalize: true`)."""
    return " ".join(text.casefold().split())


def _as_bytes(values: pa.Array, normalize: bool) -> pa.Array:
    """Each value as `large_binary` (null stays null), canonical within a column type."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values = values.dictionary_decode()
        kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if normalize:
            values = pa.array(
                [None if v is None else normalize_key(v) for v in values.to_pylist()], pa.large_string()
            )
        return values.cast(_BINARY)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return values.cast(_BINARY)
    try:
        # Numbers, booleans, dates, timestamps, decimals: their canonical text form.
        return values.cast(pa.large_string()).cast(_BINARY)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Lists, structs, maps: canonical JSON of the Python value.
        return pa.array(
            [
                None if v is None else json.dumps(v, sort_keys=True, ensure_ascii=False, default=str).encode()
                for v in values.to_pylist()
            ],
            _BINARY,
        )


def row_keys(columns: list[pa.Array], normalize: bool) -> pa.Array:
    """One `large_binary` key per row that two rows share exactly when their values are equal.

    Each value is encoded as `\\x00` for null or `\\x01<byte length>:<bytes>`: a prefix-free code,
    so the concatenation over the columns is unambiguous ("a"+"bc" differs from "ab"+"c") and null
    differs from the empty string.
    """
    parts = []
    for values in columns:
        raw = _as_bytes(values, normalize)
        length = pc.binary_length(raw).cast(pa.large_string()).cast(_BINARY)
        null, value, colon, empty = _separators()
        encoded = pc.binary_join_element_wise(value, length, colon, raw, empty)
        parts.append(encoded.fill_null(null))
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, _separators()[3])


def _binary_buffers(keys: pa.Array) -> tuple[memoryview, list[int]]:
    """The data buffer of a `large_binary` array and each value's start and end in it."""
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    _, offsets_buffer, data_buffer = keys.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[keys.offset : keys.offset + len(keys) + 1]
    data = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")
    return data, offsets.tolist()


class ExactDedupFilter(Filter):
    """Drop rows whose values in the given columns exactly repeat an earlier row.

    The first occurrence in stream order is kept; later ones are dropped with reason "duplicate"
    and detail "duplicate of _id <first id>". Null equals null (two rows with null in the same
    column are duplicates) but differs from the empty string. With `normalize`, text is compared
    casefolded, with whitespace runs collapsed and the ends stripped (no Unicode normalization: run
    `text_normalize_refiner` first for that). Other types compare by their canonical text (numbers,
    dates) or sorted-key JSON (lists, structs), so NaN equals NaN and -0.0 differs from 0.0.
    Memory holds one 128-bit hash (BLAKE2b) per distinct row and the `_id`s, never the rows.

    Inputs:
        (none: the columns are given by `columns`)
    Outputs:
        (none: rows are kept or dropped)
    Params:
        columns: the columns whose values together identify a row (at least one).
        normalize: compare text casefolded with whitespace collapsed and stripped (default false).
    """

    name = "exact_dedup_filter"
    scope = "global"
    streaming = True  # each batch's verdict needs only the batches before it

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        columns: list[str] = Field(
            min_length=1, description="Columns whose values together identify a row (e.g. [text])."
        )
        normalize: bool = Field(
            False,
            description="Compare text casefolded, with whitespace runs collapsed to one space and "
            "the ends stripped, so 'Hello  World' duplicates 'hello world'.",
        )

        @field_validator("columns")
        @classmethod
        def _distinct(cls, columns: list[str]) -> list[str]:
            for i, column in enumerate(columns):
                if not column:
                    raise ValueError("a column name must not be empty")
                if column in columns[:i]:
                    raise ValueError(f"column `{column}` is listed twice")
            return columns

    def required_columns(self) -> list[str]:
        return list(self.params.columns)

    def filter(self, batch: Batch) -> Verdict:
        raise DataflowError(f"`{self.name}` is a global operator: run it through process_all(batches)")

    def process_all(self, batches: Iterable[Batch]) -> Iterator[Verdict]:
        seen = _FirstSeen() if kernels() is not None else _FirstSeenDict()
        for batch in batches:
            ids = batch.column("_id")
            dropped, first_ids = seen.add(self._digests(batch), ids)
            n = len(ids)
            keep = np.ones(n, bool)
            keep[dropped] = False
            reason: list[str | None] = [None] * n
            detail: list[str | None] = [None] * n
            for i, first in zip(dropped, first_ids, strict=True):
                reason[i] = "duplicate"
                detail[i] = f"duplicate of _id {first}"
            yield Verdict(
                keep=keep, reason=pa.array(reason, pa.string()), detail=pa.array(detail, pa.string())
            )

    def _digests(self, batch: Batch) -> np.ndarray:
        """The 16-byte BLAKE2b digest of each row's key (`row_keys`), as rows of two uint64: with
        the compiled kernels, computed without the GIL (and, for one text column, without
        building the keys)."""
        columns = [batch.column(c) for c in self.params.columns]
        compiled = kernels()
        if compiled is not None and len(columns) == 1 and not self.params.normalize:
            values = columns[0]
            if pa.types.is_dictionary(values.type):
                values = values.dictionary_decode()
            if values.type in (pa.string(), pa.large_string()):
                data, offsets = _bytes_and_offsets(values)
                valid = values.is_valid().to_numpy(zero_copy_only=False)
                return _in_halves(compiled["blake2b_keys"], data, offsets, valid, True)
        keys = row_keys(columns, self.params.normalize)
        # Keys are never null (see row_keys): hash slices of the data buffer, no bytes copies.
        data, offsets = _binary_buffers(keys)
        if compiled is not None:
            flat = np.frombuffer(data, np.uint8)
            bounds = np.asarray(offsets, np.int64)
            return _in_halves(compiled["blake2b_keys"], flat, bounds, np.ones(len(keys), bool), False)
        digests = b"".join(
            blake2b(data[offsets[i] : offsets[i + 1]], digest_size=16).digest() for i in range(len(keys))
        )
        return np.frombuffer(digests, np.uint64).reshape(len(keys), 2)


_HALVES = (
    ThreadPoolExecutor(max_workers=2, thread_name_prefix="exact-dedup") if (os.cpu_count() or 1) > 1 else None
)


def _in_halves(kernel, data: np.ndarray, offsets: np.ndarray, valid: np.ndarray, framed: bool) -> np.ndarray:
    """`kernel` over the rows in two halves at once: the kernel releases the GIL, and a
    streaming dedup stage decides each batch on the pass's critical path."""
    rows = len(offsets) - 1
    if _HALVES is None or rows < 256:
        return kernel(data, offsets, valid, framed)
    mid = rows // 2
    first = _HALVES.submit(kernel, data, offsets[: mid + 1], valid[:mid], framed)
    second = kernel(data, offsets[mid:], valid[mid:], framed)
    return np.concatenate([first.result(), second])


class _FirstSeen:
    """The digests seen so far, each with the global position of its first row (a compiled
    open-addressing table: 25 bytes a slot, no Python object per row), and every row's `_id`
    (Arrow arrays, one per batch) to name the first rows of duplicates."""

    def __init__(self) -> None:
        self.table = np.zeros((1024, 2), np.uint64)
        self.used = np.zeros(1024, np.uint8)
        self.where = np.zeros(1024, np.int64)
        self.distinct = 0
        self.ids: list[pa.Array] = []
        self.starts = [0]

    def add(self, digests: np.ndarray, ids: pa.Array) -> tuple[np.ndarray, list]:
        """Rows of the batch (positions in it) whose digest was seen before, and the `_id` of
        the first row with it, for each."""
        compiled = kernels()
        assert compiled is not None
        while (self.distinct + len(digests)) * 4 > len(self.used) * 3:
            self._grow(compiled)
        start = self.starts[-1]
        positions = np.arange(start, start + len(digests), dtype=np.int64)
        first, added = compiled["first_occurrences"](self.table, self.used, self.where, digests, positions)
        self.distinct += added
        self.ids.append(ids)
        self.starts.append(start + len(digests))
        dropped = np.flatnonzero(first != positions)
        return dropped, self._ids_at(first[dropped])

    def _grow(self, compiled) -> None:
        live = self.used.astype(bool)
        digests, where = self.table[live], self.where[live]
        size = 2 * len(self.used)
        self.table = np.zeros((size, 2), np.uint64)
        self.used = np.zeros(size, np.uint8)
        self.where = np.zeros(size, np.int64)
        compiled["first_occurrences"](self.table, self.used, self.where, digests, where)

    def _ids_at(self, positions: np.ndarray) -> list:
        out: list = [None] * len(positions)
        part_of = np.searchsorted(self.starts, positions, side="right") - 1
        for part in np.unique(part_of).tolist():
            rows = np.flatnonzero(part_of == part)
            values = self.ids[part].take(pa.array(positions[rows] - self.starts[part])).to_pylist()
            for row, value in zip(rows.tolist(), values, strict=True):
                out[row] = value
        return out


class _FirstSeenDict:
    """`_FirstSeen` without the compiled kernels: a dict from digest to the first row's `_id`."""

    def __init__(self) -> None:
        self.first_id: dict[bytes, object] = {}

    def add(self, digests: np.ndarray, ids: pa.Array) -> tuple[list[int], list]:
        raw = digests.tobytes()
        dropped: list[int] = []
        first_ids: list = []
        for i, row_id in enumerate(ids.to_pylist()):
            seen = len(self.first_id)
            first = self.first_id.setdefault(raw[16 * i : 16 * i + 16], row_id)
            if len(self.first_id) == seen:
                dropped.append(i)
                first_ids.append(first)
        return dropped, first_ids
