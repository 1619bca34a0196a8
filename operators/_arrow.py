"""Helpers shared by the built-in operators (not an operator module; nothing registers it)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.errors import DataflowError

# Whitespace as Python's `str.split()` / `str.isspace()` and Arrow's `utf8_trim_whitespace` see
# it: Unicode White_Space plus the ASCII information separators U+001C..U+001F.
# Line breaks are the Unicode newline functions; everything else is horizontal whitespace.
LINE_BREAKS = r"\n\r\x{85}\x{2028}\x{2029}"
HORIZONTAL_SPACE = r"\t\x0b\x0c\x1c-\x1f \x{A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}"
WHITESPACE = LINE_BREAKS + HORIZONTAL_SPACE

TEXT_TYPES = (pa.string(), pa.large_string())


def text_column(batch, logical: str) -> pa.Array:
    """The column bound to `logical` as a `string`/`large_string` array, or a clear error."""
    array = batch.column(logical)
    column = batch.bindings.get(logical, logical)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if kind in TEXT_TYPES:
        return array
    if pa.types.is_null(kind) or getattr(pa.types, "is_string_view", lambda _t: False)(kind):
        return array.cast(pa.large_string() if _nbytes(array) >= 2**31 - 1 else pa.string())
    raise DataflowError(
        f"column `{column}` must be text (string) but is {kind}",
        hint="bind a text column to this input, or convert the column first",
    )


def _nbytes(array: pa.Array) -> int:
    try:
        return array.nbytes
    except Exception:  # pragma: no cover - defensive: some view types cannot report it
        return 0


def reasons(conditions: list[tuple[Any, str]], length: int) -> pa.Array:
    """A string array holding, per row, the reason of the first true condition (null if none).

    `conditions` are `(boolean array without nulls, reason)` pairs in priority order.
    """
    if not conditions:
        return pa.nulls(length, pa.string())
    struct = pc.make_struct(*[c for c, _ in conditions], field_names=[str(i) for i in range(len(conditions))])
    return pc.case_when(struct, *[pa.scalar(r, pa.string()) for _, r in conditions])


def shorten(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters (with an ellipsis), for reasons built from params."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
