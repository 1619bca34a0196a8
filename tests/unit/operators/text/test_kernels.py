"""The compiled kernels (`fast` extra) give exactly the numpy code's results."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pyarrow as pa
import pytest
from dataflow_operators._lib import kernels as kernel_module
from dataflow_operators.text.length import LengthEvaluator
from dataflow_operators.text.minhash_dedup import MinhashDedupFilter
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
