"""BM25 corpus index (operators/dataflow_operators/rag/_corpus.py): build and query speed.

    python bench/bm25_index.py [--docs 100000] [--queries 2000] [--k 10] [--seed 7]

Writes a synthetic corpus of short documents (20-60 words drawn from a Zipf-like vocabulary of
30k made-up words, a title of two words) to a temporary JSONL file, then measures in this
process, as the rag operators use it:
- cold build: read the corpus, tokenize, build the bm25s index and save it to the index cache;
- warm load: a new run of the same corpus: read the corpus, load the cached index;
- queries: `Corpus.search` (top-k, ties by document order) for questions of 6-12 words taken
  from random documents, one at a time as the answerability check sends them: queries/s and
  latency percentiles; plus the share of queries whose source document is in the top k;
- peak RSS of the process.

Figures only (no goal is asserted); the machine has 2 cores. CPU seconds are printed beside wall
times, since a busy machine stretches the latter.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operators"))

SYLLABLES = [
    "ka",
    "ro",
    "mi",
    "sen",
    "tal",
    "vo",
    "rin",
    "da",
    "el",
    "mor",
    "lu",
    "fen",
    "ost",
    "by",
    "wen",
    "ar",
]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def write_corpus(path: Path, docs: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    words = vocabulary(rng, 30_000)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))  # Zipf-like
    title_words = words[1000:]  # rarer words
    texts = []
    with path.open("w", encoding="utf-8") as f:
        for i in range(docs):
            body = rng.choices(words, cum_weights=cumulative, k=rng.randint(20, 60))
            title = rng.sample(title_words, 2)
            texts.append(body + title)
            row = {"id": f"d{i}", "title": " ".join(title).title(), "text": " ".join(body).capitalize() + "."}
            f.write(json.dumps(row) + "\n")
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bm25-bench-") as tmp:
        os.environ["DATAFLOW_CACHE_DIR"] = str(Path(tmp) / "cache")
        from dataflow_operators.rag import _corpus
        from dataflow_operators.rag._corpus import CorpusFields, load_corpus

        path = Path(tmp) / "corpus.jsonl"
        texts = write_corpus(path, args.docs, args.seed)
        size_mb = path.stat().st_size / 1e6
        fields = CorpusFields(corpus=str(path))

        c0, t0 = time.process_time(), time.perf_counter()
        corpus = load_corpus(fields, None)
        t1 = time.perf_counter()
        corpus.index()
        c2, t2 = time.process_time(), time.perf_counter()
        assert corpus.built
        cache_mb = sum(f.stat().st_size for f in Path(tmp, "cache").rglob("*") if f.is_file()) / 1e6

        _corpus._LOADED.clear()
        t3 = time.perf_counter()
        warm = load_corpus(fields, None)
        warm.index()
        t4 = time.perf_counter()
        assert not warm.built

        rng = random.Random(args.seed + 1)
        sources = [rng.randrange(args.docs) for _ in range(args.queries)]
        queries = [" ".join(rng.sample(texts[i], min(len(texts[i]), rng.randint(6, 12)))) for i in sources]
        latencies = []
        found = 0
        c5, t5 = time.process_time(), time.perf_counter()
        for source, query in zip(sources, queries, strict=True):
            q0 = time.perf_counter()
            hits = warm.search(query, args.k)
            latencies.append(time.perf_counter() - q0)
            found += any(doc_id == f"d{source}" for doc_id, _ in hits)
        c6, t6 = time.process_time(), time.perf_counter()
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"corpus: {args.docs} documents, {size_mb:.1f} MB JSONL; index cache {cache_mb:.1f} MB")
        print(
            f"cold build: read {t1 - t0:.2f} s + tokenize/index/save {t2 - t1:.2f} s = {t2 - t0:.2f} s "
            f"({args.docs / (t2 - t0):,.0f} docs/s; {c2 - c0:.2f} s of CPU)"
        )
        t7 = time.perf_counter()
        _corpus._token_ids(warm)  # the tokenizing part of the cold build, alone
        tokenize_s = time.perf_counter() - t7
        print(f"  of which tokenizing {tokenize_s:.2f} s ({args.docs / tokenize_s:,.0f} docs/s)")
        print(f"warm load (cached index): {t4 - t3:.2f} s")
        print(
            f"queries: {args.queries} x top-{args.k}: {args.queries / (t6 - t5):,.0f} queries/s, "
            f"latency p50 {pct(0.5):.1f} ms, p95 {pct(0.95):.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
            f"{args.queries / (c6 - c5):,.0f} queries per CPU second"
        )
        print(f"source document in top {args.k}: {found / args.queries:.3f}")
        print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
