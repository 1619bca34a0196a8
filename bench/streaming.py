"""Streaming benchmark: throughput and peak memory of row-local stages, plus CLI latency.

    python bench/streaming.py [--sizes 100000 1000000] [--batch-size 10000]

Generates synthetic Parquet inputs under bench/data/ (once: short English-like rows of 3-60
words, 15% with a non-ASCII word, 20% with messy whitespace), runs a spec with three row-local
stages (normalize -> length evaluate -> range filter) through `dataflow run --fresh` in a
subprocess per size, and reports rows/s and the subprocess's peak RSS. Goals (2 cores):
>= 200k rows/s; peak RSS at 1M rows <= 1.3 x peak RSS at 100k rows; `dataflow --help` <= 0.3 s;
`dataflow validate` of a 20-stage spec < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
DATAFLOW = [sys.executable, "-m", "dataflow_cli"]

ASCII_WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but "
    "data model training token quality filter pipeline stream batch row column schema text"
).split()
OTHER_WORDS = "naïve café Ｆｕｌｌｗｉｄｔｈ 東京 数据 über señal ﬁle".split()


def make_input(rows: int) -> Path:
    path = DATA / f"synthetic-v2-{rows}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    writer = None
    chunk = 50_000
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        texts = []
        for _ in range(n):
            words = rng.choices(ASCII_WORDS, k=rng.randint(3, 60))
            if rng.random() < 0.15:  # like web text: most rows are ASCII, some are not
                words[rng.randrange(len(words))] = rng.choice(OTHER_WORDS)
            text = " ".join(words)
            if rng.random() < 0.2:
                text = "  " + text.replace(" ", "   ", 3) + " \n\n\n "
            texts.append(text)
        table = pa.table({"id": pa.array(range(start, start + n), pa.int64()), "text": texts})
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    return path


SPEC = """\
version: 1
name: bench_streaming_{rows}
input: {{path: {input}, batch_size: {batch_size}}}
output: {{path: {output}}}
stages:
  - name: normalize
    op: text_normalize_refiner
  - name: measure
    op: length_evaluator
  - name: bounds
    op: range_filter
    inputs: {{value: words}}
    params: {{min: 5, max: 50}}
"""


def run_size(rows: int, batch_size: int, workdir: Path) -> dict:
    source = make_input(rows)
    spec = workdir / f"bench-{rows}.yaml"
    spec.write_text(
        SPEC.format(rows=rows, input=source, output=workdir / f"out-{rows}.parquet", batch_size=batch_size)
    )
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            *DATAFLOW,
            "run",
            str(spec),
            "--fresh",
            "--quiet",
            "--json",
            "--run-dir",
            str(workdir / f"run-{rows}"),
        ],
        stdout=subprocess.PIPE,
    )
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"run failed for {rows} rows (status {status})")
    stats = json.loads(stdout)
    return {
        "rows": rows,
        "engine_seconds": round(stats["seconds"], 3),
        "wall_seconds": round(wall, 3),
        "rows_per_second_engine": round(rows / stats["seconds"]),
        "rows_per_second_wall": round(rows / wall),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "kept": stats["rows_written"],
        "rejected": stats["rows_rejected"],
    }


def cli_latency(workdir: Path) -> dict:
    best_help = min(_time([sys.executable, "-m", "dataflow_cli", "--help"]) for _ in range(5))
    stages = "\n".join(
        f"  - name: s{i}\n    op: length_evaluator\n    inputs: {{text: text}}\n"
        f"    outputs: {{chars: c{i}, words: w{i}, lines: l{i}}}"
        for i in range(20)
    )
    spec = workdir / "twenty.yaml"
    spec.write_text(
        f"version: 1\nname: twenty\ninput: {{path: {make_input(100_000)}}}\n"
        f"output: {{path: {workdir / 'o.parquet'}}}\nstages:\n{stages}\n"
    )
    best_validate = min(_time([*DATAFLOW, "validate", str(spec)]) for _ in range(3))
    return {"help_seconds": round(best_help, 3), "validate_20_stages_seconds": round(best_validate, 3)}


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dataflow-bench-") as tmp:
        workdir = Path(tmp)
        results = [run_size(rows, args.batch_size, workdir) for rows in args.sizes]
        latency = cli_latency(workdir)
    for r in results:
        print(
            f"{r['rows']:>9,} rows: {r['rows_per_second_engine']:>9,} rows/s engine, "
            f"{r['rows_per_second_wall']:>9,} rows/s wall ({r['wall_seconds']} s), peak RSS {r['peak_rss_mb']} MB"
        )
    if len(results) >= 2:
        ratio = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
        print(
            f"peak RSS ratio {results[-1]['rows']:,} / {results[0]['rows']:,} rows: {ratio:.2f} (goal <= 1.3)"
        )
    print(f"dataflow --help: {latency['help_seconds']} s (goal <= 0.3)")
    print(f"dataflow validate, 20 stages: {latency['validate_20_stages_seconds']} s (goal < 1)")
    print(json.dumps({"runs": results, **latency}))


if __name__ == "__main__":
    main()
