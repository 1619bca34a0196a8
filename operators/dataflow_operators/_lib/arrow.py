"""Helpers shared by the built-in operators (not an operator module; nothing registers it)."""

from __future__ import annotations

import os
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.errors import DataflowError
from dataflow_operators._lib.kernels import kernels

# Whitespace as Python's `str.split()` / `str.isspace()` and Arrow's `utf8_trim_whitespace` see
# it: Unicode White_Space plus the ASCII information separators U+001C..U+001F. Line breaks are
# \n \r U+0085 U+2028 U+2029; the rest is horizontal whitespace, given here as RE2 character-class
# bodies. `word_and_line_counts` encodes the whole set as UTF-8 bytes.
OTHER_HORIZONTAL_SPACE = r"\t\x0b\x0c\x1c-\x1f\x{A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}"


HORIZONTAL_SPACE = " " + OTHER_HORIZONTAL_SPACE


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
    if pa.types.is_null(kind):
        return array.cast(pa.string())
    if getattr(pa.types, "is_string_view", lambda _t: False)(kind):
        return array.cast(pa.large_string())
    raise DataflowError(
        f"column `{column}` must be text (string) but is {kind}",
        hint="bind a text column to this input, or convert the column first",
    )


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


_SCAN_END = 0x34000  # beyond the CJK extension planes every code point is treated as unstable


_HANGUL_SYLLABLES = range(0xAC00, 0xD7A4)


# Hangul vowel and trailing jamo compose with a preceding syllable or jamo.
_HANGUL_SECOND = [*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)]


def _cache_file(form: str) -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "dataflow" / f"unicode-{unicodedata.unidata_version}-{form}-unstable.txt"


@lru_cache(maxsize=4)
def unstable_class(form: str) -> str:
    """`_unstable_class(form)`, cached on disk: computing it scans 200k code points (~1 s), a
    cost every run would otherwise pay once per process."""
    path = _cache_file(form)
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        pass
    value = _unstable_class(form)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(value, encoding="ascii")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the recomputation
    return value


def _unstable_class(form: str) -> str:
    """An RE2 character class matching every character that can make a text not be in `form`.

    A text made only of characters outside the class (each unchanged by `form` on its own, with
    combining class 0 and unable to compose with a preceding character) is already normalized,
    so it can skip the (slow) normalization kernel. Unassigned code points count as unstable, so a
    newer Unicode version in Arrow's tables than in Python's can only cost speed, not correctness.
    """
    unstable: set[int] = set()
    seconds: set[int] = set(_HANGUL_SECOND)
    for code in range(_SCAN_END):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        decomposition = unicodedata.decomposition(char)
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
        if unicodedata.combining(char) or unicodedata.category(char) == "Cn":
            unstable.add(code)
        elif (decomposition or code in _HANGUL_SYLLABLES) and unicodedata.normalize(form, char) != char:
            unstable.add(code)
    if form in ("NFC", "NFKC"):
        unstable |= seconds
    ranges: list[list[int]] = []
    for code in sorted(unstable):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    ranges.append([_SCAN_END, 0x10FFFF])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[{body}]"


def normalize_unicode(text: pa.Array, form: str) -> pa.Array:
    """`pc.utf8_normalize(text, form)`, running the kernel only on rows that can change."""
    if len(text) == 0:
        return text
    needs = pc.match_substring_regex(text, unstable_class(form)).fill_null(False)
    count = pc.sum(needs).as_py() or 0
    if count == 0:
        return text
    if count == len(text) - text.null_count:
        return pc.utf8_normalize(text, form=form)
    return pc.replace_with_mask(text, needs, pc.utf8_normalize(pc.filter(text, needs), form=form))


_U8 = np.uint8


def _ascii_space(data: np.ndarray) -> np.ndarray:
    """Bytes that are ASCII whitespace: \t \n \v \f \r, U+001C..U+001F and space."""
    return (data == _U8(0x20)) | ((data - _U8(0x09)) <= _U8(4)) | ((data - _U8(0x1C)) <= _U8(3))


def _bytes_and_offsets(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    buffers = text.buffers()
    offset_type = np.int64 if text.type == pa.large_string() else np.int32
    offsets = np.frombuffer(buffers[1], offset_type)[text.offset : text.offset + len(text) + 1].astype(
        np.int64
    )
    start, end = int(offsets[0]), int(offsets[-1])
    data = (
        np.frombuffer(buffers[2], np.uint8)[start:end]
        if buffers[2] is not None and end > start
        else _NO_BYTES
    )
    return data, offsets - start


_NO_BYTES = np.zeros(0, np.uint8)


def _multibyte_whitespace(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start positions of 2-byte and of 3-byte whitespace sequences."""
    # Lead bytes of U+0085 and U+00A0 (C2), U+1680 (E1), U+2000.. (E2) and U+3000 (E3).
    candidates = np.flatnonzero((data == _U8(0xC2)) | ((data - _U8(0xE1)) <= _U8(2)))
    if len(candidates) == 0:
        return candidates, candidates
    padded = np.concatenate([data, np.zeros(2, np.uint8)])
    b0 = data[candidates]
    b1 = padded[candidates + 1]
    b2 = padded[candidates + 2]
    two = (b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0))
    three = (
        ((b0 == 0xE1) & (b1 == 0x9A) & (b2 == 0x80))  # U+1680
        | ((b0 == 0xE2) & (b1 == 0x80) & ((b2 <= 0x8A) | (b2 == 0xA8) | (b2 == 0xA9) | (b2 == 0xAF)))
        | ((b0 == 0xE2) & (b1 == 0x81) & (b2 == 0x9F))  # U+205F
        | ((b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80))  # U+3000
    )
    return candidates[two], candidates[three]


def word_and_line_counts(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Per row: the number of whitespace-separated words (as `len(s.split())` in Python) and the
    number of lines (0 for "", else the count of "\\n" plus one unless the text ends with "\\n")."""
    if len(text) == 0:
        return pa.array([], pa.int64()), pa.array([], pa.int64())
    data, offsets = _bytes_and_offsets(text)
    mask = text.is_null().to_numpy(zero_copy_only=False) if text.null_count else None
    compiled = kernels()
    if compiled is not None:
        whole = len(data) // 8 * 8
        words, lines = compiled["words_and_lines"](data, data[:whole].view(np.uint64), offsets)
        return pa.array(words, pa.int64(), mask=mask), pa.array(lines, pa.int64(), mask=mask)
    starts_of_rows = offsets[:-1]
    ends_of_rows = offsets[1:]
    space = _ascii_space(data)
    two, three = _multibyte_whitespace(data)
    for width, positions in ((2, two), (3, three)):
        for k in range(width):
            space[positions + k] = True
    # A word starts at a non-space character (not a continuation byte) after a space or at a
    # row start.
    after_space = np.empty(len(data), bool)
    after_space[:1] = True
    after_space[1:] = space[:-1]
    after_space[starts_of_rows[starts_of_rows < len(data)]] = True
    continuation = (data & _U8(0xC0)) == _U8(0x80)
    word_starts = np.flatnonzero(after_space & ~space & ~continuation)
    words = np.diff(np.searchsorted(word_starts, offsets))
    newlines = np.flatnonzero(data == 0x0A)
    lines = np.diff(np.searchsorted(newlines, offsets))
    nonempty = ends_of_rows > starts_of_rows
    last = np.zeros(len(ends_of_rows), np.uint8)
    last[nonempty] = data[ends_of_rows[nonempty] - 1]
    lines = np.where(nonempty, lines + 1 - (last == 0x0A), 0)
    return pa.array(words, pa.int64(), mask=mask), pa.array(lines, pa.int64(), mask=mask)
