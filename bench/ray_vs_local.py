"""The text-filter and LLM-throughput benchmarks under the local and the Ray executor.

    python bench/ray_vs_local.py [--docs 20000] [--rows 2000] [--latency 0.05] [--concurrency 100]
                                 [--skip-text] [--skip-llm]

One Ray head node (2 CPUs, as this machine has) is started for the benchmark in its own session
and joined with `--address`; its start-up is reported apart. Each scenario runs `dataflow run
--fresh` in a subprocess under `--executor local`, then `--executor ray`, and reports:

- wall time of the run;
- CPU time: the driver's user + system time (os.wait4), plus, for Ray, the CPU the cluster's
  processes used during the run (user + system of every process in the cluster's session,
  with their reaped children, from /proc: the workers doing the work);
- that both executors wrote the same rows (compared by `_id`).

Text filters: the spec and corpus of `bench/text_filters.py` (word count, special characters,
character repetition, exact and MinHash dedup). LLM: `prompted_generator` against the test
OpenAI server (`tests/support/openai_server.py`, in its own process) answering after `latency`
seconds, at `concurrency` requests in flight, request cache in a fresh directory per run.

On one 2-core machine Ray's fixed costs (worker processes, object store, a hash shuffle per
dedup stage) dominate; the point of the Ray executor is machines 2..100 (docs/scale-out.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

DATAFLOW = [sys.executable, "-m", "dataflow_cli"]
TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ the cluster


def start_cluster(temp: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
         "--node-ip-address=127.0.0.1", f"--temp-dir={temp}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    probe = f"import ray; ray.init(address='{address}'); ray.shutdown()"
    for _ in range(120):
        if subprocess.run([sys.executable, "-c", probe], capture_output=True, env=env).returncode == 0:
            return head, address
        time.sleep(1)
    raise SystemExit("the Ray head node did not come up")


def stop_cluster(head: subprocess.Popen) -> None:
    for pid in session_pids(head.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    head.wait(timeout=30)


def session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:  # field 6 of /proc/pid/stat: the session id
                pids.append(int(entry.name))
    return pids


def session_cpu(sid: int) -> float:
    """User + system seconds of every process in session `sid`, with their reaped children."""
    total = 0
    for pid in session_pids(sid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


# ------------------------------------------------------------------------------ one run


def run(spec: Path, executor: str, address: str | None, sid: int | None, env: dict) -> dict:
    args = [*DATAFLOW, "run", str(spec), "--fresh", "--quiet", "--json", "--executor", executor]
    args += ["--run-dir", str(spec.parent / f"run-{executor}")]
    if address:
        args += ["--address", address]
    cluster_before = session_cpu(sid) if sid else 0.0
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, cwd=spec.parent)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{executor} run of {spec} failed (status {status})")
    stats = json.loads(stdout)
    return {
        "stats": stats,
        "wall": wall,
        "driver_cpu": usage.ru_utime + usage.ru_stime,
        "cluster_cpu": (session_cpu(sid) - cluster_before) if sid else 0.0,
    }


def rows_by_id(path: str | None) -> list[dict]:
    if not path:
        return []
    p = Path(path)
    rows = pq.read_table(p).to_pylist() if p.suffix == ".parquet" else [json.loads(x) for x in p.open()]
    return sorted(rows, key=lambda r: r["_id"])


def compare(name: str, local: dict, ray: dict) -> None:
    same_rows = rows_by_id(local["stats"]["output"]) == rows_by_id(ray["stats"]["output"])
    same_rejects = rows_by_id(local["stats"]["rejects"]) == rows_by_id(ray["stats"]["rejects"])
    rows = local["stats"]["rows_read"]
    print(f"\n{name}: {rows} rows; same output: {same_rows}, same rejects: {same_rejects}")
    print(
        f"  {'executor':<8} {'wall s':>8} {'rows/s':>9} {'driver CPU s':>13} {'cluster CPU s':>14} {'total CPU s':>12}"
    )
    for label, r in (("local", local), ("ray", ray)):
        total = r["driver_cpu"] + r["cluster_cpu"]
        print(
            f"  {label:<8} {r['wall']:>8.2f} {rows / r['wall']:>9.0f} {r['driver_cpu']:>13.2f} "
            f"{r['cluster_cpu']:>14.2f} {total:>12.2f}"
        )
    if not (same_rows and same_rejects):
        raise SystemExit(f"{name}: the executors disagree")


# ------------------------------------------------------------------------------ scenarios


def text_filters(workdir: Path, docs: int, address: str, sid: int) -> None:
    from text_corpus import ensure_corpus
    from text_filters import SPEC, installed_operators, quality_stages

    corpus = ensure_corpus(docs, 7)
    quality, notes = quality_stages(installed_operators())
    for note in notes:
        print(f"  note: {note}")
    folder = workdir / "text"
    folder.mkdir()
    spec = folder / "bench.yaml"
    text = SPEC.format(input=corpus, output=folder / "out.parquet", batch_size=10_000, quality=quality)
    spec.write_text(text.replace("output: {path:", "output: {internal_columns: true, path:"))
    env = dict(os.environ)
    local = run(spec, "local", None, None, env)
    ray = run(spec, "ray", address, sid, env)
    compare(f"text filters ({docs} docs, batch 10000)", local, ray)


def llm_throughput(
    workdir: Path, rows: int, latency: float, concurrency: int, address: str, sid: int
) -> None:
    from tests.conftest import write_jsonl
    from tests.support.openai_server import OpenAIServerProcess

    folder = workdir / "llm"
    folder.mkdir()
    write_jsonl(folder / "prompts.jsonl", [{"topic": f"topic number {i}"} for i in range(rows)])
    with OpenAIServerProcess(latency=latency, record=False) as server:
        spec = folder / "bench.yaml"
        spec.write_text(
            f"""version: 1
name: bench_llm
input: {{path: prompts.jsonl, batch_size: 500}}
output: {{path: out.parquet, internal_columns: true}}
backends:
  default: {{provider: openai, model: bench, api_base: {server.base_url}, api_key_env: BENCH_KEY,
            max_concurrency: {concurrency}, timeout: 30}}
stages:
  - name: answer
    op: prompted_generator
    params: {{template: "Tell me about {{{{ topic }}}}", max_tokens: 32}}
    outputs: {{text: answer}}
"""
        )
        results = {}
        for executor in ("local", "ray"):
            env = {
                **os.environ,
                "BENCH_KEY": "sk-bench",
                "DATAFLOW_CACHE_DIR": str(folder / f"cache-{executor}"),
            }
            ray = executor == "ray"
            results[executor] = run(spec, executor, address if ray else None, sid if ray else None, env)
    compare(f"LLM throughput ({rows} rows, {latency * 1000:.0f} ms server, concurrency {concurrency})",
            results["local"], results["ray"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dfbench-") as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        head, address = start_cluster(Path(tempfile.mkdtemp(prefix="dfray-", dir="/tmp")))
        print(f"Ray head node (2 CPUs) up in {time.perf_counter() - t0:.1f} s at {address}")
        try:
            if not args.skip_text:
                text_filters(workdir, args.docs, address, head.pid)
            if not args.skip_llm:
                llm_throughput(workdir, args.rows, args.latency, args.concurrency, address, head.pid)
        finally:
            stop_cluster(head)


if __name__ == "__main__":
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    main()
