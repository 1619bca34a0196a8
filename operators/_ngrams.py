"""Repetition statistics over n-grams, lines and paragraphs, vectorised (not an operator module).

An n-gram (a window of n code points or n words inside one row) is identified by a 64-bit
polynomial hash of its symbols plus a per-row term, so equal n-grams of different rows never
match. Two different n-grams of one row share a hash with probability about 2**-64 per pair, which
we accept. `dup_mask` finds the keys that occur more than once with hash buckets, sorting only what the
buckets cannot settle; sorting everything would be several times slower.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow.compute as pc

from operators._textstats import chunk_bounds, ratio, row_of, segment_sum

# Odd 64-bit constants with well-spread bits (a base close to a power of two would let small
# symbol differences cancel out).
_BASE = np.uint64(0x9E3779B97F4A7C15)  # polynomial base
_ROW = np.uint64(0xC2B2AE3D27D4EB4F)  # multiplier of the per-row term
_JUNK = np.uint64(0xD6E8FEB86659FD93)  # multiplier spreading placeholder keys
_MIX = np.uint64(0xBF58476D1CE4E5B9)  # bijective multiply spreading low bits into bucket bits
_MAX_BITS = 22  # largest bucket table: 4M entries
CHUNK = 1 << 14  # n-grams hashed and checked at once (hash tables stay in cache)


def window_hashes(symbols: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every window of `n` consecutive symbols (len(symbols) - n + 1 values)."""
    powers = {1: _BASE}
    done = {1: symbols.astype(np.uint64)}

    def hashes(m: int) -> np.ndarray:
        # H(s[i:i+a+b]) = H(s[i:i+a]) * BASE**b + H(s[i+a:i+a+b]); halving keeps it to log2(n) steps.
        if m not in done:
            a = m // 2
            b = m - a
            left, right = hashes(a), hashes(b)
            count = len(symbols) - m + 1
            done[m] = left[:count] * power(b) + right[a : a + count]
        return done[m]

    def power(m: int) -> np.uint64:
        if m not in powers:
            powers[m] = np.uint64(pow(int(_BASE), m, 1 << 64))
        return powers[m]

    if len(symbols) < n:
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        return hashes(n)


def ngram_keys(symbols: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    """One key per start position (len(symbols) values): equal keys <=> equal n-grams of one row.

    Positions whose window would cross the end of their row get distinct placeholder keys.
    """
    total = len(symbols)
    keys = np.empty(total, np.uint64)
    hashes = window_hashes(symbols, n)
    lengths = np.diff(offsets)
    with np.errstate(over="ignore"):
        rows = np.repeat(np.arange(len(lengths), dtype=np.uint64) * _ROW, lengths)
        keys[: len(hashes)] = hashes + rows[: len(hashes)]
        # The last n-1 positions of each row (all of a shorter row) start no full window.
        tail = (offsets[1:, None] - np.arange(1, n)[None, :]).ravel()
        tail = tail[tail >= np.repeat(offsets[:-1], n - 1)]
        tail = np.union1d(tail, np.arange(len(hashes), total))
        keys[tail] = np.arange(1, len(tail) + 1, dtype=np.uint64) * _JUNK
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


def _pandas_duplicated():
    """pandas' hash-table `duplicated` kernel (about twice as fast as `bucket_dup_mask`), or None."""
    try:
        from pandas._libs.hashtable import duplicated
    except ImportError:  # pragma: no cover - pandas moved its internals
        return None
    return duplicated


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


def dup_runs(keys: np.ndarray, dup: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups of equal duplicated keys: (first position, count, positions sorted by group)."""
    positions = np.flatnonzero(dup)
    order = np.argsort(keys[positions], kind="stable")
    positions = positions[order]
    ordered = keys[positions]
    starts = (
        np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]])) if len(ordered) else positions
    )
    counts = np.diff(np.append(starts, len(positions)))
    return positions[starts], counts, positions


def repeated_fraction(symbols: np.ndarray, offsets: np.ndarray, n: int) -> np.ndarray:
    """Per row: fraction of its n-gram windows whose n-gram occurs more than once in the row."""
    dups = np.zeros(len(offsets) - 1, np.int64)
    for d0, d1 in chunk_bounds(offsets, CHUNK):
        lo, hi = offsets[d0], offsets[d1]
        local = offsets[d0 : d1 + 1] - lo
        dup = dup_mask(ngram_keys(symbols[lo:hi], local, n))
        dups[d0:d1] = np.bincount(row_of(np.flatnonzero(dup), local), minlength=d1 - d0)
    return ratio(dups, window_counts(offsets, n))


def covered(starts: np.ndarray, n: int) -> np.ndarray:
    """Symbols inside at least one window of `n` starting at a True position of `starts`."""
    total = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(starts, out=total[1:])
    ends = np.arange(1, len(starts) + 1)
    return (total[ends] - total[np.maximum(ends - n, 0)]) > 0


def duplicate_ngram_char_fraction(
    word_ids: np.ndarray, lengths: np.ndarray, offsets: np.ndarray, n: int
) -> np.ndarray:
    """Per row: characters of words inside any repeated word n-gram / characters of all words."""
    inside = np.zeros(len(word_ids), bool)
    for d0, d1 in chunk_bounds(offsets, CHUNK):
        lo, hi = offsets[d0], offsets[d1]
        dup = dup_mask(ngram_keys(word_ids[lo:hi], offsets[d0 : d1 + 1] - lo, n))
        inside[lo:hi] = covered(dup, n)
    return ratio(segment_sum(np.where(inside, lengths, 0), offsets), segment_sum(lengths, offsets))


def top_ngram_char_fraction(
    word_ids: np.ndarray, lengths: np.ndarray, offsets: np.ndarray, n: int
) -> np.ndarray:
    """Per row: characters of words covered by the most frequent repeated word n-gram / all.

    The most frequent n-gram is the one with the most occurrences, ties going to the one with more
    characters, then to the one occurring first. Rows where no n-gram repeats get 0.0.
    """
    inside = np.zeros(len(word_ids), bool)
    char_sums = np.zeros(len(word_ids) + 1, np.int64)
    np.cumsum(lengths, out=char_sums[1:])
    for d0, d1 in chunk_bounds(offsets, CHUNK):
        lo, hi = offsets[d0], offsets[d1]
        local = offsets[d0 : d1 + 1] - lo
        keys = ngram_keys(word_ids[lo:hi], local, n)
        first, counts, _ = dup_runs(keys, dup_mask(keys))
        if len(first) == 0:
            continue
        chars = char_sums[lo + np.minimum(first + n, hi - lo)] - char_sums[lo + first]
        rows = row_of(first, local)
        # Best group per row: most occurrences, then most characters, then earliest.
        order = np.lexsort((first, -chars, -counts, rows))
        best = order[np.concatenate([[True], rows[order][1:] != rows[order][:-1]])]
        top_key = np.zeros(d1 - d0, np.uint64)
        has_top = np.zeros(d1 - d0, bool)
        top_key[rows[best]] = keys[first[best]]
        has_top[rows[best]] = True
        position_rows = np.repeat(np.arange(d1 - d0), np.diff(local))
        starts = has_top[position_rows] & (keys == top_key[position_rows])
        inside[lo:hi] = covered(starts, n)
    return ratio(segment_sum(np.where(inside, lengths, 0), offsets), segment_sum(lengths, offsets))


def duplicate_parts(
    parts, offsets: np.ndarray, with_chars: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per row: (parts that repeat an earlier equal part of the row, their code points or None).

    `parts` are strings (words, lines or paragraphs) grouped per row by `offsets`; the first
    occurrence of each distinct part is not a duplicate, every later one is.
    """
    n_rows = len(offsets) - 1
    if len(parts) == 0:
        return np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64) if with_chars else None
    ids = pc.dictionary_encode(parts).indices.to_numpy(zero_copy_only=False).astype(np.uint64)
    rows = np.repeat(np.arange(n_rows, dtype=np.uint64), np.diff(offsets))
    keys = (rows << np.uint64(32)) | ids  # exact: row and part id
    dup = dup_mask(keys)
    first, _, _ = dup_runs(keys, dup)
    first_rows = row_of(first, offsets)
    dup_rows = row_of(np.flatnonzero(dup), offsets)
    count = np.bincount(dup_rows, minlength=n_rows) - np.bincount(first_rows, minlength=n_rows)
    if not with_chars:
        return count, None
    lengths = pc.utf8_length(parts).to_numpy(zero_copy_only=False).astype(np.int64)
    chars = np.bincount(dup_rows, weights=lengths[dup], minlength=n_rows) - np.bincount(
        first_rows, weights=lengths[first], minlength=n_rows
    )
    return count, np.rint(chars).astype(np.int64)
