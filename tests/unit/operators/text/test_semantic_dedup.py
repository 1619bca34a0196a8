import hashlib
import importlib.util

import numpy as np
import pyarrow as pa
import pytest
from dataflow_operators.text.semantic_dedup import SemanticDedupFilter, unit_rows
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from tests.unit.operators.text.test_minhash import batch, run

HAS_SENTENCE_TRANSFORMERS = importlib.util.find_spec("sentence_transformers") is not None


def bag_of_words(texts):
    """A fake embedding: word counts hashed into 4096 dimensions (cosine ~ word overlap)."""
    out = np.zeros((len(texts), 4096), np.float32)
    for i, text in enumerate(texts):
        assert text is not None and text.strip(), "blank texts must not be embedded"
        for word in text.lower().split():
            out[
                i, int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % 4096
            ] += 1
    return out


def table(vectors):
    """A fake embedding looking texts up in `vectors` (name -> vector)."""

    def embed(texts):
        return np.array([vectors[t] for t in texts], np.float32)

    return embed


def semantic(embed=bag_of_words, **params):
    return SemanticDedupFilter(SemanticDedupFilter.Params(**params), embed=embed)


def test_threshold_on_cosine_similarity():
    angle = np.arccos([0.96, 0.94])
    vectors = {
        "a": [1, 0, 0],
        "close": [0.96, np.sin(angle[0]), 0],  # cosine 0.96 with a
        "not so close": [0.94, 0, np.sin(angle[1])],  # cosine 0.94 with a
        "b": [0, 0, 5],  # length does not matter
        "b again": [0, 0, 1],
    }
    names = list(vectors)
    [(keep, reason, detail)] = run(semantic(table(vectors)), batch(names, names))
    assert keep == [True, False, True, True, False]
    assert reason == [None, "near-duplicate", None, None, "near-duplicate"]
    assert detail == [None, "near-duplicate of _id a", None, None, "near-duplicate of _id b"]
    [(keep, _, _)] = run(semantic(table(vectors), threshold=0.9), batch(names, names))
    assert keep == [True, False, False, True, False]


def test_greedy_against_kept_texts_only():
    # y is a duplicate of x; z resembles y but not x: z is kept because y was not.
    vectors = {"x": [1, 0], "y": [np.cos(0.25), np.sin(0.25)], "z": [np.cos(0.5), np.sin(0.5)]}
    [(keep, _, detail)] = run(
        semantic(table(vectors), threshold=0.95), batch(["x", "y", "z"], ["x", "y", "z"])
    )
    assert keep == [True, False, True] and detail[1] == "near-duplicate of _id x"


def test_names_the_most_similar_kept_text():
    vectors = {"p": [1, 0, 0], "q": [0.9, 0.435889894, 0], "r": [0.99, 0.141067, 0]}
    # p and q are kept (cosine 0.9 < 0.95); r is close to both: 0.99 with p, ~0.95 with q.
    [(keep, _, detail)] = run(semantic(table(vectors)), batch(["p", "q", "r"], ["p", "q", "r"]))
    assert keep == [True, True, False] and detail[2] == "near-duplicate of _id p"


def test_identical_texts_across_batches_and_groups():
    texts = [f"document number {i} about topic {i * 7} with words {i * 13} and {i * 17}" for i in range(1300)]
    first = batch([f"a{i}" for i in range(700)], texts[:700])
    second = batch([f"b{i}" for i in range(1300)], texts[700:] + texts[:700])
    results = run(semantic(threshold=0.999), first, batch([], []), second)
    assert results[0][0] == [True] * 700
    assert results[1] == ([], [], [])
    keep, _, detail = results[2]
    assert keep == [True] * 600 + [False] * 700
    assert detail[600:] == [f"near-duplicate of _id a{i}" for i in range(700)]


def test_unrelated_texts_are_kept():
    texts = [f"alpha{i} beta{i} gamma{i} delta{i}" for i in range(300)]
    [(keep, _, _)] = run(semantic(), batch([str(i) for i in range(300)], texts))
    assert all(keep)


def test_null_blank_and_zero_embeddings_are_kept():
    vectors = {"zero": [0, 0], "also zero": [0, 0], "v": [1, 1], "v2": [2, 2]}
    texts = [None, "", "  ", "zero", "also zero", "v", "v2", None]
    [(keep, _, detail)] = run(semantic(table(vectors)), batch([str(i) for i in range(8)], texts))
    assert keep == [True] * 6 + [False, True]
    assert detail[6] == "near-duplicate of _id 5"


def test_verdicts_stream_batch_by_batch():
    seen = []

    def batches():
        for i in range(3):
            seen.append(i)
            yield batch([str(i)], ["same text"])

    verdicts = semantic().process_all(batches())
    assert pa.array(next(verdicts).keep).to_pylist() == [True]
    assert seen == [0]
    assert [pa.array(v.keep).to_pylist() for v in verdicts] == [[False], [False]]


def test_unit_rows():
    vectors, ok = unit_rows([[3, 4], [0, 0], [np.nan, 1]])
    assert ok.tolist() == [True, False, False]
    assert np.allclose(vectors[0], [0.6, 0.8]) and not vectors[1:].any()


def test_params_are_validated():
    for bad in ({"threshold": 1.5}, {"threshold": -1}, {"batch_size": 0}, {"model": ""}, {"modle": "x"}):
        with pytest.raises(ValidationError):
            SemanticDedupFilter.Params(**bad)
    assert SemanticDedupFilter.Params().threshold == 0.95
    with pytest.raises(DataflowError, match="global operator"):
        semantic().filter(batch(["1"], ["x"]))


def test_missing_extra_fails_at_construction_with_the_pip_line(monkeypatch):
    import dataflow_cli.operator as operator_module

    # Whether or not the extra is installed here, act as if it were not.
    monkeypatch.setattr(operator_module, "_installed", lambda dist: False)
    with pytest.raises(DataflowError) as info:
        SemanticDedupFilter()
    assert "sentence-transformers" in info.value.reason
    assert info.value.hint.startswith("pip install ") and "sentence-transformers" in info.value.hint


@pytest.mark.skipif(not HAS_SENTENCE_TRANSFORMERS, reason="sentence-transformers is not installed")
def test_with_the_packaged_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = [
        "The city council approved the new budget for public parks on Tuesday evening.",
        "The city council approved the new budget for public parks on Tuesday evening!",
        "Heavy rain is expected along the coast this weekend, forecasters warned.",
        "On Tuesday evening the city council approved the new budget for the public parks.",
        "Quantum computers use qubits that can exist in superpositions of states.",
    ]
    op = SemanticDedupFilter(SemanticDedupFilter.Params(threshold=0.95))
    [(keep, _, detail)] = run(op, batch(["0", "1", "2", "3", "4"], texts))
    # Cosine with the first text: 0.967 (punctuation), 0.995 (reordered), ~0.1 for the others.
    assert keep == [True, False, True, False, True]
    assert detail[1] == detail[3] == "near-duplicate of _id 0"
