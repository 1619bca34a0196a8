import numpy as np
import pyarrow as pa
import pytest
from dataflow_operators.text.simhash_dedup import (
    SimhashDedupFilter,
    block_bounds,
    close_pairs,
    popcount64,
    simhash_fingerprints,
)
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from tests.unit.operators.text.test_minhash import batch, doc, edit, run


def simhash(**params):
    return SimhashDedupFilter(SimhashDedupFilter.Params(**params))


def test_fingerprint_bits_follow_the_majority_of_features():
    hashes = np.array([0b1011, 0b0011, 0b0001, 1 << 63, 1 << 63, 0], np.uint64)
    offsets = np.array([0, 3, 6])
    assert simhash_fingerprints(hashes, offsets).tolist() == [0b0011, 1 << 63]
    # A tie (half of the features) leaves the bit unset.
    assert simhash_fingerprints(np.array([1 << 63 | 1, 1], np.uint64), np.array([0, 2])).tolist() == [1]


def test_blocks_cover_the_64_bits():
    for k in range(9):
        bounds = block_bounds(k)
        assert len(bounds) == k + 1
        assert sum(w for _, w in bounds) == 64 and bounds[0][0] == 0
        assert max(w for _, w in bounds) - min(w for _, w in bounds) <= 1


def test_close_pairs_find_every_pair_within_the_distance():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 1 << 63, 300, dtype=np.uint64)
    flips = [np.uint64(0)] + [np.uint64(1) << np.uint64(int(b)) for b in rng.integers(0, 64, 3)]
    near = base[:100] ^ np.bitwise_or.reduce(flips[1:])  # 3 bits away (or fewer, if a bit repeats)
    prints = np.concatenate([base, near])
    left, right = close_pairs(prints, 3)
    found = set(zip(left.tolist(), right.tolist(), strict=True))
    brute = {
        (i, j)
        for i in range(len(prints))
        for j in range(i + 1, len(prints))
        if popcount64(np.array([prints[i] ^ prints[j]], np.uint64))[0] <= 3
    }
    assert found == brute and len(brute) >= 100


def test_popcount():
    values = np.array([0, 1, 3, (1 << 64) - 1, 1 << 63], np.uint64)
    assert popcount64(values).tolist() == [0, 1, 2, 64, 1]


def test_identical_documents_are_caught_and_name_the_first():
    texts = [doc(i, 150) for i in range(30)]
    ids = [f"a{i}" for i in range(30)] + [f"b{i}" for i in range(30)]
    [(keep, reason, detail)] = run(simhash(), batch(ids, texts + [t.upper() for t in texts]))
    assert keep == [True] * 30 + [False] * 30
    assert set(reason[30:]) == {"near-duplicate"}
    assert detail[30:] == [f"near-duplicate of _id a{i}" for i in range(30)]


def test_a_word_changed_in_a_long_document_is_caught():
    source = doc(7, 600)
    near = edit(source, 1 / 600, seed=1)
    [(keep, _, detail)] = run(simhash(), batch(["s", "n"], [source, near]))
    assert keep == [True, False] and detail[1] == "near-duplicate of _id s"


def test_unrelated_documents_are_never_dropped():
    texts = [doc(500 + i, 100) for i in range(500)]
    [(keep, _, _)] = run(simhash(), batch([str(i) for i in range(500)], texts))
    assert all(keep)


def test_keep_first_across_batches_nulls_and_empty_texts():
    a, b = doc(1), doc(2)
    results = run(
        simhash(),
        batch(["1", "2", "3"], [None, a, ""]),
        batch([], []),
        batch(["4", "5", "6", "7"], [b, None, "", a]),
    )
    assert results[0] == ([True, True, True], [None, None, None], [None, None, None])
    assert results[1] == ([], [], [])
    assert results[2][0] == [True, True, True, False]
    assert results[2][2] == [None, None, None, "near-duplicate of _id 2"]


def test_max_distance_zero_means_identical_fingerprints():
    source = doc(9, 300)
    texts = [source, edit(source, 0.05, 2), source]
    [(keep, _, _)] = run(simhash(max_distance=0), batch(["1", "2", "3"], texts))
    assert keep == [True, True, False]


def test_character_features_for_chinese():
    base = "春天来了，公园里的花都开了。孩子们在草地上放风筝，老人们在湖边散步聊天。" * 3
    near = base[:-3] + "天。"
    other = "今天下午我们去图书馆看书，图书馆里很安静，每个人都在认真地学习和阅读。" * 3
    [(keep, _, _)] = run(simhash(unit="char", ngram=3), batch(["1", "2", "3"], [base, near, other]))
    assert keep == [True, False, True]


def test_params_are_validated():
    for bad in ({"max_distance": -1}, {"max_distance": 9}, {"ngram": 0}, {"unit": "line"}, {"bits": 32}):
        with pytest.raises(ValidationError):
            SimhashDedupFilter.Params(**bad)
    assert SimhashDedupFilter.Params().max_distance == 3
    with pytest.raises(DataflowError, match="global operator"):
        simhash().filter(batch(["1"], ["x"]))


def test_fingerprints_are_deterministic():
    texts = pa.array([doc(3), doc(4)])
    first = simhash().fingerprints(texts)[1]
    assert np.array_equal(first, simhash().fingerprints(texts)[1])
