"""LLM engine throughput against a local OpenAI-compatible server with 50 ms latency.

    python bench/llm_throughput.py [--rows 2000] [--latency 0.05]

Runs `dataflow run` (a `prompted_generator` stage on the `openai` backend) in a subprocess
against the test server (tests/support/openai_server.py) running in its own process, and
reports wall time and rows/s for:

- concurrency 10 (floor: rows x latency / 10 = 10 s; goal: within 10% of it);
- concurrency 100 (floor 1.0 s, i.e. at most 2,000 rows/s: the goal sits exactly on the floor);
- concurrency 100 with 5% of requests failing with 429 (Retry-After: 1 s) or 500
  (goal: <= 1.3 x the failure-free time, 0 rows lost);
- a second run of the same spec: answered from the request cache (goal: 0 requests,
  >= 20,000 rows/s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.openai_server import OpenAIServerProcess  # noqa: E402

SPEC = """\
version: 1
name: llm_bench
input: {{path: {input}, batch_size: {batch}}}
output: {{path: {output}}}
backends:
  default:
    provider: openai
    model: bench
    api_base: {base_url}
    max_concurrency: {concurrency}
    max_retries: 8
    timeout: 30
stages:
  - name: generate
    op: prompted_generator
    params: {{template: "Write a short answer about {{{{ topic }}}}.", max_tokens: 64}}
"""


def run(workdir: Path, name: str, base_url: str, rows: int, concurrency: int, cache_dir: Path) -> dict:
    source = workdir / "topics.jsonl"
    if not source.exists():
        source.write_text("".join(json.dumps({"topic": f"topic {i}"}) + "\n" for i in range(rows)))
    spec = workdir / f"{name}.yaml"
    spec.write_text(
        SPEC.format(
            input=source,
            output=workdir / f"{name}.parquet",
            base_url=base_url,
            concurrency=concurrency,
            batch=max(concurrency * 2, 200),
        )
    )
    env = dict(os.environ, DATAFLOW_CACHE_DIR=str(cache_dir))
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataflow_cli",
            "run",
            str(spec),
            "--fresh",
            "--quiet",
            "--json",
            "--run-dir",
            str(workdir / f"run-{name}"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    stats = json.loads(done.stdout)
    llm = stats["stages"][0]["llm"]
    return {
        "name": name,
        "concurrency": concurrency,
        "engine_seconds": round(stats["seconds"], 3),
        "wall_seconds": round(wall, 3),
        "rows_per_second": round(rows / stats["seconds"]),
        "kept": stats["rows_written"],
        "rejected": stats["rows_rejected"],
        "calls": llm["calls"],
        "retries": llm["retries"],
        "cache_hits": llm["cache_hits"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    rows, latency = args.rows, args.latency
    results = []
    with tempfile.TemporaryDirectory(prefix="dataflow-llm-bench-") as tmp:
        workdir = Path(tmp)
        server = OpenAIServerProcess(latency=latency, rules=[]).start()
        try:
            for concurrency in (10, 100):
                results.append(
                    run(
                        workdir,
                        f"c{concurrency}",
                        server.base_url,
                        rows,
                        concurrency,
                        workdir / f"cache-{concurrency}",
                    )
                )
            server.configure(fail_rate=0.05, fail_kinds={"rate_limit": 1, "server_error": 1}, retry_after=1.0)
            results.append(run(workdir, "c100-faults", server.base_url, rows, 100, workdir / "cache-faults"))
            server.configure(fail_rate=0.0)
            before = server.stats()["total_requests"]
            results.append(run(workdir, "c100-cached", server.base_url, rows, 100, workdir / "cache-100"))
            cached_requests = server.stats()["total_requests"] - before
        finally:
            server.stop()
    floor = {10: rows * latency / 10, 100: rows * latency / 100}
    for r in results:
        print(
            f"{r['name']:>12}: {r['engine_seconds']:6.2f} s engine ({r['wall_seconds']:.2f} s wall), "
            f"{r['rows_per_second']:>7,} rows/s, kept {r['kept']}, rejected {r['rejected']}, "
            f"calls {r['calls']}, retries {r['retries']}, cache hits {r['cache_hits']}"
        )
    c10, c100, faults, cached = results
    print(
        f"concurrency 10: {c10['engine_seconds'] / floor[10]:.3f} x floor ({floor[10]:.1f} s); goal <= 1.10"
    )
    print(
        f"concurrency 100: {c100['rows_per_second']:,} rows/s (floor {floor[100]:.1f} s = {rows / floor[100]:,.0f} rows/s)"
    )
    print(
        f"5% faults: {faults['engine_seconds'] / c100['engine_seconds']:.2f} x failure-free; "
        f"rows lost: {rows - faults['kept'] - faults['rejected']}, rejected: {faults['rejected']}; goal <= 1.3"
    )
    print(
        f"cached rerun: {cached_requests} requests, {cached['rows_per_second']:,} rows/s; goal 0 and >= 20,000"
    )
    print(json.dumps({"runs": results, "cached_requests": cached_requests}))


if __name__ == "__main__":
    main()
