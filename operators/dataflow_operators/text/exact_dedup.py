"""Exact deduplication over the whole stream (a global operator)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from hashlib import blake2b

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Verdict

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
    Memory holds one 128-bit hash (BLAKE2b) and the first `_id` per distinct row, never the rows.

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
        first_id: dict[bytes, str] = {}  # 128-bit hash of a row's values -> _id of its first row
        for batch in batches:
            keys = row_keys([batch.column(c) for c in self.params.columns], self.params.normalize)
            ids = batch.values("_id")
            keep = np.ones(len(ids), bool)
            reason: list[str | None] = [None] * len(ids)
            detail: list[str | None] = [None] * len(ids)
            # Keys are never null (see row_keys): hash slices of the data buffer, no bytes copies.
            data, offsets = _binary_buffers(keys)
            for i, row_id in enumerate(ids):
                digest = blake2b(data[offsets[i] : offsets[i + 1]], digest_size=16).digest()
                seen = len(first_id)
                first = first_id.setdefault(digest, row_id)
                if len(first_id) == seen:
                    keep[i] = False
                    reason[i] = "duplicate"
                    detail[i] = f"duplicate of _id {first}"
            yield Verdict(
                keep=keep, reason=pa.array(reason, pa.string()), detail=pa.array(detail, pa.string())
            )
