"""Vectorised text statistics shared by the quality operators (not an operator module).

`TextBatch` wraps one batch's text column and computes, lazily and once, the views the signals
share: UTF-8 bytes, code points (decoded chunk by chunk), per-character classes, whitespace words
and lines. Everything works on whole batches with numpy and Arrow kernels; there are no Python
loops over rows or characters.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterator
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Evaluator
from dataflow_operators._lib.arrow import (
    _ascii_space,
    _bytes_and_offsets,
    _multibyte_whitespace,
    word_and_line_counts,
)
from dataflow_operators._lib.kernels import kernels

# Character classes (one byte per code point).
OTHER, PUNCT, LETTER, UPPER, DIGIT, NUMBER, MARK, SPACE = range(8)


N_CLASSES = 8


_BY_CATEGORY = {
    **dict.fromkeys(("Lu", "Lt"), UPPER),
    **dict.fromkeys(("Ll", "Lm", "Lo"), LETTER),
    "Nd": DIGIT,
    **dict.fromkeys(("Nl", "No"), NUMBER),
    **dict.fromkeys(("Mn", "Mc", "Me"), MARK),
    **dict.fromkeys(("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"), PUNCT),
}


# Beyond U+3FFFF only plane 14 holds marks (variation selectors supplement); the rest is tags,
# private use or unassigned: OTHER.
_TABLE_SIZE = 0x40000


_VS_SUPPLEMENT = (0xE0100, 0xE01EF)


CHUNK = 1 << 16  # code points (or words) per chunk of documents processed at once


_PAGE_BITS = 12  # the class table is filled one 4096-code-point page at a time, on first use


_table = np.zeros(_TABLE_SIZE, np.uint8)


_built = np.zeros(_TABLE_SIZE >> _PAGE_BITS, bool)


_table_lock = threading.Lock()


def _build_pages(pages) -> None:
    category = unicodedata.category
    with _table_lock:
        for page in pages:
            if _built[page]:
                continue
            start = int(page) << _PAGE_BITS
            classes = bytearray(1 << _PAGE_BITS)
            for i in range(len(classes)):
                char = chr(start + i)
                classes[i] = SPACE if char.isspace() else _BY_CATEGORY.get(category(char), OTHER)
            _table[start : start + len(classes)] = np.frombuffer(bytes(classes), np.uint8)
            _built[page] = True


def classify(cps: np.ndarray) -> np.ndarray:
    """The class of each code point (Unicode general category, from Python's `unicodedata`)."""
    if len(cps) == 0:
        return np.zeros(0, np.uint8)
    if cps.dtype == np.uint8:  # ASCII
        if not _built[0]:
            _build_pages([0])
        return _table[cps]
    big = int(cps.max()) >= _TABLE_SIZE
    clipped = np.minimum(cps, _TABLE_SIZE - 1) if big else cps  # U+3FFFF is unassigned: OTHER
    pages = np.flatnonzero(np.bincount(clipped >> _PAGE_BITS))
    missing = pages[~_built[pages]]
    if len(missing):
        _build_pages(missing)
    codes = _table[clipped]
    if big:
        codes[(cps >= _VS_SUPPLEMENT[0]) & (cps <= _VS_SUPPLEMENT[1])] = MARK
    return codes


def re2_class(chars: str) -> str:
    """An RE2 character class matching exactly `chars`."""
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in chars) + "]"


def ratio(numerator, denominator) -> np.ndarray:
    """numerator / denominator as float64, 0.0 where the denominator is 0."""
    numerator = np.asarray(numerator, np.float64)
    denominator = np.asarray(denominator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of `values[offsets[i]:offsets[i+1]]` for each i (int64 for bool/int values)."""
    dtype = np.float64 if values.dtype.kind == "f" else np.int64
    total = np.zeros(len(values) + 1, dtype)
    np.cumsum(values, out=total[1:])
    return total[offsets[1:]] - total[offsets[:-1]]


def list_offsets(lists: pa.Array) -> np.ndarray:
    """A list array's offsets relative to its flattened values, as int64."""
    offsets = lists.offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0]


def chunk_bounds(offsets: np.ndarray, target: int = CHUNK) -> Iterator[tuple[int, int]]:
    """Consecutive document ranges [d0, d1) holding about `target` items (at least one document)."""
    n = len(offsets) - 1
    d0 = 0
    while d0 < n:
        d1 = int(np.searchsorted(offsets, offsets[d0] + target, "right")) - 1
        d1 = min(max(d1, d0 + 1), n)
        yield d0, d1
        d0 = d1


class TextBatch:
    """One batch's text column with lazily computed, shared views. Null texts read as ""."""

    def __init__(self, array: pa.Array):
        self.n = len(array)
        self.null_mask = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
        self.array = array.fill_null("") if array.null_count else array

    def output(self, values, type_: pa.DataType) -> pa.Array:
        """Per-row values as an Arrow array, null where the text is null."""
        return pa.array(np.asarray(values), type_, mask=self.null_mask)

    @cached_property
    def utf8(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n == 0:
            return np.zeros(0, np.uint8), np.zeros(1, np.int64)
        return _bytes_and_offsets(self.array)

    @cached_property
    def char_offsets(self) -> np.ndarray:
        lengths = pc.utf8_length(self.array).to_numpy(zero_copy_only=False)
        offsets = np.zeros(self.n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return offsets

    @property
    def chars(self) -> np.ndarray:
        """Code points per row."""
        return np.diff(self.char_offsets)

    def code_point_chunks(self, target: int = CHUNK) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        """(d0, d1, code points of rows d0..d1-1, their offsets from 0), about `target` at a time.

        Pure-ASCII chunks are returned as their uint8 bytes; others are decoded to uint32.
        """
        data, byte_offsets = self.utf8
        char_offsets = self.char_offsets
        for d0, d1 in chunk_bounds(char_offsets, target):
            raw = data[byte_offsets[d0] : byte_offsets[d1]]
            if len(raw) == 0 or int(raw.max()) < 0x80:
                cps = raw
            else:
                try:
                    cps = np.frombuffer(raw.tobytes().decode("utf-8").encode("utf-32-le"), np.uint32)
                except UnicodeDecodeError as exc:
                    raise DataflowError(f"text is not valid UTF-8 ({exc.reason})") from None
            yield d0, d1, cps, char_offsets[d0 : d1 + 1] - char_offsets[d0]

    @cached_property
    def class_counts(self) -> np.ndarray:
        """(rows, N_CLASSES) counts of code points per class."""
        compiled = kernels()
        if compiled is not None:
            if not _built.all():
                _build_pages(np.flatnonzero(~_built))  # once per process (~0.2 s)
            data, offsets = self.utf8
            return compiled["utf8_class_counts"](
                data, offsets, _table, N_CLASSES, OTHER, MARK, _VS_SUPPLEMENT[0], _VS_SUPPLEMENT[1]
            )
        counts = np.zeros((self.n, N_CLASSES), np.int64)
        for d0, d1, cps, offsets in self.code_point_chunks():
            rows = np.repeat(np.arange(0, (d1 - d0) * N_CLASSES, N_CLASSES), np.diff(offsets))
            flat = np.bincount(rows + classify(cps), minlength=(d1 - d0) * N_CLASSES)
            counts[d0:d1] = flat.reshape(d1 - d0, N_CLASSES)
        return counts

    @cached_property
    def words(self) -> tuple[pa.Array, np.ndarray]:
        """All whitespace-separated words (as Python's `str.split()`) and per-row offsets."""
        lists = pc.utf8_split_whitespace(self.array)
        flat = lists.flatten()
        offsets = list_offsets(lists)
        nonempty = pc.greater(pc.binary_length(flat), 0)
        words = pc.filter(flat, nonempty)
        kept = np.zeros(len(flat) + 1, np.int64)
        np.cumsum(nonempty.to_numpy(zero_copy_only=False), out=kept[1:])
        return words, kept[offsets]

    @cached_property
    def word_spans(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of every word of `words`, as code point positions in the batch's
        concatenated text (row r's text spans `char_offsets[r]:char_offsets[r + 1]`).

        Found on the UTF-8 bytes (whitespace as `str.split()` sees it); a byte position becomes a
        code point position by subtracting the continuation bytes before it."""
        data, offsets = self.utf8
        if len(data) == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty
        space = _ascii_space(data)
        two, three = _multibyte_whitespace(data)
        for width, positions in ((2, two), (3, three)):
            for k in range(width):
                space[positions + k] = True
        edge = np.zeros(len(data) + 1, bool)  # a word/space boundary lies before byte i
        edge[1:-1] = space[1:] != space[:-1]
        edge[offsets] = True
        boundaries = np.flatnonzero(edge)
        # Runs between consecutive boundaries are all space or all word (rows never share one).
        run_starts = boundaries[:-1]
        word = ~space[run_starts]
        continuation = np.flatnonzero((data & np.uint8(0xC0)) == np.uint8(0x80))
        starts = run_starts[word]
        ends = boundaries[1:][word]
        return (
            starts - np.searchsorted(continuation, starts),
            ends - np.searchsorted(continuation, ends),
        )

    @cached_property
    def word_counts(self) -> np.ndarray:
        """Whitespace-separated words per row."""
        if "words" in self.__dict__:
            return np.diff(self.words[1])
        return word_and_line_counts(self.array)[0].to_numpy(zero_copy_only=False)

    @cached_property
    def vocabulary(self) -> tuple[np.ndarray, pa.Array]:
        """(id of each word, the distinct words): per-word work is done once per distinct word."""
        encoded = pc.dictionary_encode(self.words[0])
        return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary

    @property
    def word_ids(self) -> np.ndarray:
        """An integer per word, equal for equal words (within this batch)."""
        return self.vocabulary[0]

    def per_word(self, vocabulary_values: pa.Array | np.ndarray) -> np.ndarray:
        """Values computed for each distinct word, spread to every word."""
        values = vocabulary_values
        if not isinstance(values, np.ndarray):
            values = values.to_numpy(zero_copy_only=False)
        return values[self.word_ids]

    @cached_property
    def word_lengths(self) -> np.ndarray:
        """Code points per word."""
        return self.per_word(pc.utf8_length(self.vocabulary[1]).cast(pa.int64()))

    @cached_property
    def normalized_vocabulary(self) -> pa.Array:
        """Distinct words lowercased and stripped of surrounding punctuation (for list lookups)."""
        from dataflow_operators._lib.wordlists import WORD_EDGE_PUNCTUATION

        return pc.utf8_trim(pc.utf8_lower(self.vocabulary[1]), characters=WORD_EDGE_PUNCTUATION)

    def words_in(self, words: pa.Array) -> np.ndarray:
        """Per row: words that, lowercased and stripped of edge punctuation, are in `words`."""
        found = self.per_word(pc.is_in(self.normalized_vocabulary, value_set=words))
        return segment_sum(found, self.words[1])

    def distinct_words_in(self, words: pa.Array) -> np.ndarray:
        """Per row: how many different entries of `words` occur, matched as in `words_in`."""
        index = pc.index_in(self.normalized_vocabulary, value_set=words).fill_null(-1)
        entry = self.per_word(index.cast(pa.int64()))
        hit = np.flatnonzero(entry >= 0)
        if len(hit) == 0:
            return np.zeros(self.n, np.int64)
        rows = np.searchsorted(self.words[1], hit, "right") - 1
        pairs = np.unique(rows * len(words) + entry[hit])
        return np.bincount(pairs // len(words), minlength=self.n)

    @cached_property
    def lines(self) -> tuple[pa.Array, np.ndarray]:
        """Non-empty lines (split on "\\n", whitespace-stripped, blank ones dropped), per-row offsets."""
        return _nonempty_parts(pc.split_pattern(self.array, "\n"))

    @cached_property
    def paragraphs(self) -> tuple[pa.Array, np.ndarray]:
        """Non-empty paragraphs (split on blank lines, stripped), per-row offsets."""
        return _nonempty_parts(pc.split_pattern_regex(self.array, r"\n\s*\n"))

    def count(self, pattern: str, regex: bool = False) -> np.ndarray:
        """Non-overlapping occurrences of a substring (or RE2 regex) per row."""
        kernel = pc.count_substring_regex if regex else pc.count_substring
        return kernel(self.array, pattern).to_numpy(zero_copy_only=False).astype(np.int64)


def _nonempty_parts(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    stripped = pc.utf8_trim_whitespace(lists.flatten())
    offsets = list_offsets(lists)
    nonempty = pc.greater(pc.binary_length(stripped), 0)
    kept = np.zeros(len(stripped) + 1, np.int64)
    np.cumsum(nonempty.to_numpy(zero_copy_only=False), out=kept[1:])
    return pc.filter(stripped, nonempty), kept[offsets]


def row_of(positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The row holding each item position, given per-row item offsets."""
    return np.searchsorted(offsets, positions, "right") - 1


def check_signals(signals: list[str] | None, outputs: dict) -> list[str] | None:
    """Validate a `signals` param against an evaluator's outputs."""
    if signals is None:
        return None
    if not signals:
        raise ValueError("give at least one signal, or omit `signals` to compute all of them")
    for i, name in enumerate(signals):
        if name not in outputs:
            raise ValueError(f"unknown signal `{name}` (choose from: {', '.join(outputs)})")
        if name in signals[:i]:
            raise ValueError(f"signal `{name}` is listed twice")
    return signals


class SignalEvaluator(Evaluator):
    """An evaluator whose `signals` param selects which of its outputs to compute and write.

    The unselected outputs are not computed and no column is written for them.
    """

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        wanted = getattr(self.params, "signals", None)
        if wanted is None:
            return
        for logical in outputs or {}:
            if logical not in wanted:
                raise DataflowError(
                    f"output `{logical}` of `{self.name}` is bound but not listed in `signals`",
                    hint=f"add `{logical}` to `signals` or remove its binding",
                )
        self.outputs = {k: v for k, v in type(self).outputs.items() if k in wanted}
        self.output_columns = {k: self.output_columns[k] for k in self.outputs}

    def compute(self, tb: TextBatch, signals: dict) -> dict[str, pa.Array]:
        """Evaluate the selected entries of `signals` (name -> (function, Arrow type))."""
        out = {}
        for name in self.outputs:
            function, kind = signals[name]
            out[name] = tb.output(function(), kind)
        return out
