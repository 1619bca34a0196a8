"""Sandbox figures: isolation detected, executions/s for trivial programs, per-execution overhead,
time-limit overrun, verified solutions/s, and the parent's memory over many executions.

    python bench/sandbox.py              # full run (10k executions for the memory figure)
    python bench/sandbox.py --runs 1000  # shorter

Goal (issue 10): >= 50 executions/s for trivial programs on 2 cores; the parent's memory flat.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from dataflow_cli.sandbox.process import Sandbox, SandboxPolicy, detect_isolation
from dataflow_cli.sandbox.verify import TestRunner


class CpuMeter:
    """CPU time of this process and every process it starts (bwrap's namespaces included, which
    the kernel's per-child accounting misses), from a cgroup of its own when one can be made.
    Divides out the machine's other load: executions/s on 2 idle cores = 2 / CPU per execution."""

    def __init__(self) -> None:
        self.read = None
        for root, stat in (("/sys/fs/cgroup/cpuacct", "cpuacct.usage"), ("/sys/fs/cgroup", "cpu.stat")):
            group = os.path.join(root, f"dataflow-bench-{os.getpid()}")
            try:
                os.makedirs(group, exist_ok=True)
                with open(os.path.join(group, "cgroup.procs"), "w") as handle:
                    handle.write(str(os.getpid()))
            except OSError:
                continue
            self.group, self.parent = group, root
            path = os.path.join(group, stat)
            if stat == "cpuacct.usage":
                self.read = lambda path=path: int(open(path).read()) / 1e9
            else:
                self.read = lambda path=path: int(open(path).read().split()[1]) / 1e6
            return

    def close(self) -> None:
        if self.read is not None:  # back to the parent group, then the group can go
            with open(os.path.join(self.parent, "cgroup.procs"), "w") as handle:
                handle.write(str(os.getpid()))
            os.rmdir(self.group)

    def per_run(self, fn, runs: int) -> float | None:
        if self.read is None:
            return None
        before = self.read()
        for _ in range(runs):
            fn()
        return (self.read() - before) / runs


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def throughput(box: Sandbox, runs: int, workers: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda _: box.run_python("print(1)"), range(runs)))
    elapsed = time.perf_counter() - started
    assert all(r.ok for r in results), next(r for r in results if not r.ok)
    return runs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="executions for the memory figure")
    args = parser.parse_args()

    isolation = detect_isolation()
    box = Sandbox(SandboxPolicy(timeout_s=10))
    print(f"cpus: {os.cpu_count()}  isolation: {json.dumps(isolation.as_dict())}")

    box.run_python("pass")  # warm
    latencies = []
    for _ in range(50):
        started = time.perf_counter()
        box.run_python("pass")
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    print(
        f"per-execution latency (sequential, 50 runs): p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {latencies[int(0.95 * len(latencies))]:.1f} ms"
    )
    for workers in (1, 2, 4, 8):
        print(f"executions/s, {workers} concurrent: {throughput(box, 200, workers):.1f}")
    meter = CpuMeter()
    cpu = meter.per_run(lambda: box.run_python("print(1)"), 100)
    meter.close()
    if cpu is not None:
        print(
            f"CPU per trivial execution (parent, bwrap, interpreter, all counted): {cpu * 1000:.1f} ms "
            f"-> at most {2 / cpu:.0f} executions/s on 2 idle cores"
        )

    for limit in (0.5, 1.0, 2.0):
        timed = Sandbox(SandboxPolicy(timeout_s=limit), isolation=box.isolation)
        overruns = []
        for source in (
            "while True:\n    pass\n",
            "import time\ntime.sleep(100)\n",
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        ):
            started = time.perf_counter()
            result = timed.run_python(source)
            assert result.status == "timeout", result
            overruns.append((time.perf_counter() - started - limit) * 1000)
        print(
            f"time-limit overrun at {limit:g} s (loop, sleep, fork bomb): "
            + ", ".join(f"{o:.0f} ms" for o in overruns)
        )

    runner = TestRunner(box)
    solution = "def add(a, b):\n    return a + b\n"
    tests = "\n".join(f"assert add({i}, {i}) == {2 * i}" for i in range(10)) + "\n"
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda _: runner.run(solution, tests), range(100)))
    assert all(r.all_passed for r in reports)
    print(
        f"verified solutions/s (10 tests each, record + judge runs, 4 concurrent): {100 / (time.perf_counter() - started):.1f}"
    )

    before = rss_mb()
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        done = 0
        for chunk in range(0, args.runs, 1000):
            list(
                pool.map(
                    lambda _: box.run_python("print(1)", channel=True), range(min(1000, args.runs - chunk))
                )
            )
            done += min(1000, args.runs - chunk)
            print(f"  {done} executions: parent RSS {rss_mb():.1f} MiB")
    elapsed = time.perf_counter() - started
    print(
        f"parent RSS over {args.runs} executions: {before:.1f} -> {rss_mb():.1f} MiB "
        f"({args.runs / elapsed:.1f} executions/s, 4 concurrent); open fds {len(os.listdir('/proc/self/fd'))}"
    )


if __name__ == "__main__":
    main()
