"""Repetition statistics over n-grams, lines and paragraphs, vectorised (not an operator module).

An n-gram (a window of n code points or n words inside one row) is identified by a 64-bit
polynomial hash of its symbols plus a per-row term, so equal n-grams of different rows never
match. Two different n-grams of one row share a hash with probability about 2**-64 per pair, which
we accept. `dup_mask` finds the keys occurring more than once with a hash table (pandas' kernel,
or a numpy fallback), chunk by chunk so the table stays in cache: sorting would be slower.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow.compute as pc

from dataflow_operators._lib.textstats import chunk_bounds, ratio, row_of

# Odd 64-bit constants with well-spread bits (a base close to a power of two would let small
# symbol differences cancel out).
_BASE = np.uint64(0x9E3779B97F4A7C15)  # polynomial base


_ROW = np.uint64(0xC2B2AE3D27D4EB4F)  # multiplier of the per-row term


_JUNK = np.uint64(0xD6E8FEB86659FD93)  # multiplier spreading placeholder keys


_MIX = np.uint64(0xBF58476D1CE4E5B9)  # bijective multiply spreading low bits into bucket bits


_MAX_BITS = 22  # largest bucket table: 4M entries


CHUNK = 1 << 14  # n-grams hashed and checked at once (hash tables stay in cache)


def _power(m: int) -> np.uint64:
    return np.uint64(pow(int(_BASE), m, 1 << 64))


def window_hashes(symbols: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every window of `n` consecutive symbols (len(symbols) - n + 1 values).

    Built from power-of-two pieces, H(s[i:i+a+b]) = H(s[i:i+a]) * BASE**b + H(s[i+a:i+a+b]), so it
    takes O(log n) vector operations.
    """
    total = len(symbols)
    if total < n:
        return np.zeros(0, np.uint64)
    piece = symbols.astype(np.uint64)
    piece_len = 1
    window = None
    window_len = 0
    remaining = n
    with np.errstate(over="ignore"):
        while True:
            if remaining & 1:
                if window is None:
                    window, window_len = piece, piece_len
                else:
                    count = total - window_len - piece_len + 1
                    window = window[:count] * _power(piece_len) + piece[window_len : window_len + count]
                    window_len += piece_len
            remaining >>= 1
            if not remaining:
                break
            count = total - 2 * piece_len + 1
            doubled = piece[:count] * _power(piece_len)
            doubled += piece[piece_len : piece_len + count]
            piece, piece_len = doubled, 2 * piece_len
    return window[: total - n + 1]


def ngram_keys(symbols: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    """One key per start position (len(symbols) values): equal keys <=> equal n-grams of one row.

    Positions whose window would cross the end of their row get distinct placeholder keys.
    """
    total = len(symbols)
    keys = np.empty(total, np.uint64)
    hashes = window_hashes(symbols, n)
    count = len(hashes)
    with np.errstate(over="ignore"):
        if count:
            rows = np.repeat(np.arange(len(offsets) - 1, dtype=np.uint64) * _ROW, np.diff(offsets))
            np.add(hashes, rows[:count], out=keys[:count])
        # The last n-1 positions of each row (all of a shorter row) start no full window.
        sizes = np.minimum(np.diff(offsets), n - 1)
        firsts = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=firsts[1:])
        tail = np.arange(firsts[-1]) + np.repeat(offsets[1:] - sizes - firsts[:-1], sizes)
        keys[tail] = np.arange(1, len(tail) + 1, dtype=np.uint64) * _JUNK
        end = np.arange(len(tail) + 1, len(tail) + 1 + total - count, dtype=np.uint64)
        keys[count:] = end * _JUNK
    return keys


def window_counts(offsets: np.ndarray, n: int) -> np.ndarray:
    """Full windows of `n` symbols per row."""
    return np.maximum(np.diff(offsets) - n + 1, 0)


_scratch = threading.local()


def _tables(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread bucket tables reused across calls (the flag tables are all False between calls)."""
    tables = getattr(_scratch, "tables", None)
    if tables is None or len(tables[0]) < size:
        tables = (np.empty(size, np.int32), np.zeros(size, bool), np.zeros(size, bool))
        _scratch.tables = tables
    return tables


_kernels: dict[str, object] = {}


def _pandas_duplicated():
    """pandas' hash-table `duplicated` kernel (about twice as fast as `bucket_dup_mask`), or None."""
    if "duplicated" not in _kernels:
        try:
            from pandas._libs.hashtable import duplicated
        except ImportError:  # pragma: no cover - pandas moved its internals
            duplicated = None
        _kernels["duplicated"] = duplicated
    return _kernels["duplicated"]


def unique(keys: np.ndarray) -> np.ndarray:
    """The distinct values of `keys` (uint64), in any order."""
    try:
        from pandas import unique as pandas_unique
    except ImportError:  # pragma: no cover - pandas is a dependency
        return np.unique(keys)
    return np.asarray(pandas_unique(keys))


def dup_mask(keys: np.ndarray) -> np.ndarray:
    """True where the key occurs more than once in `keys` (uint64)."""
    duplicated = _pandas_duplicated()
    if duplicated is None or len(keys) < 2:
        return bucket_dup_mask(keys)
    try:
        return np.asarray(duplicated(keys, keep=False), bool)
    except (TypeError, ValueError):  # pragma: no cover - a changed signature
        return bucket_dup_mask(keys)


def bucket_dup_mask(keys: np.ndarray) -> np.ndarray:
    """True where the key occurs more than once in `keys`, with numpy only.

    The keys are scattered into about 16 buckets per key: a key alone in its bucket is unique, a
    bucket whose keys are all equal holds duplicates, and only the keys of buckets mixing different
    keys (a few percent) are sorted to settle them.
    """
    count = len(keys)
    if count < 2:
        return np.zeros(count, bool)
    bits = min(max((16 * count - 1).bit_length(), 10), _MAX_BITS)
    last, shared, mixed = _tables(1 << bits)
    with np.errstate(over="ignore"):
        bucket = ((keys * _MIX) >> np.uint64(64 - bits)).view(np.int64)
    position = np.arange(count)
    last[bucket] = position
    winner = last[bucket]
    losers = bucket[winner != position]
    differing = bucket[keys[winner] != keys]
    shared[losers] = True
    mixed[differing] = True
    out = shared[bucket]
    in_mixed = mixed[bucket]
    shared[losers] = False
    mixed[differing] = False
    out &= ~in_mixed
    rest = np.flatnonzero(in_mixed)
    if len(rest):
        order = np.argsort(keys[rest])
        ordered = keys[rest[order]]
        same = ordered[1:] == ordered[:-1]
        dup = np.zeros(len(rest), bool)
        dup[1:] = same
        dup[:-1] |= same
        out[rest[order[dup]]] = True
    return out


def first_duplicates(keys: np.ndarray, dup: np.ndarray) -> np.ndarray:
    """The first position of each distinct duplicated key."""
    positions = np.flatnonzero(dup)
    if len(positions) == 0:
        return positions
    order = np.argsort(keys[positions], kind="stable")  # stable: the first position leads its group
    ordered = keys[positions[order]]
    return positions[order[np.concatenate([[True], ordered[1:] != ordered[:-1]])]]


def repeated_fraction_utf8(data: np.ndarray, byte_offsets: np.ndarray, char_offsets: np.ndarray, n: int):
    """`repeated_fraction` of UTF-8 rows with the compiled kernel (same values), or None when
    the kernels are not available."""
    from dataflow_operators._lib.kernels import kernels

    compiled = kernels()
    if compiled is None:
        return None
    dups = compiled["repeated_windows_utf8"](data, byte_offsets, n, _BASE, _power(n), _MIX)
    return ratio(dups, window_counts(char_offsets, n))


def repeated_fraction(symbols: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    """Per row: fraction of its n-gram windows whose n-gram occurs more than once in the row."""
    dups = np.zeros(len(offsets) - 1, np.int64)
    for d0, d1 in chunk_bounds(offsets, CHUNK):
        lo, hi = offsets[d0], offsets[d1]
        local = offsets[d0 : d1 + 1] - lo
        dup = dup_mask(ngram_keys(symbols[lo:hi], local, n))
        dups[d0:d1] = np.bincount(row_of(np.flatnonzero(dup), local), minlength=d1 - d0)
    return ratio(dups, window_counts(offsets, n))


def dup_mask_by_rows(keys: np.ndarray, row_offsets: np.ndarray) -> np.ndarray:
    """`dup_mask` over keys grouped by row (keys of different rows never match), chunk by chunk."""
    dup = np.zeros(len(keys), bool)
    for d0, d1 in chunk_bounds(row_offsets, CHUNK):
        lo, hi = row_offsets[d0], row_offsets[d1]
        dup[lo:hi] = dup_mask(keys[lo:hi])
    return dup


class WordNgrams:
    """Repeated word n-grams of a batch, for n = 1, 2, ... computed incrementally.

    If the n+1 words starting at a position occur again in the row, so do the first n of them:
    only the positions whose n-gram repeats are candidates at n+1, so the work shrinks with n.
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray):
        self.ids = ids.astype(np.uint64)
        self.offsets = offsets
        counts = np.diff(offsets)
        self.rows = np.repeat(np.arange(len(counts)), counts)
        self.row_end = np.repeat(offsets[1:], counts)
        self.levels: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def repeated(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(start positions, hashes) of the n-word windows whose n-gram occurs twice or more in its row."""
        if n not in self.levels:
            if n == 1:
                positions, hashes = np.arange(len(self.ids)), self.ids
            else:
                previous, previous_hashes = self.repeated(n - 1)
                valid = previous + n <= self.row_end[previous]
                positions = previous[valid]
                with np.errstate(over="ignore"):
                    hashes = previous_hashes[valid] * _BASE + self.ids[positions + n - 1]
            keys = self._keys(positions, hashes)
            dup = dup_mask_by_rows(keys, np.searchsorted(positions, self.offsets))
            self.levels[n] = (positions[dup], hashes[dup])
        return self.levels[n]

    def _keys(self, positions: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return hashes + self.rows[positions].astype(np.uint64) * _ROW

    def repeated_fraction(self, n: int) -> np.ndarray:
        """Per row: windows whose n-gram repeats / windows."""
        positions, _ = self.repeated(n)
        repeats = np.bincount(self.rows[positions], minlength=len(self.offsets) - 1)
        return ratio(repeats, window_counts(self.offsets, n))


class SpanNgrams(WordNgrams):
    """Repeated word n-grams measured by the characters of the text their occurrences span.

    Token k covers code points `starts[k]:ends[k]` of the batch's concatenated text; an
    occurrence of the n-gram starting at token p spans `starts[p]:ends[p + n - 1]`, so the
    whitespace and punctuation between its tokens count too. Fractions are over `text_chars`
    (code points of each row's whole text) and count each code point once, however many counted
    occurrences overlap it.
    """

    def __init__(
        self,
        ids: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        offsets: np.ndarray,
        text_chars: np.ndarray,
    ):
        super().__init__(ids, offsets)
        self.starts = starts
        self.ends = ends
        self.text_chars = text_chars

    def _span_fraction(self, positions: np.ndarray, n: int) -> np.ndarray:
        """Per row: code points inside the occurrences starting at `positions` (ascending) / all."""
        n_rows = len(self.offsets) - 1
        if len(positions) == 0:
            return np.zeros(n_rows)
        first = self.starts[positions]
        last = self.ends[positions + n - 1]
        # Positions ascend, so do the ends (within a row and across rows, whose code points do not
        # overlap): each occurrence adds what lies beyond the previous occurrence's end.
        before = np.empty_like(last)
        before[0] = -1
        before[1:] = last[:-1]
        new = np.maximum(last - np.maximum(first, before), 0)
        chars = np.bincount(self.rows[positions], weights=new, minlength=n_rows)
        return ratio(chars, self.text_chars)

    def top_span_fraction(self, n: int) -> np.ndarray:
        """Per row: characters spanned by the occurrences of its most frequent n-gram / all.

        The most frequent n-gram has the most occurrences, ties going to the one occurring first
        (as `Counter.most_common` in the reference); rows where no n-gram repeats get 0.0.
        """
        positions, hashes = self.repeated(n)
        if len(positions) == 0:
            return np.zeros(len(self.offsets) - 1)
        keys = self._keys(positions, hashes)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        group_start = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        counts = np.diff(np.append(group_start, len(order)))
        first = positions[order[group_start]]
        rows = self.rows[first]
        best = np.lexsort((first, -counts, rows))
        best = best[np.concatenate([[True], rows[best][1:] != rows[best][:-1]])]
        top_key = np.zeros(len(self.offsets) - 1, np.uint64)
        has_top = np.zeros(len(self.offsets) - 1, bool)
        top_key[rows[best]] = ordered[group_start[best]]
        has_top[rows[best]] = True
        own_rows = self.rows[positions]
        return self._span_fraction(positions[has_top[own_rows] & (keys == top_key[own_rows])], n)

    def later_copies_fraction(self, n: int) -> np.ndarray:
        """Per row: characters spanned by the occurrences of n-grams that repeat an earlier
        occurrence (the first occurrence of each n-gram is not counted) / all."""
        positions, hashes = self.repeated(n)
        if len(positions) == 0:
            return np.zeros(len(self.offsets) - 1)
        keys = self._keys(positions, hashes)
        order = np.argsort(keys, kind="stable")  # stable: a group's first position comes first
        ordered = keys[order]
        later = np.ones(len(positions), bool)
        later[order[np.concatenate([[True], ordered[1:] != ordered[:-1]])]] = False
        return self._span_fraction(positions[later], n)


def duplicate_parts(parts, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (parts repeating an earlier equal part of the row, code points of those parts).

    `parts` are strings (lines or paragraphs) grouped per row by `offsets`; the first occurrence
    of each distinct part is not a duplicate, every later one is.
    """
    n_rows = len(offsets) - 1
    if len(parts) == 0:
        return np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64)
    ids = pc.dictionary_encode(parts).indices.to_numpy(zero_copy_only=False).astype(np.uint64)
    rows = np.repeat(np.arange(n_rows, dtype=np.uint64), np.diff(offsets))
    keys = (rows << np.uint64(32)) | ids  # exact: row and part id
    dup = dup_mask(keys)
    first = first_duplicates(keys, dup)
    dup_positions = np.flatnonzero(dup)
    dup_rows = row_of(dup_positions, offsets)
    first_rows = row_of(first, offsets)
    count = np.bincount(dup_rows, minlength=n_rows) - np.bincount(first_rows, minlength=n_rows)
    lengths = pc.utf8_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    chars = np.bincount(dup_rows, weights=lengths[dup_positions], minlength=n_rows) - np.bincount(
        first_rows, weights=lengths[first], minlength=n_rows
    )
    return count, np.rint(chars).astype(np.int64)
