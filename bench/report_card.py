"""What the end-of-run report and data card cost: the time `write_run_artifacts` adds to a run.

Goal: well under the run itself, and bounded on large inputs. The report reads stats.json and a
few sample rows (first output block, up to 5,000 rejects), so it stays flat; the card hashes
the input and output files (sha256, streamed), so it grows with their size at the disk/sha256
rate -- once per input file identity, cached in the run directory.

    .venv/bin/python bench/report_card.py [--rows 400000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

SPEC = """\
version: 1
name: bench_report
input: {path: in.jsonl}
output: {path: out/data.jsonl}
stages:
  - name: measure
    op: length_evaluator
    inputs: {text: text}
  - name: bounds
    op: range_filter
    inputs: {value: words}
    params: {min: 12}
"""


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    args = parser.parse_args()

    from dataflow_cli.engine.executor import Executor
    from dataflow_cli.report.card import HASH_CACHE
    from dataflow_cli.report.finish import write_run_artifacts
    from dataflow_cli.spec.build import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
        with open(root / "in.jsonl", "w", encoding="utf-8") as handle:
            for i in range(args.rows):
                text = " ".join(words[: 4 + i % 12] * (1 + i % 5))
                handle.write(json.dumps({"id": i, "text": text}) + "\n")
        (root / "spec.yaml").write_text(SPEC, encoding="utf-8")
        spec = load_spec(root / "spec.yaml", [])
        run_dir = root / "run"
        t0, c0 = time.perf_counter(), cpu()
        stats = Executor(spec, run_dir).run()  # includes one write_run_artifacts call
        run_wall, run_cpu = time.perf_counter() - t0, cpu() - c0
        size = (root / "in.jsonl").stat().st_size + spec.output_path.stat().st_size
        print(
            f"run: {args.rows:,} rows read, {stats.rows_written:,} written, {stats.rows_rejected:,} rejected; "
            f"{run_wall:.2f} s wall, {run_cpu:.2f} s CPU (report and card included)"
        )
        payload = json.loads((run_dir / "stats.json").read_text())
        for label, drop_cache in (("cold (input hashed)", True), ("warm (input hash cached)", False)):
            if drop_cache:
                (run_dir / HASH_CACHE).unlink(missing_ok=True)
            t0, c0 = time.perf_counter(), cpu()
            write_run_artifacts(spec, run_dir, payload)
            wall, used = time.perf_counter() - t0, cpu() - c0
            print(
                f"report + card, {label}: {wall * 1000:.0f} ms wall, {used * 1000:.0f} ms CPU "
                f"({size / 1e6:.0f} MB of input + output; {100 * wall / run_wall:.1f}% of the run)"
            )
        t0, c0 = time.perf_counter(), cpu()
        from dataflow_cli.report.finish import write_report

        write_report(run_dir, payload)
        print(
            f"report alone: {(time.perf_counter() - t0) * 1000:.0f} ms wall, {(cpu() - c0) * 1000:.0f} ms CPU"
        )


if __name__ == "__main__":
    main()
