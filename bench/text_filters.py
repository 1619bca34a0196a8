"""Pretraining-filter benchmark: quality filters, exact and MinHash dedup over a web-like corpus.

    python bench/text_filters.py [--docs 200000] [--batch-size 10000] [--seed 7] [--regex-quality]

Generates the corpus of `text_corpus.py` once (cached under bench/data/), runs a spec through
`dataflow run --fresh --json` in a subprocess and reports the wall time, each stage's docs/s
(rows in / seconds computing, from the run stats) and the subprocess's peak RSS (os.wait4).
Stages: word count (length_evaluator + range_filter: 50..100k words), special characters
(char_ratio_evaluator + range_filter: special_char_ratio <= 0.25) and character repetition
(repetition_evaluator + range_filter: char_rep_ratio of 10-grams <= 0.5), with regex_filter
stand-ins when those evaluators are not installed, exact dedup (exact_dedup_filter) and MinHash
dedup (word 5-grams, 256 permutations, Jaccard 0.7).

Correctness, measured against the planted duplicates and exact Jaccard similarities of word
5-gram sets (the operator's own normalization, in pure Python):
- MinHash recall: planted near-duplicate pairs with true Jaccard >= 0.8 that both reach the
  MinHash stage, dropped for (or being) the same kept row; and the share of those pairs with at
  least one row dropped (both kept = a duplicate left in the output: a copy whose source was
  dropped for a third row it does not resemble enough is rightly kept, see `minhash_dedup_filter`);
- MinHash precision: dropped rows whose kept row is a planted relative (same source) or has
  true Jaccard >= 0.7 with them;
- exact dedup completeness: planted exact-copy groups left with one row after exact dedup.

CPU time (user + system of the `dataflow run` process, from os.wait4) is reported beside wall
time: on a shared machine it is the steadier figure. The compiled kernels of the `fast` extra
(numba) are used when installed; `DATAFLOW_NO_KERNELS=1` measures the numpy fallback.

Goals (2 cores): <= 10 s wall and <= 500 MB peak RSS for 200k docs; recall >= 0.95,
precision >= 0.98, exact completeness 1.0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from dataflow_operators._lib.neardup import jaccard, python_shingles  # noqa: E402
from text_corpus import ensure_corpus  # noqa: E402

DATAFLOW = [sys.executable, "-m", "dataflow_cli"]
NEAR_STAGE = "near_dedup"
EXACT_STAGE = "exact_dedup"
_KEPT_ID = re.compile(r"duplicate of _id (\S+)$")

# Stand-ins when the quality-signal operators are not installed.
SPECIAL_REGEX = r"[^\pL\pN\s]{8,}"  # a run of 8+ characters that are neither letters, digits nor spaces
# A character repeated 10+ times in a row (RE2 has no backreferences: one alternative per character).
REPEAT_REGEX = (
    "(?:"
    + "|".join(re.escape(c) + "{10,}" for c in string.ascii_lowercase + string.digits + "-=*#~_.!?")
    + ")"
)


def installed_operators() -> set[str]:
    out = subprocess.run(
        [*DATAFLOW, "operators", "list", "--json"], capture_output=True, text=True, check=True
    )
    return {row["name"] for row in json.loads(out.stdout) if row.get("status") == "ok"}


def quality_stages(available: set[str]) -> tuple[str, list[str]]:
    """The quality stages of the spec: the signal operators when installed, else regex stand-ins."""
    notes = []
    stages = """\
  - name: measure
    op: length_evaluator
  - name: word_count
    op: range_filter
    inputs: {value: words}
    params: {min: 50, max: 100000}
"""
    if "char_ratio_evaluator" in available:
        stages += """\
  - name: char_ratio
    op: char_ratio_evaluator
    params: {signals: [special_char_ratio]}
  - name: special_chars
    op: range_filter
    inputs: {value: special_char_ratio}
    params: {max: 0.25}
"""
    else:
        notes.append("char_ratio_evaluator not installed: regex_filter stand-in for special characters")
        stages += f"""\
  - name: special_chars
    op: regex_filter
    params: {{pattern: {json.dumps(SPECIAL_REGEX)}, mode: drop_matching}}
"""
    if "repetition_evaluator" in available:
        stages += """\
  - name: repetition
    op: repetition_evaluator
    params: {char_ngram: 10, signals: [char_rep_ratio]}
  - name: char_repetition
    op: range_filter
    inputs: {value: char_rep_ratio}
    params: {max: 0.5}
"""
    else:
        notes.append("repetition_evaluator not installed: regex_filter stand-in for character repetition")
        stages += f"""\
  - name: char_repetition
    op: regex_filter
    params: {{pattern: {json.dumps(REPEAT_REGEX)}, mode: drop_matching, ignore_case: true}}
"""
    return stages, notes


SPEC = """\
version: 1
name: bench_text_filters
input: {{path: {input}, batch_size: {batch_size}}}
output: {{path: {output}}}
stages:
{quality}  - name: exact_dedup
    op: exact_dedup_filter
    params: {{columns: [text]}}
  - name: near_dedup
    op: minhash_dedup_filter
    params: {{threshold: 0.7, unit: word, ngram: 5, num_perm: 256}}
"""


def run(corpus: Path, workdir: Path, batch_size: int, quality: str) -> tuple[dict, float, float, float, Path]:
    spec = workdir / "bench.yaml"
    output = workdir / "out.parquet"
    spec.write_text(SPEC.format(input=corpus, output=output, batch_size=batch_size, quality=quality))
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*DATAFLOW, "run", str(spec), "--fresh", "--quiet", "--json", "--run-dir", str(workdir / "run")],
        stdout=subprocess.PIPE,
    )
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"dataflow run failed (status {status})")
    stats = json.loads(stdout)
    cpu = usage.ru_utime + usage.ru_stime
    return stats, wall, cpu, usage.ru_maxrss / 1024, Path(stats["rejects"])


def evaluate(corpus: Path, rejects_path: Path, stage_order: list[str]) -> dict:
    table = pq.read_table(corpus, columns=["doc_id", "text", "dup_of", "dup_kind"])
    n = table.num_rows
    text = table.column("text").to_pylist()
    dup_of = table.column("dup_of").to_pylist()
    dup_kind = table.column("dup_kind").to_pylist()
    rejects = pq.read_table(rejects_path, columns=["_id", "_stage", "_reason"])
    stage_of: dict[int, str] = {}
    kept_by: dict[int, int] = {}  # dropped by a dedup stage -> the kept row's id
    for rid, stage, reason in zip(
        *(rejects.column(c).to_pylist() for c in ("_id", "_stage", "_reason")), strict=True
    ):
        rid = int(rid)
        stage_of[rid] = stage
        if stage in (EXACT_STAGE, NEAR_STAGE):
            match = _KEPT_ID.search(reason)
            kept_by[rid] = int(match.group(1))
    before_near = set(stage_order[: stage_order.index(NEAR_STAGE)])
    before_exact = set(stage_order[: stage_order.index(EXACT_STAGE)])

    def reached(i: int, stages: set[str]) -> bool:
        return stage_of.get(i) not in stages

    def family(i: int) -> int:
        return dup_of[i] if dup_of[i] is not None else i

    def exact_root(i: int) -> int:
        return kept_by[i] if stage_of.get(i) == EXACT_STAGE else i

    def near_root(i: int) -> int:
        return kept_by[i] if stage_of.get(i) == NEAR_STAGE else i

    cache: dict[int, set[str]] = {}

    def shingles(i: int) -> set[str]:
        if i not in cache:
            cache[i] = python_shingles(text[i], "word", 5, True)
        return cache[i]

    # Recall over planted near-duplicate pairs with true Jaccard >= 0.8 that reach the stage.
    pairs = found = deduplicated = 0
    for c in range(n):
        if dup_kind[c] != "near":
            continue
        s = exact_root(dup_of[c])  # the source's copy that survived exact dedup
        if not (reached(c, before_near) and reached(s, before_near)):
            continue
        if jaccard(shingles(c), shingles(dup_of[c])) < 0.8:
            continue
        pairs += 1
        found += near_root(c) == near_root(s)
        deduplicated += not (near_root(c) == c and near_root(s) == s)
    # Precision over rows dropped by MinHash.
    dropped = [i for i in range(n) if stage_of.get(i) == NEAR_STAGE]
    correct = 0
    for d in dropped:
        k = kept_by[d]
        correct += family(d) == family(k) or jaccard(shingles(d), shingles(k)) >= 0.7
    # Exact dedup completeness over planted exact-copy groups that reach the exact stage.
    groups: dict[int, list[int]] = {}
    for i in range(n):
        if dup_kind[i] == "exact":
            groups.setdefault(dup_of[i], [dup_of[i]]).append(i)
    complete = total_groups = copies = copies_found = 0
    for members in groups.values():
        arriving = [i for i in members if reached(i, before_exact)]
        if len(arriving) < 2:
            continue
        total_groups += 1
        survivors = [i for i in arriving if stage_of.get(i) != EXACT_STAGE]
        complete += len(survivors) == 1
        copies += len(arriving) - 1
        copies_found += sum(stage_of.get(i) == EXACT_STAGE for i in arriving)
    return {
        "near_pairs_j08": pairs,
        "recall": found / pairs if pairs else float("nan"),
        "recall_not_both_kept": deduplicated / pairs if pairs else float("nan"),
        "near_dropped": len(dropped),
        "precision": correct / len(dropped) if dropped else float("nan"),
        "exact_groups": total_groups,
        "exact_completeness": complete / total_groups if total_groups else float("nan"),
        "exact_copies": copies,
        "exact_copies_found": copies_found,
    }


def _kernels_in_use() -> bool:
    from dataflow_operators._lib.kernels import kernels

    return kernels() is not None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--regex-quality",
        action="store_true",
        help="use the regex_filter stand-ins even when the quality-signal evaluators are installed",
    )
    args = parser.parse_args()
    kernels = _kernels_in_use()
    t0 = time.perf_counter()
    corpus = ensure_corpus(args.docs, args.seed)
    print(f"corpus: {corpus} ({time.perf_counter() - t0:.1f} s to make or find)")
    quality, notes = quality_stages(set() if args.regex_quality else installed_operators())
    for note in notes:
        print("note:", note)
    with tempfile.TemporaryDirectory(prefix="dataflow-bench-text-") as tmp:
        stats, wall, cpu, rss, rejects = run(corpus, Path(tmp), args.batch_size, quality)
        order = [s["name"] for s in stats["stages"]]
        t1 = time.perf_counter()
        quality_report = evaluate(corpus, rejects, order)
        eval_seconds = time.perf_counter() - t1
    print(
        f"{args.docs:,} docs: wall {wall:.1f} s (goal <= 10), CPU {cpu:.1f} s, engine {stats['seconds']:.1f} s, "
        f"peak RSS {rss:.0f} MB (goal <= 500); compiled kernels: {kernels}"
    )
    print(
        f"read {stats['rows_read']:,} -> wrote {stats['rows_written']:,}, rejected {stats['rows_rejected']:,}"
    )
    for s in stats["stages"]:
        rate = s["rows_in"] / s["seconds"] if s["seconds"] else float("inf")
        reasons = ", ".join(f"{k[:40]}: {v}" for k, v in list(s["dropped_by_reason"].items())[:2])
        print(
            f"  {s['name']:<16} {s['op']:<22} in {s['rows_in']:>8,}  {s['seconds']:>6.2f} s  {rate:>10,.0f} docs/s  {reasons}"
        )
    q = quality_report
    print(
        f"MinHash recall (planted pairs, Jaccard >= 0.8): {q['recall']:.4f} of {q['near_pairs_j08']:,} (goal >= 0.95); "
        f"{q['recall_not_both_kept']:.4f} with at least one of the two dropped"
    )
    print(f"MinHash precision: {q['precision']:.4f} of {q['near_dropped']:,} dropped (goal >= 0.98)")
    print(
        f"exact dedup completeness: {q['exact_completeness']:.4f} of {q['exact_groups']:,} groups, "
        f"{q['exact_copies_found']:,}/{q['exact_copies']:,} copies dropped (goal 1.0)"
    )
    print(f"(evaluation took {eval_seconds:.1f} s)")
    print(
        json.dumps(
            {
                "docs": args.docs,
                "wall_seconds": round(wall, 2),
                "cpu_seconds": round(cpu, 2),
                "kernels": kernels,
                "engine_seconds": stats["seconds"],
                "peak_rss_mb": round(rss, 1),
                "stages": {
                    s["name"]: {
                        "rows_in": s["rows_in"],
                        "seconds": s["seconds"],
                        "docs_per_second": round(s["rows_in"] / s["seconds"]) if s["seconds"] else None,
                    }
                    for s in stats["stages"]
                },
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in q.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
