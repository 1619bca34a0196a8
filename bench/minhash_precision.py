"""MinHash dedup precision and recall on planted near-duplicates at several similarity levels,
including chains of edits (A ~ B ~ C with A and C dissimilar).

    python bench/minhash_precision.py [--docs 200000] [--seed 11] [--repeat 3] [--threshold 0.7]

The corpus (built once, cached under bench/data/) holds English articles made with the
vocabulary of `text_corpus.py`:
- 60% originals, unrelated to each other;
- 20% planted copies of an original with 0.5%, 1%, 1.5%, 2%, 7%, 15% or 30% of the words
  replaced (spread out), which gives word 5-gram Jaccard similarities of about 0.95, 0.91,
  0.86, 0.82 (near-duplicates) and 0.53, 0.29, 0.09 (not);
- 20% chain members: a fresh original A0, then A1 edited from A0, A2 from A1, ... (3 to 7
  documents per chain, 1-2% of the words replaced per step): neighbours are near-duplicates
  (Jaccard 0.82-0.91), documents further apart are less and less so (A0 vs A3 about 0.66,
  A0 vs A6 about 0.45).
Rows are shuffled, so a chain's members arrive in any order.

`minhash_dedup_filter` (default params except `--threshold`) runs in-process on batches of
10,000 rows; the time is `process_all` end to end (signatures, LSH, clustering, verdicts), best of
`--repeat` (wall time, and CPU time of the process: steadier on a shared machine; `--compare`
times another copy of the module in alternating runs). Every verdict is then checked with exact Jaccard similarities of the operator's own
word 5-gram sets (`python_shingles`, pure Python):
- precision: dropped rows whose kept row (named in the detail) has exact Jaccard >= threshold
  with them (the rows of lower similarity are counted by band: < 0.5, < 0.1);
- recall: planted pairs (a copy and its source, two neighbours of a chain) with exact Jaccard
  >= 0.8 of which at least one row is dropped (both kept = a duplicate left in the output);
- the drop rate of planted pairs per similarity band, to show where the threshold bites.

Goals: precision >= 0.98, recall >= 0.95, time within 20% of the operator before candidate
verification against the kept row was added.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from dataflow_operators._lib.neardup import jaccard, python_shingles  # noqa: E402
from dataflow_operators.text.minhash_dedup import MinhashDedupFilter  # noqa: E402
from text_corpus import DATA, Language, _articles  # noqa: E402

from dataflow_cli.operator import Batch  # noqa: E402

EDIT_RATES = (0.005, 0.01, 0.015, 0.02, 0.07, 0.15, 0.3)  # planted copies: Jaccard ~0.95 .. ~0.1
CHAIN_STEP = (0.01, 0.02)  # chain neighbours: Jaccard ~0.9 .. ~0.82
CHAIN_LENGTH = (3, 7)
BATCH = 10_000
_KEPT = re.compile(r"_id (\S+)$")


def _edit(words: list[str], rate: float, vocabulary: list[str], rng: np.random.Generator) -> list[str]:
    """`words` with `rate` of them (at least one) replaced by random vocabulary words."""
    words = list(words)
    k = max(1, int(round(rate * len(words))))
    for pos in rng.choice(len(words), min(k, len(words)), replace=False).tolist():
        words[pos] = vocabulary[int(rng.integers(len(vocabulary)))]
    return words


def build(docs: int, seed: int) -> pa.Table:
    """Columns: text; group (the original's number, shared by its copies and chain); role
    ("original", "copy", "chain"); parent (row of the document it was edited from, or -1)."""
    rng = np.random.default_rng(seed)
    lang = Language("en", rng, 4000)
    n_copies = docs // 5
    n_chain_target = docs // 5
    chain_lengths = []
    while sum(chain_lengths) < n_chain_target:
        chain_lengths.append(int(rng.integers(CHAIN_LENGTH[0], CHAIN_LENGTH[1] + 1)))
    chain_lengths[-1] -= sum(chain_lengths) - n_chain_target
    if chain_lengths[-1] < 2:
        chain_lengths.pop()
    n_chain = sum(chain_lengths)
    n_orig = docs - n_copies - n_chain
    lengths = np.maximum(60, rng.lognormal(np.log(250), 0.6, n_orig + len(chain_lengths))).astype(np.int64)
    originals = _articles(lang, rng, lengths)
    texts: list[str] = originals[:n_orig]
    group = list(range(n_orig))
    role = ["original"] * n_orig
    parent = [-1] * n_orig
    vocabulary = lang.words
    sources = rng.integers(0, n_orig, n_copies)
    rates = rng.choice(EDIT_RATES, n_copies)
    for source, rate in zip(sources.tolist(), rates.tolist(), strict=True):
        texts.append(" ".join(_edit(texts[source].split(" "), rate, vocabulary, rng)))
        group.append(source)
        role.append("copy")
        parent.append(source)
    for c, length in enumerate(chain_lengths):
        start = originals[n_orig + c]
        previous = len(texts)
        texts.append(start)
        group.append(n_orig + c)
        role.append("chain")
        parent.append(-1)
        words = start.split(" ")
        for _ in range(length - 1):
            words = _edit(words, float(rng.uniform(*CHAIN_STEP)), vocabulary, rng)
            texts.append(" ".join(words))
            group.append(n_orig + c)
            role.append("chain")
            parent.append(previous)
            previous = len(texts) - 1
    order = rng.permutation(len(texts))
    position = np.empty(len(texts), np.int64)
    position[order] = np.arange(len(texts))
    parent_arr = np.array(parent)
    new_parent = np.where(parent_arr >= 0, position[np.maximum(parent_arr, 0)], -1)[order]
    return pa.table(
        {
            "text": pa.array([texts[i] for i in order], pa.string()),
            "group": pa.array(np.array(group)[order], pa.int64()),
            "role": pa.array([role[i] for i in order], pa.string()),
            "parent": pa.array(new_parent, pa.int64()),
        }
    )


def corpus(docs: int, seed: int) -> pa.Table:
    path = DATA / f"minhash-corpus-{docs}-s{seed}.parquet"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pq.write_table(build(docs, seed), tmp)
        tmp.rename(path)
    return pq.read_table(path)


def load_operator(path: str | None) -> type:
    """`MinhashDedupFilter`, or the class of that name in another copy of the module (to time an
    older version against the current one on the same machine state)."""
    if path is None:
        return MinhashDedupFilter
    import importlib.util

    spec = importlib.util.spec_from_file_location("minhash_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the Params annotations through it
    spec.loader.exec_module(module)
    return module.MinhashDedupFilter


def run(
    table: pa.Table, threshold: float, cls: type = MinhashDedupFilter
) -> tuple[tuple[float, float], np.ndarray, np.ndarray]:
    """((wall seconds, CPU seconds of this process), keep mask, kept row of each dropped row or -1)."""
    ids = pa.array([str(i) for i in range(table.num_rows)], pa.string())
    batches = [
        Batch(pa.table({"_id": ids.slice(s, BATCH), "text": table.column("text").slice(s, BATCH)}))
        for s in range(0, table.num_rows, BATCH)
    ]
    op = cls(cls.Params(threshold=threshold))
    start, cpu = time.perf_counter(), time.process_time()
    verdicts = list(op.process_all(batches))
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    keep = np.concatenate([np.asarray(v.keep, bool) for v in verdicts])
    details = [d for v in verdicts for d in pa.array(v.detail, pa.string()).to_pylist()]
    kept_by = np.full(len(keep), -1, np.int64)
    for i in np.flatnonzero(~keep).tolist():
        kept_by[i] = int(_KEPT.search(details[i]).group(1))
    return seconds, keep, kept_by


def evaluate(table: pa.Table, keep: np.ndarray, kept_by: np.ndarray, threshold: float) -> dict:
    text = table.column("text").to_pylist()
    parent = table.column("parent").to_numpy()
    cache: dict[int, set[str]] = {}

    def shingles(i: int) -> set[str]:
        if i not in cache:
            cache[i] = python_shingles(text[i])
        return cache[i]

    dropped = np.flatnonzero(~keep)
    similarity = np.array([jaccard(shingles(int(d)), shingles(int(kept_by[d]))) for d in dropped])
    pairs = np.flatnonzero(parent >= 0)
    pair_j = np.array([jaccard(shingles(int(c)), shingles(int(parent[c]))) for c in pairs])
    caught = ~(keep[pairs] & keep[parent[pairs]])
    bands = [(0.9, 1.01), (0.8, 0.9), (0.7, 0.8), (0.5, 0.7), (0.0, 0.5)]
    return {
        "dropped": int(len(dropped)),
        "precision": float((similarity >= threshold).mean()) if len(dropped) else float("nan"),
        "drops_by_similarity": {
            band: int(((similarity >= lo) & (similarity < hi)).sum())
            for band, lo, hi in (
                (">=t", threshold, 1.01),
                ("t-0.05..t", threshold - 0.05, threshold),
                ("0.5..t-0.05", 0.5, threshold - 0.05),
                ("<0.5", 0.0, 0.5),
            )
        },
        "drops_below_0.5": int((similarity < 0.5).sum()),
        "drops_below_0.1": int((similarity < 0.1).sum()),
        "pairs_j08": int((pair_j >= 0.8).sum()),
        "recall_j08": float(caught[pair_j >= 0.8].mean()),
        "drop_rate_by_band": {
            f"{lo:.1f}-{min(hi, 1.0):.1f}": [
                int(((pair_j >= lo) & (pair_j < hi)).sum()),
                round(float(caught[(pair_j >= lo) & (pair_j < hi)].mean()), 4)
                if ((pair_j >= lo) & (pair_j < hi)).any()
                else None,
            ]
            for lo, hi in bands
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument(
        "--compare",
        metavar="PATH",
        help="another copy of minhash_dedup.py: its runs alternate with the current one's and both are timed",
    )
    parser.add_argument("--no-eval", action="store_true", help="time only: skip the exact-Jaccard evaluation")
    args = parser.parse_args()
    t0 = time.perf_counter()
    table = corpus(args.docs, args.seed)
    print(f"corpus: {table.num_rows:,} rows ({time.perf_counter() - t0:.1f} s to make or read)")
    other = load_operator(args.compare) if args.compare else None
    runs, other_times = [], []
    for _ in range(args.repeat):
        runs.append(run(table, args.threshold))
        if other is not None:
            other_times.append(run(table, args.threshold, other)[0])
    times = [r[0] for r in runs]
    print(
        f"minhash_dedup_filter: best {_timing(times)} ({table.num_rows / min(t[0] for t in times):,.0f} docs/s)"
    )
    if other is not None:
        ratio = [min(t[k] for t in times) / min(t[k] for t in other_times) for k in (0, 1)]
        print(
            f"{args.compare}: best {_timing(other_times)}; current / other: wall {ratio[0]:.3f}, CPU {ratio[1]:.3f}"
        )
    if args.no_eval:
        return
    _, keep, kept_by = runs[0]
    t1 = time.perf_counter()
    report = evaluate(table, keep, kept_by, args.threshold)
    print(
        f"precision {report['precision']:.4f} of {report['dropped']:,} dropped (goal >= 0.98); "
        f"{report['drops_below_0.5']:,} drops share < 0.5, {report['drops_below_0.1']:,} < 0.1 of their 5-grams "
        f"with the kept row"
    )
    print("dropped rows by exact Jaccard with their kept row:", report["drops_by_similarity"])
    print(
        f"recall {report['recall_j08']:.4f} of {report['pairs_j08']:,} planted pairs with Jaccard >= 0.8 (goal >= 0.95)"
    )
    print("planted pairs by exact Jaccard: [pairs, share with a row dropped]")
    for band, (count, rate) in report["drop_rate_by_band"].items():
        print(f"  {band}: {count:>7,}  {rate}")
    print(f"(evaluation took {time.perf_counter() - t1:.1f} s)")
    walls = [round(t[0], 3) for t in times]
    print(json.dumps({"docs": table.num_rows, "seconds": walls, **report}))


def _timing(times: list[tuple[float, float]]) -> str:
    wall = ", ".join(f"{t[0]:.2f}" for t in times)
    cpu = ", ".join(f"{t[1]:.2f}" for t in times)
    return (
        f"{min(t[0] for t in times):.2f} s wall (of {wall}), {min(t[1] for t in times):.2f} s CPU (of {cpu})"
    )


if __name__ == "__main__":
    main()
