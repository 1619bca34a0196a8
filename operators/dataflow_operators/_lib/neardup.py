"""Shingling, hashing and clustering shared by the near-duplicate and decontamination operators
(a helper module: nothing registers it).

Everything works on whole batches with numpy: no Python loop runs per token or per shingle.

Tokens: with `normalize`, text is lowercased (Arrow's Unicode lowercasing) and separators
(whitespace and Unicode categories P*, S*, Z*: punctuation, symbols, spaces) split it; words are
maximal runs of other characters, and in char mode the characters are the other characters plus
one space for each run of separators between two of them (as `" ".join(text.split())` after
turning every separator into a space). Without `normalize`, words are split at whitespace only
(as `str.split()`) and every code point is a character. All of this is computed on the UTF-8
bytes with numpy lookup tables, no regular expression.

Shingles: `ngram` consecutive tokens of one document; a document with fewer than `ngram` (but at
least one) tokens is one shingle of all its tokens; a null or token-less document has none.

Hashes: each token's UTF-8 bytes get a 64-bit polynomial hash, computed for all tokens at once from
a prefix sum (`sum(byte_j * B**j)` over the buffer, wrapping mod 2**64; a token's hash is the
difference of two prefix values times `B**-start`, B odd so it has an inverse mod 2**64), mixed
with its length and finalized with the splitmix64 mixer. A shingle's hash combines its token
hashes with distinct odd multipliers (so order matters) and is mixed again.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.operator import Verdict
from dataflow_operators._lib.arrow import _ascii_space, _bytes_and_offsets, _multibyte_whitespace
from dataflow_operators._lib.kernels import kernels

_U64 = np.uint64


_BASE = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64


_BASE_INV = pow(_BASE, -1, 1 << 64)


_LENGTH_KEY = _U64(0xD6E8FEB86659FD93)


# Per-position multipliers of a shingle's token hashes (odd, fixed: hashes are stable across runs).
_POSITION_KEYS = np.random.default_rng(0x5EED).integers(0, 1 << 63, 64, dtype=np.uint64) * _U64(2) + _U64(1)


MAX_NGRAM = len(_POSITION_KEYS)


# Documents are shingled in chunks of about this many bytes, bounding temporary arrays.
CHUNK_BYTES = 1 << 20


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise on a uint64 array (returns a new array)."""
    x = x ^ (x >> _U64(30))
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


class _Powers:
    """`B**j` and `B**-j` mod 2**64 for j < n, grown on demand (thread-safe: the two tables are
    swapped together as one tuple)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tables = (np.ones(1, np.uint64), np.ones(1, np.uint64))

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        up, down = self.tables
        if len(up) >= n:
            return up[:n], down[:n]
        size = max(n, 2 * len(up))
        new = (_power_table(_BASE, size), _power_table(_BASE_INV, size))
        if size <= 4 * CHUNK_BYTES:  # keep tables of usual chunk sizes; a huge document's are not
            with self._lock:
                if len(self.tables[0]) < size:
                    self.tables = new
        return new[0][:n], new[1][:n]


def _power_table(base: int, n: int) -> np.ndarray:
    table = np.full(n, base, np.uint64)
    table[0] = 1
    return np.cumprod(table, dtype=np.uint64)


_POWERS = _Powers()


@dataclass
class Shingles:
    """The shingles of a run of documents.

    `hashes[offsets[d]:offsets[d+1]]` are document d's shingle hashes (uint64, in text order, with
    repeats). `first_token[k]`/`length[k]` locate shingle k among the tokens, whose byte spans in
    `data` (the UTF-8 bytes of the text, lowercased when normalized) are `token_start`/`token_end`.
    """

    hashes: np.ndarray
    offsets: np.ndarray
    first_token: np.ndarray
    length: np.ndarray
    token_start: np.ndarray
    token_end: np.ndarray
    data: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def excerpt(self, k: int, limit: int = 60) -> str:
        """The text of shingle k (from `data`: separators included), cut to `limit` characters."""
        first = int(self.first_token[k])
        last = first + int(self.length[k]) - 1
        text = bytes(self.data[self.token_start[first] : self.token_end[last]]).decode("utf-8", "replace")
        return text if len(text) <= limit else text[: limit - 1] + "…"


def shingle(text: pa.Array, unit: str, ngram: int, normalize: bool) -> Shingles:
    """Hash the shingles of every document of `text` (a string array; nulls have none)."""
    if normalize:
        text = pc.utf8_lower(text)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    data, offsets = _bytes_and_offsets(text)
    n = len(text)
    if normalize:
        separator = separators(data)
    elif unit == "word":
        separator = whitespace(data)
    else:
        separator = None
    if unit == "word":
        starts, ends = _word_spans(data, offsets, separator)
        space = None
    else:
        starts, ends, space = _char_spans(data, offsets, separator)
    # Tokens per document (a null document's byte range, normally empty, is ignored).
    token_offsets = np.searchsorted(starts, offsets).astype(np.int64)
    tokens = np.diff(token_offsets)
    if text.null_count:
        tokens[~text.is_valid().to_numpy(zero_copy_only=False)] = 0
    token_hashes = _token_hashes(data, starts, ends)
    if space is not None and space.any():
        token_hashes[space] = _SPACE_HASH
    counts = np.where(tokens >= ngram, tokens - ngram + 1, np.minimum(tokens, 1))
    sh_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=sh_offsets[1:])
    total = int(sh_offsets[-1])
    doc = np.repeat(np.arange(n), counts)
    first = token_offsets[doc] + (np.arange(total) - sh_offsets[doc])
    length = np.minimum(tokens[doc], ngram)
    hashes = _combine(token_hashes, first, length, ngram)
    return Shingles(hashes, sh_offsets, first, length, starts, ends, data)


def shingle_hashes(text: pa.Array, unit: str, ngram: int, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    """`(hashes, offsets)` of `shingle(...)` alone: compiled loops for word shingles when the
    kernels are available (the same values), else `shingle`."""
    compiled = kernels()
    if compiled is None or unit != "word":
        sh = shingle(text, unit, ngram, normalize)
        return sh.hashes, sh.offsets
    if normalize:
        text = pc.utf8_lower(text)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    data, offsets = _bytes_and_offsets(text)
    table = separator_table() if normalize else whitespace_table()
    token_hashes, token_offsets = compiled["word_token_hashes"](
        data, offsets, table, _U64(_BASE), _U64(_BASE_INV), _LENGTH_KEY
    )
    tokens = np.diff(token_offsets)
    if text.null_count:
        tokens[~text.is_valid().to_numpy(zero_copy_only=False)] = 0
    return compiled["shingle_hashes"](token_hashes, token_offsets, tokens, ngram, _POSITION_KEYS, _LENGTH_KEY)


@lru_cache(maxsize=1)
def whitespace_table() -> np.ndarray:
    """`table[code point]` is True for whitespace as `str.split()` sees it (below U+20000)."""
    table = np.zeros(_TABLE_SIZE, bool)
    for code in range(_TABLE_SIZE):
        table[code] = chr(code).isspace()
    return table


# No code point above U+1FFFF is punctuation, a symbol or a space (they are ideographs, tags and
# private use), so the table stops there; code points beyond it are never separators.
_TABLE_SIZE = 0x20000


@lru_cache(maxsize=1)
def separator_table() -> np.ndarray:
    """`table[code point]` is True for separators: Python whitespace and categories P*, S*, Z*."""
    table = np.zeros(_TABLE_SIZE, bool)
    for code in range(_TABLE_SIZE):
        char = chr(code)
        if char.isspace() or unicodedata.category(char)[0] in "PSZ":
            table[code] = True
    return table


@lru_cache(maxsize=1)
def _ascii_separator_bytes() -> np.ndarray:
    """Per byte value: an ASCII separator (False for every byte of a multi-byte character)."""
    out = np.zeros(256, bool)
    out[:128] = separator_table()[:128]
    return out


def is_separator(char: str) -> bool:
    code = ord(char)
    return code < _TABLE_SIZE and bool(separator_table()[code])


def separators(data: np.ndarray) -> np.ndarray:
    """Per byte of UTF-8 `data`: does it belong to a separator character?"""
    table = separator_table()
    out = _ascii_separator_bytes()[data]
    leads = np.flatnonzero(data >= 0xC0)
    if len(leads) == 0:
        return out
    padded = np.concatenate([data, np.zeros(3, np.uint8)]).astype(np.uint32)
    b0, b1, b2, b3 = (padded[leads + k] for k in range(4))
    width = np.where(b0 < 0xE0, 2, np.where(b0 < 0xF0, 3, 4))
    code = np.where(
        width == 2,
        ((b0 & 0x1F) << 6) | (b1 & 0x3F),
        np.where(
            width == 3,
            ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F),
            ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6) | (b3 & 0x3F),
        ),
    )
    hit = table[np.minimum(code, _TABLE_SIZE - 1)] & (code < _TABLE_SIZE)
    leads, width = leads[hit], width[hit]
    for k in range(4):
        part = leads[width > k] + k
        out[part] = True
    return out


def whitespace(data: np.ndarray) -> np.ndarray:
    """Per byte of UTF-8 `data`: does it belong to a whitespace character (as `str.split()`)?"""
    space = _ascii_space(data)
    two, three = _multibyte_whitespace(data)
    for width, positions in ((2, two), (3, three)):
        for k in range(width):
            space[positions + k] = True
    return space


def _word_spans(
    data: np.ndarray, offsets: np.ndarray, separator: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Byte start and end of every word: a maximal run of non-separator bytes within a row."""
    size = len(data)
    if size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    row_starts = offsets[:-1][offsets[:-1] < size]
    row_ends = offsets[1:][offsets[1:] > 0] - 1
    before = np.empty(size, bool)
    before[0] = True
    before[1:] = separator[:-1]
    before[row_starts] = True
    after = np.empty(size, bool)
    after[-1] = True
    after[:-1] = separator[1:]
    after[row_ends] = True
    starts = np.flatnonzero(~separator & before)
    ends = np.flatnonzero(~separator & after) + 1
    return starts, ends


def _char_spans(
    data: np.ndarray, offsets: np.ndarray, separator: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Byte start and end of every character token and which tokens stand for a space.

    Without `separator` every code point is a token. With it, separator characters are dropped
    except that each run of them between two other characters of the same row becomes one space
    token (as `" ".join(text.split())` after turning separators into spaces)."""
    size = len(data)
    if size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, None
    cps = np.flatnonzero((data & np.uint8(0xC0)) != np.uint8(0x80))
    ends = np.empty_like(cps)
    ends[:-1] = cps[1:]
    ends[-1:] = size
    if separator is None:
        return cps, ends, None
    sep = separator[cps]
    if not sep.any():
        return cps, ends, np.zeros(len(cps), bool)
    row = np.searchsorted(offsets, cps, side="right") - 1
    count = len(cps)
    index = np.arange(count)
    # Index of the next non-separator character at or after each character (count if none).
    nxt = np.where(sep, count, index)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    prev_kept = np.zeros(count, bool)
    prev_kept[1:] = ~sep[:-1] & (row[1:] == row[:-1])
    nxt_row = np.where(nxt < count, row[np.minimum(nxt, count - 1)], -1)
    space = sep & prev_kept & (nxt_row == row)
    keep = ~sep | space
    starts = cps[keep]
    ends = np.where(space, cps[np.minimum(nxt, count - 1)], ends)[keep]
    return starts, ends, space[keep]


def _token_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    if len(starts) == 0:
        return np.zeros(0, np.uint64)
    up, down = _POWERS.get(len(data))
    prefix = np.zeros(len(data) + 1, np.uint64)
    np.cumsum(data.astype(np.uint64) * up, out=prefix[1:])
    h = (prefix[ends] - prefix[starts]) * down[starts]
    h ^= (ends - starts).astype(np.uint64) * _LENGTH_KEY
    return mix64(h)


_SPACE_HASH = _token_hashes(np.array([0x20], np.uint8), np.array([0]), np.array([1]))[0]


def _combine(token_hashes: np.ndarray, first: np.ndarray, length: np.ndarray, ngram: int) -> np.ndarray:
    if len(first) == 0:
        return np.zeros(0, np.uint64)
    acc = token_hashes[first] * _POSITION_KEYS[0]
    short = length < ngram
    any_short = bool(short.any())
    last = len(token_hashes) - 1
    for i in range(1, ngram):
        index = first + i
        if any_short:
            term = token_hashes[np.minimum(index, last)] * _POSITION_KEYS[i]
            term[length <= i] = 0
        else:
            term = token_hashes[index] * _POSITION_KEYS[i]
        acc += term
    if any_short:  # a whole short document differs from a shingle that starts the same way
        acc[short] ^= length[short].astype(np.uint64) * _LENGTH_KEY
    return mix64(acc)


def chunks(text: pa.Array, max_bytes: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """Row ranges `(start, stop)` of `text` holding about `max_bytes` bytes each (at least one row)."""
    n = len(text)
    if n == 0:
        return []
    _, offsets = _bytes_and_offsets(text)
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        stop = int(np.searchsorted(offsets, offsets[start] + max_bytes, side="right")) - 1
        bounds.append(min(n, max(stop, start + 1)))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def python_shingles(text: str | None, unit: str = "word", ngram: int = 5, normalize: bool = True) -> set[str]:
    """The shingle set of one text, in pure Python: the reference the vectorised code follows
    (used by tests and the benchmark to compute exact Jaccard similarities)."""
    if text is None:
        return set()
    if normalize:
        lowered = pc.utf8_lower(pa.array([text], pa.string()))[0].as_py()  # Arrow's lowercasing
        text = " ".join("".join(" " if is_separator(c) else c for c in lowered).split())
    tokens = text.split() if unit == "word" else list(text)
    if not tokens:
        return set()
    if len(tokens) < ngram:
        return {"\x00".join(tokens)}
    return {"\x00".join(tokens[i : i + ngram]) for i in range(len(tokens) - ngram + 1)}


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two sets (0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def union_roots(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of the graph on `n` nodes with edges `left[k]`-`right[k]`, as the
    smallest node index of each node's component (so the root is the first document).

    A vectorised union-find: every round hooks each edge's larger root under the smaller one
    (`np.minimum.at`) and then compresses paths by pointer jumping, until no edge joins two roots.
    """
    parent = np.arange(n, dtype=np.int64)
    left = np.asarray(left, np.int64)
    right = np.asarray(right, np.int64)
    while len(left):
        parent = _compress(parent)
        a, b = parent[left], parent[right]
        joins = a != b
        if not joins.any():
            break
        left, right, a, b = left[joins], right[joins], a[joins], b[joins]
        np.minimum.at(parent, np.maximum(a, b), np.minimum(a, b))
    return _compress(parent)


def _compress(parent: np.ndarray) -> np.ndarray:
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def group_pairs(keys: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs among `members` that share a key: each member with the first (smallest)
    member of its group and with its predecessor in the group. Pairs are `(smaller, larger)`."""
    if len(keys) < 2:
        empty = np.zeros(0, np.int64)
        return empty, empty
    if np.all(members[1:] > members[:-1]):
        order = np.argsort(keys, kind="stable")  # ties stay in member order
    else:
        order = np.lexsort((members, keys))
    keys, members = keys[order], members[order]
    same = keys[1:] == keys[:-1]
    group_start = np.flatnonzero(np.concatenate([[True], ~same]))
    first_of = np.repeat(members[group_start], np.diff(np.append(group_start, len(keys))))
    follower = np.flatnonzero(same) + 1
    left = np.concatenate([first_of[follower], members[follower - 1]])
    right = np.concatenate([members[follower], members[follower]])
    return left, right


def unique_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct `(left, right)` pairs without self-pairs (indices below 2**32)."""
    keep = left != right
    packed = np.unique((left[keep].astype(np.uint64) << _U64(32)) | right[keep].astype(np.uint64))
    return (packed >> _U64(32)).astype(np.int64), (packed & _U64(0xFFFFFFFF)).astype(np.int64)


def per_batch_verdicts(
    roots: np.ndarray, ids: list[pa.Array], sizes: list[int], reason: str, prefix: str
) -> Iterator[Verdict]:
    """One verdict per batch (of `sizes` rows, `_id`s `ids`) from each document's cluster root
    (a global position, the document itself when kept); a dropped row's detail is `prefix`
    followed by its root's `_id`."""
    n = len(roots)
    keep = roots == np.arange(n)
    dropped = np.flatnonzero(~keep)
    reasons = pa.nulls(n, pa.string())
    details = pa.nulls(n, pa.string())
    if len(dropped):
        all_ids = pa.concat_arrays([i.cast(pa.string()) for i in ids])
        mask = pa.array(~keep)
        kept_ids = all_ids.take(pa.array(roots[dropped]))
        text = pc.binary_join_element_wise(pa.scalar(prefix), kept_ids, "")
        reasons = pc.replace_with_mask(reasons, mask, pa.array([reason] * len(dropped), pa.string()))
        details = pc.replace_with_mask(details, mask, text)
    start = 0
    for size in sizes:
        yield Verdict(
            keep=keep[start : start + size],
            reason=reasons.slice(start, size),
            detail=details.slice(start, size),
        )
        start += size
