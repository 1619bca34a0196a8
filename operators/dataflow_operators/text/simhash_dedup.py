"""Near-duplicate detection with 64-bit SimHash fingerprints (a global operator)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.neardup import (
    MAX_NGRAM,
    chunks,
    group_pairs,
    per_batch_verdicts,
    shingle,
    union_roots,
)

_BLOCK_FEATURES = 16384  # features per block of the bit counting (64 x 16384 bytes = 1 MB)


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x)
    return _POPCOUNT8[np.ascontiguousarray(x).view(np.uint8)].reshape(len(x), 8).sum(axis=1)


def simhash_fingerprints(hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """64-bit SimHash of each document's feature hashes (uint64, grouped by `offsets`; every
    document needs at least one feature): bit k is set when more than half of the features
    (counted with repeats) have bit k set."""
    n = len(offsets) - 1
    counts = np.empty((64, n), np.int32)
    d0 = 0
    while d0 < n:
        d1 = int(np.searchsorted(offsets, offsets[d0] + _BLOCK_FEATURES, side="right")) - 1
        d1 = min(n, max(d1, d0 + 1))
        lo, hi = int(offsets[d0]), int(offsets[d1])
        as_bytes = np.ascontiguousarray(hashes[lo:hi]).view(np.uint8).reshape(hi - lo, 8)
        bits = np.unpackbits(as_bytes, axis=1, bitorder="little")  # column k: bit k of the uint64
        counts[:, d0:d1] = np.add.reduceat(
            np.ascontiguousarray(bits.T), offsets[d0:d1] - lo, axis=1, dtype=np.int32
        )
        d0 = d1
    features = np.diff(offsets).astype(np.int32)
    majority = np.ascontiguousarray((2 * counts > features[None, :]).T)  # (n, 64)
    return np.packbits(majority, axis=1, bitorder="little").view("<u8").reshape(n).astype(np.uint64)


def block_bounds(max_distance: int) -> list[tuple[int, int]]:
    """The 64 bits cut into `max_distance + 1` blocks of near-equal width, as (shift, width)."""
    blocks = max_distance + 1
    widths = [64 // blocks + (1 if i < 64 % blocks else 0) for i in range(blocks)]
    bounds, shift = [], 0
    for width in widths:
        bounds.append((shift, width))
        shift += width
    return bounds


def close_pairs(fingerprints: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs `(i, j)`, i < j, of distinct fingerprints within Hamming distance `max_distance`.

    Permuted blocks: two fingerprints within distance k agree on at least one of k + 1 blocks
    (pigeonhole), so only fingerprints sharing a block value are compared (every pair within a
    group of equal block values, then an exact Hamming check). The cost is the number of such
    pairs: about n * n / 2**(64 / (k + 1)) per block for random fingerprints.
    """
    n = len(fingerprints)
    lefts, rights = [], []
    for shift, width in block_bounds(max_distance):
        key = (fingerprints >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        key = key[order]
        boundary = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1], [True]]))
        size = np.diff(boundary)
        group_end = np.repeat(boundary[1:], size)
        active = np.flatnonzero(group_end - np.arange(n) > 1)
        distance = 1
        while len(active):
            i = order[active]
            j = order[active + distance]
            close = popcount64(fingerprints[i] ^ fingerprints[j]) <= max_distance
            lefts.append(np.minimum(i[close], j[close]))
            rights.append(np.maximum(i[close], j[close]))
            distance += 1
            active = active[group_end[active] - active > distance]
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(lefts).astype(np.int64), np.concatenate(rights).astype(np.int64)


class SimhashDedupFilter(Filter):
    """Drop near-duplicate texts by 64-bit SimHash within a Hamming distance, keeping the first.

    Each text is normalized (lowercase, punctuation and symbols to spaces, whitespace collapsed)
    and cut into word n-gram features (character n-grams with `unit: char`; a text shorter than
    `ngram` tokens is one feature); each feature is hashed to 64 bits and the fingerprint's bit k
    is set when most features have bit k set. Candidates come from the permuted-blocks method:
    the 64 bits are split into `max_distance + 1` blocks and texts sharing any block value are
    compared exactly (Hamming distance of the fingerprints). Identical fingerprints are grouped
    first. Close pairs are clustered with union-find; the first text of each cluster (stream
    order) is kept, the others are dropped with reason "near-duplicate" and detail
    "near-duplicate of _id <kept id>" (clusters are transitive).

    A null text, or one with no token after normalization, has no features and is always kept.
    Memory: one 64-bit fingerprint per text. SimHash is cheaper but coarser than
    `minhash_dedup_filter`: use it for very similar texts (a few words changed in long texts).

    Inputs:
        text: the text to compare.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        max_distance: largest Hamming distance between fingerprints of near-duplicates (default 3).
        unit: feature unit, word (default) or char.
        ngram: tokens per feature (default 3).
        normalize: lowercase and strip punctuation and symbols first (default true).
    """

    name = "simhash_dedup_filter"
    scope = "global"
    inputs = {"text": Port("text to compare")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        max_distance: int = Field(
            3,
            ge=0,
            le=8,
            description="Largest Hamming distance (of 64 bits) between the fingerprints of "
            "near-duplicates; the candidate search gets slower as it grows.",
        )
        unit: Literal["word", "char"] = Field(
            "word", description="Feature unit: word n-grams, or character n-grams for unsegmented scripts."
        )
        ngram: int = Field(3, ge=1, le=MAX_NGRAM, description="Tokens (words or characters) per feature.")
        normalize: bool = Field(
            True,
            description="Lowercase, turn punctuation and symbols into spaces and collapse whitespace first.",
        )

    def filter(self, batch: Batch) -> Verdict:
        raise DataflowError(f"`{self.name}` is a global operator: run it through process_all(batches)")

    def fingerprints(self, text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of the texts that have features and their fingerprints."""
        p = self.params
        positions, parts = [], []
        for start, stop in chunks(text):
            sh = shingle(text.slice(start, stop - start), p.unit, p.ngram, p.normalize)
            has = np.flatnonzero(sh.counts > 0)
            if len(has):
                offsets = np.append(sh.offsets[:-1][has], sh.offsets[-1])
                parts.append(simhash_fingerprints(sh.hashes, offsets))
                positions.append(has + start)
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64)
        return np.concatenate(positions), np.concatenate(parts)

    def process_all(self, batches: Iterable[Batch]) -> Iterator[Verdict]:
        sizes: list[int] = []
        ids: list[pa.Array] = []
        members: list[np.ndarray] = []
        prints: list[np.ndarray] = []
        total = 0
        for batch in batches:
            text = text_column(batch, "text")
            positions, fingerprints = self.fingerprints(text)
            sizes.append(len(text))
            ids.append(batch.column("_id"))
            members.append(positions + total)
            prints.append(fingerprints)
            total += len(text)
        roots = np.arange(total, dtype=np.int64)
        if members:
            member = np.concatenate(members)
            fingerprints = np.concatenate(prints)
            # Identical fingerprints: one component each, represented by its first text.
            distinct, first, inverse = np.unique(fingerprints, return_index=True, return_inverse=True)
            same_left, same_right = group_pairs(
                inverse.astype(np.int64), np.arange(len(member), dtype=np.int64)
            )
            near_left, near_right = close_pairs(distinct, self.params.max_distance)
            left = np.concatenate([same_left, first[near_left]])
            right = np.concatenate([same_right, first[near_right]])
            local = union_roots(len(member), left, right)
            roots[member] = member[local]
        yield from per_batch_verdicts(roots, ids, sizes, "near-duplicate", "near-duplicate of _id ")
