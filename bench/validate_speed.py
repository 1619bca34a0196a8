"""How long `dataflow validate` takes on every shipped pipeline, and what it imports.

Goal (issue 7): <= 0.5 s wall per shipped pipeline, on an idle machine. Each spec is validated
`--runs` times in a fresh process; the best wall time and CPU time (user + sys, less sensitive
to other load on the machine) and the peak RSS are printed, with the heavy modules the process
imported (each costs 0.05-0.3 s: what an operator imports at module level, or does in its
constructor or params validators, lands here).

    .venv/bin/python bench/validate_speed.py [--runs 5] [spec.yaml ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "pyarrow", "pyarrow.compute", "numpy", "jsonschema", "jinja2", "rich", "sqlglot", "torch")

_PROBE = """
import sys
from dataflow_cli.spec.build import load_spec
load_spec(__import__("pathlib").Path(sys.argv[1]))
print(",".join(m for m in sys.argv[2].split(",") if m in sys.modules))
"""


def measure(spec: Path, runs: int) -> tuple[float, float, int]:
    dataflow = Path(sys.executable).with_name("dataflow")
    best_wall = best_cpu = float("inf")
    peak = 0
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(
            [dataflow, "validate", spec], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU time and peak RSS
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{spec} is not valid:\n{child.stderr.read() if child.stderr else ''}")
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, usage.ru_utime + usage.ru_stime)
        peak = max(peak, usage.ru_maxrss // 1024)  # KiB on Linux
    return best_wall, best_cpu, peak


def heavy_imports(spec: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, spec, ",".join(HEAVY)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip() or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    specs = args.specs or sorted(REPO.glob("pipelines/*/pipeline.yaml"))
    print(f"load average {os.getloadavg()[0]:.2f}; best of {args.runs} runs")
    print(f"{'spec':<46} {'wall s':>7} {'cpu s':>7} {'RSS MB':>7}  heavy modules imported")
    for spec in specs:
        wall, cpu, rss = measure(spec, args.runs)
        shown = str(spec.relative_to(REPO)) if spec.is_relative_to(REPO) else str(spec)
        print(f"{shown:<46} {wall:7.2f} {cpu:7.2f} {rss:7d}  {heavy_imports(spec)}")


if __name__ == "__main__":
    main()
