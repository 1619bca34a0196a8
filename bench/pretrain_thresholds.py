"""Distributions of the measures `pipelines/pretrain_filter` thresholds, on the bench corpus.

    python bench/pretrain_thresholds.py [--docs 20000] [--seed 7] [--files LIST]

Runs the pipeline's cleaning and measuring stages (everything before its first filter, then the
measuring stages, no filter) over the corpus of `text_corpus.py` through `dataflow run`, so the
measures are taken on the text the pipeline's filters see. Prints, per document kind of the
corpus (article, short, boilerplate, repeated_lines, symbols), quantiles of each measure, and for
the two thresholds first tuned for Data-Juicer's measures (`special_characters_filter` max 0.25,
`character_repetition_filter` max 0.5), Data-Juicer's measure computed on the same texts:
- character repetition (Data-Juicer): of the text's character 10-grams, the occurrences of the k
  most frequent distinct ones, k = floor(sqrt(distinct 10-grams)) but no more than the number of
  distinct 10-grams occurring twice or more, / all 10-gram occurrences;
- special characters (Data-Juicer, approximately): whitespace, ASCII digits and punctuation,
  Unicode punctuation and symbols (its list of "other" special characters is mostly those, plus
  emoji) / code points.
For each, the threshold on our measure whose drop decisions agree best with Data-Juicer's at its
default is reported (and the agreement), next to how many documents each drops. Last, the
pipeline's own `range_filter` bounds (read from `pipelines/pretrain_filter/pipeline.yaml`) are
applied one by one and their drops counted per kind. With `--files`, a file listing paths of
real UTF-8 text files (one per line; e.g. `find / -xdev -name '*.md' -size +3k -size -60k`),
the same measures are reported on those texts too (raw, without the cleaning stages).
"""

from __future__ import annotations

import argparse
import json
import math
import string
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
PIPELINE = HERE.parent / "pipelines" / "pretrain_filter" / "pipeline.yaml"
sys.path.insert(0, str(HERE))

from text_corpus import ensure_corpus  # noqa: E402

SPEC = """\
version: 1
name: pretrain_measures
input: {{path: {input}, batch_size: 2000}}
output: {{path: {output}}}
stages:
  - {{name: fix_unicode, op: unicode_fix_refiner}}
  - {{name: strip_urls, op: url_removal_refiner}}
  - {{name: mask_pii, op: pii_refiner}}
  - {{name: drop_boilerplate_lines, op: boilerplate_line_refiner}}
  - {{name: drop_repeated_lines, op: repeated_line_refiner}}
  - {{name: normalize, op: text_normalize_refiner}}
  - {{name: measure, op: length_evaluator}}
  - name: char_ratios
    op: char_ratio_evaluator
    params: {{signals: [special_char_ratio, alpha_ratio]}}
  - name: repetition
    op: repetition_evaluator
    params: {{signals: [char_rep_ratio, dup_line_char_ratio]}}
  - {{name: language, op: language_evaluator, outputs: {{lang: detected_lang}}}}
"""
MEASURES = (
    "chars",
    "words",
    "special_char_ratio",
    "alpha_ratio",
    "char_rep_ratio",
    "dup_line_char_ratio",
    "lang_score",
)
QUANTILES = (0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0)
_ASCII_SPECIAL = set(string.punctuation + string.digits + string.whitespace)


def dj_char_repetition(text: str, n: int = 10) -> float:
    counts = Counter(text[i : i + n] for i in range(len(text) - n + 1))
    if not counts:
        return 0.0
    freq = sorted(counts.values(), reverse=True)
    repeated = sum(1 for f in freq if f > 1)
    k = min(int(math.sqrt(len(freq))), repeated)
    return sum(freq[:k]) / sum(freq)


def dj_special_ratio(text: str) -> float:
    if not text:
        return 0.0
    special = sum(1 for c in text if c in _ASCII_SPECIAL or unicodedata.category(c)[0] in "PSZ")
    return special / len(text)


def best_agreement(ours: np.ndarray, reference_drop: np.ndarray) -> tuple[float, float]:
    """The threshold t (ours > t drops) agreeing most with `reference_drop`, and the agreement."""
    candidates = np.unique(np.round(ours, 3))
    best = (float("nan"), -1.0)
    for t in candidates:
        agreement = float(((ours > t) == reference_drop).mean())
        if agreement > best[1]:
            best = (float(t), agreement)
    return best


def measure_files(listing: Path) -> None:
    import pyarrow as pa
    from dataflow_operators.text.quality import CharRatioEvaluator
    from dataflow_operators.text.repetition import RepetitionEvaluator

    from dataflow_cli.operator import Batch

    texts = []
    for path in listing.read_text().split():
        try:
            texts.append(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    table = pa.table({"text": pa.array(texts, pa.string()), "_id": [str(i) for i in range(len(texts))]})
    ours = {}
    for cls, name in ((RepetitionEvaluator, "char_rep_ratio"), (CharRatioEvaluator, "special_char_ratio")):
        op = cls(cls.Params(signals=[name]))
        ours[name] = np.array(pa.array(op.process(Batch(table, op.input_columns))[name]).to_pylist(), float)
    print(f"\n{len(texts):,} files of {listing}: quantiles {QUANTILES}")
    for name, reference in (("char_rep_ratio", dj_char_repetition), ("special_char_ratio", dj_special_ratio)):
        theirs = np.array([reference(t) for t in texts])
        print(
            f"  {name:<20} ours        " + "  ".join(f"{q:7.3f}" for q in np.quantile(ours[name], QUANTILES))
        )
        print(f"  {name:<20} Data-Juicer " + "  ".join(f"{q:7.3f}" for q in np.quantile(theirs, QUANTILES)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--files", type=Path, help="a file listing paths of real text files to measure too")
    args = parser.parse_args()
    corpus = ensure_corpus(args.docs, args.seed)
    with tempfile.TemporaryDirectory(prefix="dataflow-thresholds-") as tmp:
        spec = Path(tmp) / "spec.yaml"
        output = Path(tmp) / "measured.parquet"
        spec.write_text(SPEC.format(input=corpus, output=output))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dataflow_cli",
                "run",
                str(spec),
                "--quiet",
                "--run-dir",
                str(Path(tmp) / "run"),
            ],
            check=True,
        )
        table = pq.read_table(output).to_pandas()
    print(f"{len(table):,} documents of {corpus.name}; quantiles {QUANTILES} per kind\n")
    for measure in MEASURES:
        print(measure)
        for kind, group in table.groupby("kind"):
            values = group[measure].dropna().to_numpy(float)
            qs = np.quantile(values, QUANTILES) if len(values) else []
            print(f"  {kind:<15} n={len(values):>6,}  " + "  ".join(f"{q:9.3f}" for q in qs))
    text = table["text"].tolist()
    dj_rep = np.array([dj_char_repetition(t) for t in text])
    dj_special = np.array([dj_special_ratio(t) for t in text])
    report = {}
    for name, ours, reference, bound in (
        ("char_rep_ratio", table["char_rep_ratio"].to_numpy(float), dj_rep, 0.5),
        ("special_char_ratio", table["special_char_ratio"].to_numpy(float), dj_special, 0.25),
    ):
        dropped = reference > bound
        t, agreement = best_agreement(ours, dropped)
        print(
            f"\n{name}: Data-Juicer's measure > {bound} drops {int(dropped.sum()):,}; ours > {bound} drops "
            f"{int((ours > bound).sum()):,}; ours > {t:.3f} agrees best with Data-Juicer ({agreement:.4f}) "
            f"and drops {int((ours > t).sum()):,}"
        )
        by_kind = {
            kind: int(dropped[(table["kind"] == kind).to_numpy()].sum())
            for kind in sorted(table["kind"].unique())
        }
        print(f"  Data-Juicer's drops by kind: {by_kind}")
        report[name] = {
            "reference_drops": int(dropped.sum()),
            "ours_at_same_bound": int((ours > bound).sum()),
            "best": t,
            "agreement": agreement,
        }
    if args.files:
        measure_files(args.files)
    import yaml

    print(f"\n{PIPELINE.relative_to(HERE.parent)}: drops per range_filter stage, by kind")
    kinds = sorted(table["kind"].unique())
    print(f"  {'stage':<22} {'column':<20} {'bounds':<18} " + " ".join(f"{k:>14}" for k in kinds))
    for stage in yaml.safe_load(PIPELINE.read_text())["stages"]:
        if stage["op"] != "range_filter":
            continue
        column = stage["inputs"]["value"]
        values = table[column].to_numpy(float)
        low, high = stage["params"].get("min"), stage["params"].get("max")
        drop = np.isnan(values)
        if low is not None:
            drop |= values < low
        if high is not None:
            drop |= values > high
        counts = {k: int(drop[(table["kind"] == k).to_numpy()].sum()) for k in kinds}
        report[stage["name"]] = counts
        bounds = f"[{low}, {high}]"
        print(
            f"  {stage['name']:<22} {column:<20} {bounds:<18} " + " ".join(f"{counts[k]:>14,}" for k in kinds)
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
