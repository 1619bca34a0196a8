"""Wall time of CLI commands a user runs interactively, against `dataflow --help`.

Goal (issue 7): `dataflow operators list` within 0.5 s. The catalogue is cached (see
`dataflow_cli/catalog/index.py`), so "cold" (no cache: every operator module imported once) and
"warm" (cache current) are measured separately. Each figure is the median of several runs of a
fresh process; the cache goes to a temporary DATAFLOW_CACHE_DIR.

    .venv/bin/python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATAFLOW = [sys.executable, "-m", "dataflow_cli"]


def wall(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(DATAFLOW + args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    cache = Path(tempfile.mkdtemp(prefix="dataflow-bench-"))
    env = {**os.environ, "DATAFLOW_CACHE_DIR": str(cache)}
    try:
        cold = []
        for _ in range(max(3, runs // 2)):
            shutil.rmtree(cache, ignore_errors=True)
            cold.append(wall(["operators", "list"], env))
        cases = {
            "dataflow --help": ["--help"],
            "operators list (warm cache)": ["operators", "list"],
            "operators list --json (warm)": ["operators", "list", "--json"],
            "operators search 'near duplicate' (warm)": ["operators", "search", "near duplicate"],
            "operators show range_filter": ["operators", "show", "range_filter"],
        }
        print(f"{'command':45} {'median s':>9} {'min s':>7}")
        print(f"{'operators list (cold: no cache)':45} {statistics.median(cold):9.3f} {min(cold):7.3f}")
        for label, args in cases.items():
            times = [wall(args, env) for _ in range(runs)]
            print(f"{label:45} {statistics.median(times):9.3f} {min(times):7.3f}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
