import json
import random
import shutil

import numpy as np
import pyarrow as pa
import pytest
from dataflow_operators._lib.neardup import jaccard, python_shingles, shingle, union_roots
from dataflow_operators.text.minhash_dedup import MinhashDedupFilter, estimated_jaccard, optimal_bands
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Verdict
from tests.conftest import REPO, read_jsonl
from tests.unit.operators import test_conventions as conventions

VOCAB = [
    "".join(random.Random(i).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2 + i % 8)) + str(i % 7)
    for i in range(3000)
]


def doc(seed: int, words: int = 250) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(words))


def edit(text: str, fraction: float, seed: int) -> str:
    """`text` with `fraction` of its words replaced (spread out, at distinct positions)."""
    rng = random.Random(seed)
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, round(fraction * len(words)))):
        words[i] = "zz" + rng.choice(VOCAB)
    return " ".join(words)


def minhash(**params):
    return MinhashDedupFilter(MinhashDedupFilter.Params(**params))


def batch(ids, texts):
    return Batch(pa.table({"_id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())}))


def run(op, *batches):
    out = []
    for verdict in op.process_all(list(batches)):
        assert isinstance(verdict, Verdict)
        keep = pa.array(verdict.keep)
        assert keep.type == pa.bool_() and keep.null_count == 0
        out.append(
            (
                keep.to_pylist(),
                pa.array(verdict.reason, pa.string()).to_pylist(),
                pa.array(verdict.detail, pa.string()).to_pylist(),
            )
        )
    return out


def flat(results):
    keep = [k for r in results for k in r[0]]
    detail = [d for r in results for d in r[2]]
    return keep, detail


def test_bands_and_rows_for_the_default_threshold_are_pinned():
    assert optimal_bands(0.7, 256) == (25, 10)
    assert minhash().bands_rows == (25, 10)
    # Checked against an independent integration (trapezoid rule on 1001 points).
    assert optimal_bands(0.5, 128) == (25, 5)
    assert optimal_bands(0.9, 64) == (3, 21)
    # Weighting false negatives more buys recall with more, shorter bands.
    assert optimal_bands(0.7, 256, 0.8) == (28, 9)


def test_identical_documents_are_always_caught_and_name_the_first():
    texts = [doc(i) for i in range(40)]
    ids = [f"a{i}" for i in range(40)] + [f"b{i}" for i in range(40)]
    copies = texts[::-1]  # every document again, in another order, some with other spacing/case
    copies = [t.upper() if i % 3 == 0 else t.replace(" ", "  ") for i, t in enumerate(copies)]
    [(keep, reason, detail)] = run(minhash(), batch(ids, texts + copies))
    assert keep == [True] * 40 + [False] * 40
    assert set(reason[40:]) == {"near-duplicate"} and reason[:40] == [None] * 40
    assert detail[40:] == [f"near-duplicate of _id a{39 - i}" for i in range(40)]


def test_two_percent_of_words_changed_is_caught_at_threshold_0_7():
    source = doc(1, 300)
    near = edit(source, 0.02, seed=2)
    assert 0.8 < jaccard(python_shingles(source), python_shingles(near)) < 0.85
    [(keep, _, detail)] = run(minhash(), batch(["s", "n"], [source, near]))
    assert keep == [True, False] and detail == [None, "near-duplicate of _id s"]
    # Over many such pairs, LSH with (25, 10) finds a pair at J ~ 0.82 with probability ~ 0.97.
    sources = [doc(100 + i, 300) for i in range(60)]
    nears = [edit(s, 0.02, seed=i) for i, s in enumerate(sources)]
    [(keep, _, _)] = run(minhash(), batch([str(i) for i in range(120)], sources + nears))
    assert all(keep[:60]) and sum(not k for k in keep[60:]) >= 55


def test_unrelated_documents_are_never_dropped():
    texts = [doc(1000 + i, 120) for i in range(400)]
    # Shared boilerplate (a footer) is not enough to make documents near-duplicates.
    texts = [t + " share this article on facebook twitter or email" for t in texts]
    [(keep, reason, _)] = run(minhash(), batch([str(i) for i in range(400)], texts))
    assert all(keep) and reason == [None] * 400


def test_below_threshold_is_kept_when_verified():
    source = doc(5, 200)
    far = edit(source, 0.12, seed=3)  # Jaccard ~ 0.3
    assert jaccard(python_shingles(source), python_shingles(far)) < 0.5
    [(keep, _, _)] = run(minhash(), batch(["1", "2"], [source, far]))
    assert keep == [True, True]


def test_keep_first_across_batch_boundaries_and_one_verdict_per_batch():
    a, b, c = doc(11), doc(12), doc(13)
    batches = [
        batch(["1", "2"], [a, b]),
        batch([], []),
        batch(["3", "4", "5"], [edit(b, 0.01, 1), c, a]),
        batch(["6"], [edit(c, 0.01, 2)]),
    ]
    results = run(minhash(), *batches)
    assert [len(r[0]) for r in results] == [2, 0, 3, 1]
    assert results[0] == ([True, True], [None, None], [None, None])
    assert results[1] == ([], [], [])
    assert results[2][0] == [False, True, False]
    assert results[2][2] == ["near-duplicate of _id 2", None, "near-duplicate of _id 1"]
    assert results[3] == ([False], ["near-duplicate"], ["near-duplicate of _id 4"])


def test_union_roots_are_the_first_member_of_each_component():
    roots = union_roots(7, np.array([5, 1, 3, 2]), np.array([6, 3, 4, 6]))
    assert roots.tolist() == [0, 1, 2, 1, 1, 2, 2]
    assert union_roots(3, np.array([0, 1]), np.array([2, 2])).tolist() == [0, 0, 0]


def chain(length: int, block: int = 30, seed: int = 50) -> list[str]:
    """Documents 0..length-1, each the previous one with another block of `block` words replaced:
    neighbours share most word 5-grams, documents two steps apart far fewer."""
    rng = random.Random(seed)
    words = doc(seed, 300).split()
    texts = [" ".join(words)]
    for step in range(1, length):
        start = 10 + (step - 1) * (block + 10)
        words = words[:start] + ["zz" + rng.choice(VOCAB) for _ in range(block)] + words[start + block :]
        texts.append(" ".join(words))
    return texts


def test_a_chain_of_similar_documents_drops_only_duplicates_of_the_kept_one():
    a, b, c, d, e = texts = chain(5)
    shingles = [python_shingles(t) for t in texts]
    for i in range(4):  # neighbours are near-duplicates, two steps apart they are not
        assert jaccard(shingles[i], shingles[i + 1]) > 0.78
    for i in range(3):
        assert jaccard(shingles[i], shingles[i + 2]) < 0.64
    # Bands of 7 rows: every neighbour pair (J ~ 0.79) is a candidate with probability 0.999, and
    # most pairs two steps apart (J ~ 0.63) too, so only verification keeps the chain apart.
    op = minhash(false_negative_weight=0.95)
    assert op.bands_rows == (36, 7)
    [(keep, _, detail)] = run(op, batch(list("ABCDE"), texts))
    # B goes as a duplicate of A; C resembles A only through B, so it stays, and so on.
    assert keep == [True, False, True, False, True]
    assert detail == [None, "near-duplicate of _id A", None, "near-duplicate of _id C", None]
    # In another order the chain resolves from its first document: C first keeps B and D out.
    [(keep, _, detail)] = run(op, batch(list("CBDAE"), [c, b, d, a, e]))
    assert keep == [True, False, False, True, True]
    assert detail[1:3] == ["near-duplicate of _id C", "near-duplicate of _id C"]
    # Without verification, candidate pairs are taken as they are: the chain is one cluster.
    [(keep, _, detail)] = run(minhash(verify=False, false_negative_weight=0.95), batch(list("ABCDE"), texts))
    assert keep == [True, False, False, False, False]
    assert set(detail[1:]) == {"near-duplicate of _id A"}


def test_every_drop_is_verified_against_the_document_kept_in_its_place():
    rng = random.Random(7)
    texts, ids = [], []
    for k in range(6):  # six chains of four, interleaved with unrelated documents
        for i, text in enumerate(chain(4, seed=60 + k)):
            texts.append(text)
            ids.append(f"{k}-{i}")
        texts.append(doc(900 + k))
        ids.append(f"other-{k}")
    order = list(range(len(texts)))
    rng.shuffle(order)
    texts, ids = [texts[i] for i in order], [ids[i] for i in order]
    [(keep, _, detail)] = run(minhash(), batch(ids, texts))
    by_id = dict(zip(ids, texts, strict=True))
    dropped = [(ids[i], detail[i].rsplit(" ", 1)[1]) for i in range(len(texts)) if not keep[i]]
    assert len(dropped) >= 6
    for gone, kept in dropped:
        assert keep[ids.index(kept)]
        assert jaccard(python_shingles(by_id[gone]), python_shingles(by_id[kept])) > 0.7


def test_nulls_and_empty_texts_are_never_duplicates():
    texts = [None, "", "   ", "!!! ...", None, "", "!!! ...", doc(3), doc(3)]
    [(keep, _, detail)] = run(minhash(), batch([str(i) for i in range(9)], texts))
    assert keep == [True] * 8 + [False]
    assert detail[8] == "near-duplicate of _id 7"


def test_short_documents_are_one_shingle():
    texts = ["Hello, world!", "hello world", "hello there world", "Hello world again"]
    [(keep, _, detail)] = run(minhash(), batch(["1", "2", "3", "4"], texts))
    assert keep == [True, False, True, True] and detail[1] == "near-duplicate of _id 1"


def test_chinese_with_character_ngrams():
    base = "如何在家中泡一杯好茶。首先选择新鲜的茶叶，绿茶适合用八十度左右的水，红茶和乌龙茶可以用接近沸腾的水。先用热水温杯，再放入茶叶。第一泡的时间不要太长，大约三十秒即可，之后每一泡可以适当延长。好的茶叶可以冲泡多次，每一次都会有不同的香气和味道。"
    near = base.replace("三十秒", "二十秒")
    other = "今天的天气非常好，我们一起去公园散步吧。公园里有很多人在跑步、打太极拳和放风筝。孩子们在草地上玩耍，老人们坐在长椅上聊天。湖边的柳树已经发芽了，春天真的来了。傍晚的时候，我们在湖边的小饭馆吃了晚饭。"
    ids = ["base", "near", "other"]
    [(keep, _, detail)] = run(minhash(unit="char", ngram=5), batch(ids, [base, near, other]))
    assert keep == [True, False, True] and detail[1] == "near-duplicate of _id base"
    # Word shingles see each clause as one token: the changed clause alone makes them differ.
    assert jaccard(python_shingles(base, "char", 5), python_shingles(near, "char", 5)) > 0.9


def test_without_normalization_case_and_punctuation_count():
    text = doc(21, 100)
    loud = text.upper()
    [(keep, _, _)] = run(minhash(normalize=False), batch(["1", "2"], [text, loud]))
    assert keep == [True, True]
    [(keep, _, _)] = run(minhash(normalize=True), batch(["1", "2"], [text, loud]))
    assert keep == [True, False]


def test_without_verification_candidates_are_accepted():
    texts = [doc(31), doc(32)]
    texts.append(edit(texts[0], 0.01, 4))
    [(keep, _, detail)] = run(minhash(verify=False), batch(["1", "2", "3"], texts))
    assert keep == [True, True, False] and detail[2] == "near-duplicate of _id 1"


def test_estimated_jaccard_is_close_to_exact():
    op = minhash()
    source = doc(41, 300)
    texts = [source] + [edit(source, f, i) for i, f in enumerate((0.01, 0.03, 0.06, 0.1))]
    positions, sigs = op.signatures(pa.array(texts))
    assert positions.tolist() == [0, 1, 2, 3, 4]
    sketches = (sigs & 0xFF).astype(np.uint8)
    estimate = estimated_jaccard(sketches, np.zeros(4, np.int64), np.arange(1, 5))
    exact = [jaccard(python_shingles(source), python_shingles(t)) for t in texts[1:]]
    assert np.abs(estimate - np.array(exact)).max() < 0.1


def test_vectorised_shingles_match_the_python_reference():
    rng = random.Random(5)
    alphabet = list("abcAB  \t\n.,!?-'’“”—éÉßİΣσς東京数据。、，😀\u00a0\u3000x1$€")
    texts = [None] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(60)]
    for unit in ("word", "char"):
        for normalize in (True, False):
            for n in (1, 3, 5):
                sh = shingle(pa.array(texts, pa.string()), unit, n, normalize)
                sets = [set(sh.hashes[sh.offsets[i] : sh.offsets[i + 1]].tolist()) for i in range(len(texts))]
                ref = [python_shingles(t, unit, n, normalize) for t in texts]
                for i in range(len(texts)):
                    assert len(sets[i]) == len(ref[i]), (unit, normalize, n, texts[i])
                    for j in range(i):
                        assert len(sets[i] & sets[j]) == len(ref[i] & ref[j]), (texts[i], texts[j])


def test_shingle_hashes_do_not_depend_on_the_other_rows():
    text = doc(8, 20)
    alone = shingle(pa.array([text]), "word", 5, True).hashes
    for others in (["x"], [None, "", "a b"], [doc(9, 3), doc(10, 50)]):
        sh = shingle(pa.array([*others, text], pa.string()), "word", 5, True)
        assert sh.hashes[sh.offsets[-2] :].tolist() == alone.tolist()


def test_params_are_validated():
    for bad in (
        {"threshold": 0},
        {"threshold": 1.0},
        {"threshold": 1.5},
        {"unit": "token"},
        {"ngram": 0},
        {"ngram": 65},
        {"num_perm": 4},
        {"num_perm": 5000},
        {"false_negative_weight": 1},
        {"bands": 3},
    ):
        with pytest.raises(ValidationError):
            MinhashDedupFilter.Params(**bad)
    assert MinhashDedupFilter.Params().model_dump() == {
        "threshold": 0.7,
        "unit": "word",
        "ngram": 5,
        "num_perm": 256,
        "normalize": True,
        "verify": True,
        "false_negative_weight": 0.5,
        "seed": 1,
    }


def test_is_global_only_and_follows_the_conventions():
    with pytest.raises(DataflowError, match="global operator"):
        minhash().filter(batch(["1"], ["x"]))
    assert list(minhash().process_all([])) == []
    for name in (
        "minhash_dedup_filter",
        "simhash_dedup_filter",
        "semantic_dedup_filter",
        "ngram_decontam_filter",
    ):
        conventions.test_conventions(name)


def test_pretrain_pipeline_runs_through_the_cli(cli, tmp_path):
    project = tmp_path / "pretrain_filter"
    shutil.copytree(REPO / "pipelines" / "pretrain_filter", project, ignore=shutil.ignore_patterns("out"))
    stats = cli.json("run", project / "pipeline.yaml", "--run-dir", tmp_path / "run", "--quiet")
    assert stats["rows_read"] == 63
    assert stats["rows_read"] == stats["rows_written"] + stats["rows_rejected"]
    by_name = {s["name"]: s for s in stats["stages"]}
    assert by_name["exact_dedup"]["dropped_by_reason"] == {"duplicate": 4}
    assert by_name["near_dedup"]["dropped_by_reason"] == {"near-duplicate": 11}
    rejects = read_jsonl(project / "out" / "rejects" / "pretrain.rejects.jsonl")
    assert len(rejects) == stats["rows_rejected"]
    url_of = {r["id"]: r["url"] for r in read_jsonl(project / "data" / "sample.jsonl")}
    kept = {r["id"] for r in read_jsonl(project / "out" / "pretrain.jsonl")}
    near = [r for r in rejects if r["_stage"] == "near_dedup"]
    assert {r["url"] for r in near} >= {
        "https://news-mirror.example.net/bread",
        "https://nachrichten.beispiel.de/eisenbahn",
        "https://es.example.org/plantas",
    }
    for r in near:
        assert r["_reason"].startswith("near-duplicate: near-duplicate of _id ")
        kept_row = int(r["_reason"].rsplit(" ", 1)[1])
        assert f"doc-{kept_row:03d}" in kept  # the engine's _id is the row number
        assert url_of[f"doc-{kept_row:03d}"] != r["url"]
    assert "https://example.cn/tea" in {url_of[i] for i in kept}
    json.dumps(stats)
