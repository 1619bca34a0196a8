"""The compiled kernels (`fast` extra) give exactly the numpy code's results."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pyarrow as pa
import pytest
from dataflow_operators._lib import kernels as kernel_module
from dataflow_operators._lib.neardup import group_pairs, unique_pairs
from dataflow_operators.text.exact_dedup import ExactDedupFilter
from dataflow_operators.text.length import LengthEvaluator
from dataflow_operators.text.minhash_dedup import MinhashDedupFilter, band_hashes
from dataflow_operators.text.quality import CharRatioEvaluator
from dataflow_operators.text.repetition import RepetitionEvaluator

from dataflow_cli.operator import Batch

pytest.importorskip("numba")

WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
ODD = [
    "é",  # 2 bytes
    "\u0301",  # combining mark
    "中文字",  # CJK, no spaces
    "😀",  # 4 bytes, a symbol (a separator for MinHash)
    "\U0001d400",  # mathematical bold A (plane 1 letter)
    "\U000e0101",  # variation selectors supplement (a mark, beyond the class table)
    "\U000e0041",  # tag character (beyond the class table)
    "\U000f0000",  # private use, plane 15
    "—",
    "…",
    "«",
    "#",
    "\x00",
]


def corpus(n: int = 400, seed: int = 11) -> list[str | None]:
    rng = random.Random(seed)
    words = ["alpha", "Beta", "gamma,", "DELTA.", "épée", "naïve", "x", "42", "3.14", "中文", "😀😀"]
    out: list[str | None] = [None, "", " ", "a", "ab" * 40, "abcdefghij" * 5, "\n\n", "x\n", "x\ny\n\nz"]
    while len(out) < n:
        parts = []
        for _ in range(rng.randint(0, 120)):
            roll = rng.random()
            if roll < 0.7:
                parts.append(rng.choice(words))
            elif roll < 0.85:
                parts.append(rng.choice(ODD))
            parts.append(rng.choice(WHITESPACE) if rng.random() < 0.2 else " ")
        text = "".join(parts)
        if rng.random() < 0.2:
            text = text * rng.randint(2, 4)  # repeated content: character n-grams repeat
        out.append(text)
    return out


@contextlib.contextmanager
def numpy_only():
    saved = kernel_module._compiled, kernel_module._tried
    kernel_module._compiled, kernel_module._tried = None, True
    try:
        yield
    finally:
        kernel_module._compiled, kernel_module._tried = saved


def both(fn):
    assert kernel_module.kernels() is not None
    compiled = fn()
    with numpy_only():
        reference = fn()
    return compiled, reference


@pytest.fixture(params=[False, True], ids=["whole", "sliced"])
def text(request) -> pa.Array:
    array = pa.array(corpus(), pa.string())
    return array.slice(7, 350) if request.param else array


def evaluate(op, text: pa.Array) -> dict:
    out = op.process(Batch(pa.table({"text": text}), {}))
    return {k: pa.array(v).to_pylist() for k, v in out.items()}


def test_length_counts_match(text):
    compiled, reference = both(lambda: evaluate(LengthEvaluator(), text))
    assert compiled == reference


def test_character_classes_match(text):
    compiled, reference = both(lambda: evaluate(CharRatioEvaluator(), text))
    assert compiled == reference


@pytest.mark.parametrize("n", [1, 3, 10, 50])
def test_character_repetition_matches(text, n):
    op = RepetitionEvaluator(RepetitionEvaluator.Params(char_ngram=n, signals=["char_rep_ratio"]))
    compiled, reference = both(lambda: evaluate(op, text))
    assert compiled == reference
    assert any(0 < v < 1 for v in compiled["char_rep_ratio"] if v is not None)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("ngram", [1, 5])
def test_minhash_signatures_match(text, normalize, ngram):
    op = MinhashDedupFilter(MinhashDedupFilter.Params(ngram=ngram, normalize=normalize, num_perm=64))
    (rows, sigs), (rows_np, sigs_np) = both(lambda: op.signatures(text))
    assert np.array_equal(rows, rows_np) and np.array_equal(sigs, sigs_np)
    assert len(rows) > 300


def test_minhash_verdicts_match():
    texts = corpus(560, seed=3)
    texts += [t + " extra words" for t in texts[100:140] if t]  # near-duplicates of earlier rows
    table = pa.table({"_id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.string())})
    batches = [Batch(table.slice(i, 150), {}) for i in range(0, len(texts), 150)]

    def verdicts():
        op = MinhashDedupFilter(MinhashDedupFilter.Params(threshold=0.5))
        return [(list(v.keep), v.detail.to_pylist()) for v in op.process_all(iter(batches))]

    compiled, reference = both(verdicts)
    assert compiled == reference
    assert sum(keep.count(False) for keep, _ in compiled) >= 20  # the near-duplicates were found


@pytest.mark.parametrize("normalize", [False, True])
def test_exact_dedup_digests_match(text, normalize):
    # Rows of every length around the BLAKE2b block size (128 bytes), nulls, and the corpus.
    lengths = [0, 1, 100, 105, 106, 107, 108, 127, 128, 129, 255, 256, 257, 1000]
    extra = pa.array(["é" * (n // 2) + "x" * (n % 2) for n in lengths] + [None], pa.string())
    column = pa.concat_arrays([text, extra, text.slice(0, 30)])  # the repeat: duplicates to find
    numbers = [*range(len(column) - 30), *range(30)]  # the repeated rows repeat these too
    table = pa.table({"_id": [str(i) for i in range(len(column))], "text": column, "n": numbers})

    def run(columns):
        op = ExactDedupFilter(ExactDedupFilter.Params(columns=columns, normalize=normalize))
        batches = [Batch(table.slice(i, 120), {}) for i in range(0, len(column), 120)]
        digests = [op._digests(b).tobytes() for b in batches]
        verdicts = [(list(v.keep), v.detail.to_pylist()) for v in op.process_all(iter(batches))]
        return digests, verdicts

    for columns in (["text"], ["text", "n"]):
        compiled, reference = both(lambda columns=columns: run(columns))
        assert compiled == reference
        assert sum(keep.count(False) for keep, _ in compiled[1]) >= 30


def test_band_hashes_and_pairs_match():
    rng = np.random.default_rng(5)
    signatures = rng.integers(0, 1 << 32, (500, 256), dtype=np.uint64).astype(np.uint32)
    signatures[250:300] = signatures[:50]  # equal bands: shared buckets
    signatures[400:, :40] = signatures[0, :40]  # one crowded bucket per band of the first rows
    compiled, reference = both(lambda: band_hashes(signatures, 25, 10))
    assert compiled.dtype == reference.dtype == np.uint64
    assert np.array_equal(compiled, reference)
    index = np.arange(len(reference), dtype=np.int64)
    found = 0
    for j in range(reference.shape[1]):
        keys = reference[:, j]
        pairs = unique_pairs(*kernel_module.kernels()["band_pairs"](keys))
        expected = unique_pairs(*group_pairs(keys, index))
        assert np.array_equal(pairs[0], expected[0]) and np.array_equal(pairs[1], expected[1])
        found += len(expected[0])
    assert found > 25 * 50 + 4 * 100  # the copied rows in every band, the crowded bucket in four


def test_exact_dedup_table_grows_and_keeps_first_rows():
    # Enough distinct rows to grow the compiled table several times, duplicates across batches.
    texts = [f"row {i % 5000}" for i in range(12000)]
    table = pa.table({"_id": [f"id{i}" for i in range(len(texts))], "text": texts})

    def run():
        op = ExactDedupFilter(ExactDedupFilter.Params(columns=["text"]))
        batches = [Batch(table.slice(i, 700), {}) for i in range(0, len(texts), 700)]
        return [(list(v.keep), v.detail.to_pylist()) for v in op.process_all(iter(batches))]

    compiled, reference = both(run)
    assert compiled == reference
    details = [d for _, detail in compiled for d in detail]
    assert details[5000:5003] == ["duplicate of _id id0", "duplicate of _id id1", "duplicate of _id id2"]
    assert sum(keep.count(True) for keep, _ in compiled) == 5000
