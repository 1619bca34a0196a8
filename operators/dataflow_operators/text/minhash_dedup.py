"""Near-duplicate detection with MinHash and locality-sensitive hashing (a global operator)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.kernels import kernels
from dataflow_operators._lib.neardup import (
    MAX_NGRAM,
    chunks,
    group_pairs,
    mix64,
    per_batch_verdicts,
    shingle_hashes,
    union_roots,
    unique_pairs,
)

# Shingles per block of the permutation step: a slice of permutations times a block of hashes
# stays in the CPU cache (16 x 16384 x 4 bytes = 1 MB).
_BLOCK_SHINGLES = 16384


_BLOCK_PERMS = 16


_SKETCH_BITS = 8  # bits of each minimum kept for verification (b-bit minwise hashing)


_PAIRS_PER_CHECK = 1 << 16


# Threads computing signatures of one batch's chunks: the engine's upstream work for a global
# stage mostly replays checkpoints, so the second core is otherwise idle.
_THREADS = min(2, os.cpu_count() or 1)


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fn_weight: float = 0.5) -> tuple[int, int]:
    """Bands `b` and rows per band `r` (`b * r <= num_perm`) for LSH at Jaccard `threshold`.

    Two documents of Jaccard similarity s share at least one band with probability
    `P(s) = 1 - (1 - s**r)**b`. The false-positive mass is the integral of P over [0, threshold],
    the false-negative mass the integral of 1 - P over [threshold, 1]; the pair minimising
    `(1 - fn_weight) * FP + fn_weight * FN` is chosen (trapezoid rule on 512 points each side;
    ties go to fewer bands). With equal weights this is the usual choice (e.g. (25, 10) for 0.7
    and 256 permutations).
    """
    below = np.linspace(0.0, threshold, 512)
    above = np.linspace(threshold, 1.0, 512)
    best: tuple[float, int, int] | None = None
    for b in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // b + 1, dtype=np.float64)[:, None]
        fp = _trapezoid(1.0 - (1.0 - below[None, :] ** rows) ** b, below)
        fn = _trapezoid((1.0 - above[None, :] ** rows) ** b, above)
        error = (1.0 - fn_weight) * fp + fn_weight * fn
        k = int(np.argmin(error))
        if best is None or error[k] < best[0] - 1e-15:
            best = (float(error[k]), b, k + 1)
    assert best is not None
    return best[1], best[2]


def _trapezoid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return ((y[:, 1:] + y[:, :-1]) * np.diff(x)[None, :]).sum(axis=1) / 2.0


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers `a` (odd) and offsets `b` of the hash permutations `x -> (a*x + b) mod 2**32`."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 32, num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    b = rng.integers(0, 1 << 32, num_perm, dtype=np.uint64).astype(np.uint32)
    return a, b


def minhash_signatures(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures (uint32, one row per document) of shingle hashes (uint32) grouped by
    `offsets`; every document must have at least one shingle.

    Blocks of about `_BLOCK_SHINGLES` hashes (whole documents) are permuted `_BLOCK_PERMS`
    permutations at a time into a (permutations x shingles) array, and `np.minimum.reduceat`
    along the shingle axis takes each document's minimum: long contiguous runs, cache-resident.
    """
    compiled = kernels()
    if compiled is not None:
        return compiled["minhash_signatures"](hashes, offsets.astype(np.int64), a, b)
    n = len(offsets) - 1
    out = np.empty((len(a), n), np.uint32)
    a_col, b_col = a[:, None], b[:, None]
    d0 = 0
    while d0 < n:
        d1 = int(np.searchsorted(offsets, offsets[d0] + _BLOCK_SHINGLES, side="right")) - 1
        d1 = min(n, max(d1, d0 + 1))
        lo, hi = int(offsets[d0]), int(offsets[d1])
        x = hashes[None, lo:hi]
        segments = offsets[d0:d1] - lo
        block = np.empty((min(_BLOCK_PERMS, len(a)), hi - lo), np.uint32)
        for k in range(0, len(a), _BLOCK_PERMS):
            width = min(_BLOCK_PERMS, len(a) - k)
            h = block[:width]
            np.multiply(a_col[k : k + width], x, out=h)
            np.add(h, b_col[k : k + width], out=h)
            out[k : k + width, d0:d1] = np.minimum.reduceat(h, segments, axis=1)
        d0 = d1
    return np.ascontiguousarray(out.T)


_BAND_KEYS = np.random.default_rng(0xBA4D).integers(0, 1 << 63, 1024, dtype=np.uint64)


_BAND_KEYS = _BAND_KEYS * np.uint64(2) + np.uint64(1)  # odd multipliers


_BAND_STEP = np.uint64(0x9E3779B97F4A7C15)


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit hash per band (`bands` columns) of each signature's first `bands * rows` values."""
    compiled = kernels()
    if compiled is not None:
        return compiled["band_hashes"](signatures, bands, rows, _BAND_KEYS, _BAND_STEP)
    n = len(signatures)
    grouped = signatures[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    combined = (grouped * _BAND_KEYS[None, None, :rows]).sum(axis=2, dtype=np.uint64)
    combined += np.arange(bands, dtype=np.uint64)[None, :] * _BAND_STEP
    return mix64(combined)


class RowParts:
    """The rows of a 2-D array kept as the parts (one per batch) they arrived in: reading a
    column or some rows never concatenates the whole, so peak memory stays near its size."""

    def __init__(self, width: int, dtype: type) -> None:
        self.width = width
        self.dtype = dtype
        self.parts: list[np.ndarray] = []
        self.starts = [0]

    def __len__(self) -> int:
        return self.starts[-1]

    def append(self, part: np.ndarray) -> None:
        self.parts.append(part)
        self.starts.append(self.starts[-1] + len(part))

    def column(self, j: int) -> np.ndarray:
        if not self.parts:
            return np.zeros(0, self.dtype)
        return np.concatenate([part[:, j] for part in self.parts])

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        """The rows at `index` (an integer array), like fancy indexing of the whole."""
        out = np.empty((len(index), self.width), self.dtype)
        part_of = np.searchsorted(self.starts, index, side="right") - 1
        for k in np.unique(part_of).tolist():
            mask = part_of == k
            out[mask] = self.parts[k][index[mask] - self.starts[k]]
        return out


def estimated_jaccard(sketches: np.ndarray | RowParts, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Jaccard similarity of pairs estimated from b-bit sketches: two minima agree with
    probability J, and their low `_SKETCH_BITS` bits agree by chance with probability 2**-bits
    otherwise, so J = (agreement - c) / (1 - c) with c = 2**-bits."""
    chance = 1.0 / (1 << _SKETCH_BITS)
    out = np.empty(len(left), np.float64)
    for k in range(0, len(left), _PAIRS_PER_CHECK):
        i, j = left[k : k + _PAIRS_PER_CHECK], right[k : k + _PAIRS_PER_CHECK]
        agree = (sketches[i] == sketches[j]).mean(axis=1)
        out[k : k + len(i)] = (agree - chance) / (1.0 - chance)
    return out


def representatives(
    n: int, left: np.ndarray, right: np.ndarray, sketches: np.ndarray | RowParts, threshold: float
) -> np.ndarray:
    """The kept document each of `n` documents is a near-duplicate of (itself if kept), where
    every dropped document's estimated Jaccard similarity with its kept one reaches `threshold`.

    `left`-`right` are the verified candidate pairs. Clustering them alone (connected components)
    would drop documents that resemble the kept one only through others: with A ~ B ~ C and A, C
    dissimilar, C would go as a duplicate of A. Instead, in rounds: the components of the pairs
    among the undecided documents are formed; the first document of each is kept; every other
    one whose estimated similarity with it reaches the threshold is dropped as its duplicate; the
    rest stay undecided for the next round (C above: it is kept in round 2, as B is dropped).
    A kept document thus never has a verified pair with a later kept one (the first of the two
    would have dropped it), and a chain of k documents takes about k/2 rounds.
    """
    rep = np.arange(n, dtype=np.int64)
    if len(left) == 0:
        return rep
    undecided = np.zeros(n, bool)
    undecided[left] = True
    undecided[right] = True
    index = np.full(n, -1, np.int64)
    while True:
        nodes = np.flatnonzero(undecided)
        if len(nodes) == 0:
            return rep
        index[nodes] = np.arange(len(nodes))
        inside = undecided[left] & undecided[right]
        left, right = left[inside], right[inside]  # a pair with a decided document is done with
        root = nodes[union_roots(len(nodes), index[left], index[right])]
        index[nodes] = -1
        undecided[root] = False  # the first document of each component is kept
        later = root != nodes
        others, first = nodes[later], root[later]
        if len(others) == 0:
            return rep
        close = estimated_jaccard(sketches, others, first) >= threshold
        rep[others[close]] = first[close]
        undecided[others[close]] = False


class MinhashDedupFilter(Filter):
    """Drop near-duplicate texts: MinHash signatures, LSH banding and clustering, keeping the first.

    Each text is normalized (lowercase, punctuation and symbols to spaces, whitespace collapsed),
    cut into shingles (word or character n-grams; a text shorter than `ngram` tokens is one
    shingle) and hashed to 32 bits; `num_perm` hash permutations `x -> (a*x + b) mod 2**32` (a odd:
    a bijection on 32-bit values) give the MinHash signature, computed with numpy over whole
    blocks of shingles. Signatures are split into `b` bands of `r` rows, chosen to minimise the
    weighted false-positive and false-negative probability mass around `threshold` (see
    `optimal_bands`: (25, 10) for 0.7 and 256). Documents sharing a band are candidate pairs: each
    bucket member is paired with the bucket's first member and with its predecessor. With `verify`
    (the default), a pair is kept only if the Jaccard similarity estimated from the signatures
    reaches `threshold`, and a document is dropped only as a duplicate of a kept document whose
    estimated similarity with it reaches `threshold` (see `representatives`): among the verified
    pairs, the first document of each connected group (stream order) is kept, the others similar
    to it are dropped, and the rest are decided again among themselves. A chain A ~ B ~ C with A
    and C dissimilar keeps A and C and drops B. Dropped rows get reason "near-duplicate" and detail
    "near-duplicate of _id <kept id>", naming the kept document they were compared with. Without
    `verify`, candidate pairs are clustered as they are (connected components, the first document
    kept): faster, but a document can then be dropped for a kept one it resembles only through
    intermediate documents.

    A null text, or one with no token after normalization (e.g. empty or all punctuation), has no
    shingles and is never a near-duplicate of anything: it is always kept (use
    `exact_dedup_filter` or a length filter for those).

    Memory per document: the band hashes (8 bytes each, 200 bytes for 25 bands) and, with
    `verify`, a b-bit sketch of the signature: the low 8 bits of each minimum (1 byte per
    permutation: 256 bytes), not the full 32-bit signature (1 KB). The estimate corrects for the
    1/256 chance agreement; its error is close to the full signature's. About 0.5 KB per document
    in all (100 MB for 200k documents); verdicts come after the last batch, since a later
    document can join two earlier clusters.

    Inputs:
        text: the text to compare.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        threshold: Jaccard similarity of shingle sets from which texts are near-duplicates (0.7).
        unit: shingle unit, word (default) or char (for text without spaces, e.g. Chinese).
        ngram: tokens per shingle (default 5).
        num_perm: number of hash permutations, the signature length (default 256).
        normalize: lowercase and strip punctuation and symbols before shingling (default true).
        verify: check candidate pairs, and each dropped document against the kept one, with the
            estimated Jaccard similarity (default true).
        false_negative_weight: weight of missed pairs against false candidates when choosing
            bands and rows (default 0.5: equal weights).
        seed: seed of the hash permutations (default 1).
    """

    name = "minhash_dedup_filter"
    version = "2"  # drops verified against the kept document, no drops through chains
    scope = "global"
    inputs = {"text": Port("text to compare")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        threshold: float = Field(
            0.7,
            gt=0.0,
            lt=1.0,
            description="Jaccard similarity of the shingle sets from which two texts count as "
            "near-duplicates.",
        )
        unit: Literal["word", "char"] = Field(
            "word", description="Shingle unit: word n-grams, or character n-grams for unsegmented scripts."
        )
        ngram: int = Field(5, ge=1, le=MAX_NGRAM, description="Tokens (words or characters) per shingle.")
        num_perm: int = Field(
            256, ge=8, le=1024, description="Number of hash permutations (MinHash signature length)."
        )
        normalize: bool = Field(
            True,
            description="Lowercase, turn punctuation and symbols into spaces and collapse whitespace "
            "before shingling.",
        )
        verify: bool = Field(
            True,
            description="Keep a candidate pair, and drop a document as the duplicate of a kept one, "
            "only if their Jaccard similarity estimated from the signatures reaches the threshold "
            "(1 byte per permutation and document).",
        )
        false_negative_weight: float = Field(
            0.5,
            gt=0.0,
            lt=1.0,
            description="Weight of false negatives (1 - it for false positives) when choosing the "
            "number of bands and rows.",
        )
        seed: int = Field(1, ge=0, description="Seed of the hash permutations.")

    def filter(self, batch: Batch) -> Verdict:
        raise DataflowError(f"`{self.name}` is a global operator: run it through process_all(batches)")

    @property
    def bands_rows(self) -> tuple[int, int]:
        p = self.params
        return optimal_bands(p.threshold, p.num_perm, p.false_negative_weight)

    def signatures(
        self, text: pa.Array, pool: ThreadPoolExecutor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of the texts that have shingles and their MinHash signatures (chunks of
        the batch on `pool`'s threads when given: numpy releases the GIL in the heavy loops)."""
        p = self.params
        a, b = permutations(p.num_perm, p.seed)

        def one(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
            start, stop = bounds
            all_hashes, all_offsets = shingle_hashes(
                text.slice(start, stop - start), p.unit, p.ngram, p.normalize
            )
            has = np.flatnonzero(np.diff(all_offsets) > 0)
            offsets = np.append(all_offsets[:-1][has], all_offsets[-1])
            hashes = (all_hashes >> np.uint64(32)).astype(np.uint32)
            return has + start, minhash_signatures(hashes, offsets, a, b)

        results = list((pool.map if pool is not None else map)(one, chunks(text)))
        if not results:
            return np.zeros(0, np.int64), np.zeros((0, p.num_perm), np.uint32)
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

    def _sketches(
        self, text: pa.Array, pool: ThreadPoolExecutor | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """What `process_all` keeps of a batch: row positions of the texts with shingles, their
        band hashes and (with `verify`) b-bit sketches, each chunk computed whole on `pool`."""
        p = self.params
        bands, rows = self.bands_rows

        def one(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
            start, stop = bounds
            positions, sigs = self.signatures(text.slice(start, stop - start))
            sketch = (sigs & np.uint32((1 << _SKETCH_BITS) - 1)).astype(np.uint8) if p.verify else None
            return positions + start, band_hashes(sigs, bands, rows), sketch

        results = list((pool.map if pool is not None else map)(one, chunks(text)))
        if not results:
            empty = np.zeros((0, p.num_perm), np.uint8) if p.verify else None
            return np.zeros(0, np.int64), np.zeros((0, bands), np.uint64), empty
        sketches = np.concatenate([r[2] for r in results]) if p.verify else None
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]), sketches

    def process_all(self, batches: Iterable[Batch]) -> Iterator[Verdict]:
        p = self.params
        bands, rows = self.bands_rows
        sizes: list[int] = []
        ids: list[pa.Array] = []
        members: list[np.ndarray] = []  # global positions of documents with shingles
        band_parts = RowParts(bands, np.uint64)
        sketches = RowParts(p.num_perm, np.uint8)
        total = 0
        pool = (
            ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="minhash") if _THREADS > 1 else None
        )
        try:
            for batch in batches:
                text = text_column(batch, "text")
                sizes.append(len(text))
                ids.append(batch.column("_id"))
                positions, band_values, sketch = self._sketches(text, pool)
                members.append(positions + total)
                band_parts.append(band_values)
                if sketch is not None:
                    sketches.append(sketch)
                total += len(text)
        finally:
            if pool is not None:
                pool.shutdown()
        roots = np.arange(total, dtype=np.int64)
        if members:
            member = np.concatenate(members)
            left, right = self._candidates(band_parts)
            del band_parts
            if p.verify:
                if len(left):
                    similar = estimated_jaccard(sketches, left, right) >= p.threshold
                    left, right = left[similar], right[similar]
                local = representatives(len(member), left, right, sketches, p.threshold)
            else:
                local = union_roots(len(member), left, right)
            del sketches
            roots[member] = member[local]
        yield from per_batch_verdicts(roots, ids, sizes, "near-duplicate", "near-duplicate of _id ")

    @staticmethod
    def _candidates(band_parts: RowParts) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs `(i, j)`, i < j (positions among documents with shingles), sharing a band."""
        index = np.arange(len(band_parts), dtype=np.int64)
        compiled = kernels()
        lefts, rights = [], []
        for j in range(band_parts.width):
            if compiled is not None:  # the same pairs, by hashing instead of sorting
                left, right = compiled["band_pairs"](band_parts.column(j))
            else:
                left, right = group_pairs(band_parts.column(j), index)
            lefts.append(left)
            rights.append(right)
        return unique_pairs(np.concatenate(lefts), np.concatenate(rights))
