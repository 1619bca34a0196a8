"""LLM engine throughput against a 50 ms OpenAI-compatible server, next to a bare client.

    python bench/llm_throughput.py [--rows 10000] [--latency 0.05] [--concurrency 100 500]
                                   [--repeat 2] [--faults] [--profile DIR]

A process per client and one for the server, so each one's CPU time is its own:

- the server: a minimal HTTP/1.1 keep-alive server on raw asyncio (`--serve`, below) that
  answers each chat completion after `latency` seconds with `"echo: " + last message` and
  token usage. It costs ~50-60 us of CPU per request (printed per run), a fifth of a client's,
  so it is not what limits either client;
  its `GET /stats` reports requests, the most in flight at once and its own CPU time, and the
  benchmark first checks that it holds `max(concurrency)` sleeping requests at once;
- the reference client (`--worker bare`): the least a Python client must do per row on the
  most used asyncio HTTP library, aiohttp (`ClientSession`, one `TCPConnector(limit=concurrency)`,
  `json=` body, `json.loads` of the reply): `concurrency` coroutines pulling rows from one
  iterator, then the answers written as Parquet;
- the engine (`--worker engine`): `load_spec` + `Executor.run()`, exactly what `dataflow run
  --fresh` does, on a `prompted_generator` stage with an `openai` backend, request cache on.
  That backend's HTTP/1.1 client is its own (`llm/backends/http1.py`), not aiohttp;
- a second reference (`--worker bare-http1`): the bare loop on that same client, so what is
  left between it and the engine is the engine's own work per row (cache, stats, limits).

Per run: rows/s over the measured section, and client CPU per request (`time.process_time()`
of the client process over that section, i.e. user + system time of every thread, plus the
CPU time of child processes that ended in it, should a client start any;
interpreter start-up, imports and first-use costs of the client process are excluded for both
clients by a 20-row warm-up run in the same process first). Runs alternate bare, engine,
bare-http1, bare, ... so all see the same load on a shared machine; the ratio is engine rows/s
over the bare aiohttp client's rows/s (the goal's reference), each the best of `--repeat` runs. Every output row is checked
(`text == "echo: " + prompt`). Then the engine reruns its last spec: answered from the
request cache, with zero requests reaching the server.

Goals (issue 12): ratio >= 0.95 at concurrency 100 and 500; engine CPU <= 0.5 ms/request.

`--faults` adds the retry scenario against `tests/support/openai_server.py` (5% of requests
fail with 429 + Retry-After 1 s or 500; goal <= 1.3 x the failure-free time, no row lost).
`--profile DIR` writes a cProfile of each engine run (`DIR/engine-c<N>.pstats`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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
    params: {{template: "{template}", max_tokens: 64}}
"""
TEMPLATE = "Write a short answer about {{ topic }}."


def prompt(topic: str) -> str:
    return f"Write a short answer about {topic}."


def request_body(topic: str) -> dict:
    """What the engine sends for a row (the bare clients send the same)."""
    return {"model": "bench", "messages": [{"role": "user", "content": prompt(topic)}], "max_tokens": 64}


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _Counters:
    requests = 0
    in_flight = 0
    max_in_flight = 0


class _HTTPServer(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and Content-Length bodies: all an OpenAI client sends."""

    latency = 0.05

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith(b"get /stats"):
                self._send(
                    json.dumps(
                        {
                            "requests": _Counters.requests,
                            "in_flight": _Counters.in_flight,
                            "max_in_flight": _Counters.max_in_flight,
                            "cpu": time.process_time(),
                        }
                    ).encode()
                )
                continue
            if head.startswith(b"post /reset"):
                _Counters.requests = _Counters.max_in_flight = 0
                self._send(b"{}")
                continue
            _Counters.requests += 1
            _Counters.in_flight += 1
            _Counters.max_in_flight = max(_Counters.max_in_flight, _Counters.in_flight)
            asyncio.get_running_loop().call_later(self.latency, self._answer, body)

    def _answer(self, body: bytes) -> None:
        _Counters.in_flight -= 1
        if self.transport.is_closing():
            return
        request = json.loads(body)
        reply = "echo: " + request["messages"][-1]["content"]
        prompt_tokens = sum(len(m["content"].split()) for m in request["messages"])
        self._send(
            json.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "model": request.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(reply.split()),
                        "total_tokens": prompt_tokens + len(reply.split()),
                    },
                }
            ).encode()
        )

    def _send(self, payload: bytes) -> None:
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(payload), payload)
        )


async def _serve(latency: float) -> None:
    _HTTPServer.latency = latency
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_HTTPServer, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"READY http://127.0.0.1:{port}/v1", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # exit when the parent closes our stdin


class Server:
    def __init__(self, latency: float):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--latency", str(latency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise SystemExit(f"server did not start: {line!r}")
        self.base_url = line.split()[1]

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/stats", timeout=30) as r:
            return json.loads(r.read())

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(self.base_url.removesuffix("/v1") + "/reset", data=b"", method="POST"),
            timeout=30,
        ).read()

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


# --------------------------------------------------------------------------------------------
# The clients (each in its own process)
# --------------------------------------------------------------------------------------------


def bare_client(base_url: str, topics: list[str], concurrency: int, output: Path) -> dict:
    """The reference: one aiohttp session, `concurrency` workers, one POST and one JSON parse per row."""
    import aiohttp
    import pyarrow as pa
    import pyarrow.parquet as pq

    url = base_url + "/chat/completions"
    answers: list[str | None] = [None] * len(topics)

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            rows = iter(enumerate(topics))

            async def worker() -> None:
                for i, topic in rows:
                    async with session.post(url, json=request_body(topic)) as response:
                        payload = json.loads(await response.read())
                    answers[i] = payload["choices"][0]["message"]["content"]

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(main())
    pq.write_table(pa.table({"topic": topics, "text": answers}), output)
    return {"rows": len(answers)}


def bare_http1_client(base_url: str, topics: list[str], concurrency: int, output: Path) -> dict:
    """The same loop as `bare_client` on the engine's own HTTP client (`http1.Origin`): what
    is left between the engine and this is the engine's own work per row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataflow_cli.llm.backends.http1 import Origin

    answers: list[str | None] = [None] * len(topics)
    headers = {"Content-Type": "application/json"}

    async def main() -> None:
        origin = Origin(base_url + "/chat/completions", 30.0)
        rows = iter(enumerate(topics))

        async def worker() -> None:
            for i, topic in rows:
                response = await origin.post(json.dumps(request_body(topic)).encode(), headers)
                answers[i] = json.loads(response.body)["choices"][0]["message"]["content"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        origin.close()

    asyncio.run(main())
    pq.write_table(pa.table({"topic": topics, "text": answers}), output)
    return {"rows": len(answers)}


def engine_client(spec_path: Path, run_dir: Path, profile: Path | None) -> dict:
    """What `dataflow run --fresh` does, in this process."""
    from dataflow_cli.engine.executor import Executor
    from dataflow_cli.spec.build import load_spec

    spec = load_spec(spec_path, [])
    executor = Executor(spec, run_dir, fresh=True)
    if profile is None:
        stats = executor.run()
    else:
        stats = _profiled(executor.run, profile)
    llm = stats.stages[0].llm or {}
    return {
        "rows": stats.rows_written,
        "rejected": stats.rows_rejected,
        "calls": llm.get("calls"),
        "retries": llm.get("retries"),
        "cache_hits": llm.get("cache_hits"),
    }


def _warm_up_engine(spec_path: Path, run_dir: Path) -> None:
    from dataflow_cli.engine.executor import Executor
    from dataflow_cli.spec.build import load_spec

    Executor(load_spec(spec_path, ["input.limit=20"]), run_dir, fresh=True).run()


def _profiled(fn, path: Path):
    """`fn()` under cProfile in every thread it starts (the engine's event loop runs on its own
    thread, batches on a pool), merged into one dump."""
    import cProfile
    import pstats
    import threading

    profilers: list[cProfile.Profile] = []
    thread_run = threading.Thread.run

    def run(self):
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()
        try:
            thread_run(self)
        finally:
            profiler.disable()

    threading.Thread.run = run
    try:
        main = cProfile.Profile()
        profilers.append(main)
        result = main.runcall(fn)
    finally:
        threading.Thread.run = thread_run
    merged = pstats.Stats(profilers[0])
    for profiler in profilers[1:]:
        merged.add(profiler)
    merged.dump_stats(path)
    return result


def worker_main(args: argparse.Namespace) -> None:
    """Run one client and print its figures as JSON. A 20-row warm-up run comes first (its own
    output, run directory and cache), so imports and first-use costs stay out of the measured
    run, for both clients alike."""
    bare = bare_client if args.worker == "bare" else bare_http1_client
    if args.worker == "engine":
        cache = os.environ.get("DATAFLOW_CACHE_DIR", "")
        # One warm-up cache for all runs: only the first warm-up sends requests.
        os.environ["DATAFLOW_CACHE_DIR"] = str(Path(args.spec).parent / "warm-up-cache")
        _warm_up_engine(Path(args.spec), Path(args.run_dir + "-warm-up"))
        os.environ["DATAFLOW_CACHE_DIR"] = cache
    else:
        bare(args.base_url, [f"warm-up {i}" for i in range(20)], 20, Path(args.output + ".warm-up"))
    topics = [f"topic {i}" for i in range(args.rows)]
    wall, cpu, usage = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if args.worker != "engine":
        result = bare(args.base_url, topics, args.concurrency[0], Path(args.output))
    else:
        profile = Path(args.profile) if args.profile else None
        result = engine_client(Path(args.spec), Path(args.run_dir), profile)
    result["seconds"] = time.perf_counter() - wall
    # Child processes count too, should a client start any: reaped before the run returns,
    # their CPU time is in RUSAGE_CHILDREN by now.
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["child_cpu"] = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
    result["cpu"] = time.process_time() - cpu + result["child_cpu"]
    result["system_cpu"] = resource.getrusage(resource.RUSAGE_SELF).ru_stime - usage.ru_stime
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------


def check_output(path: Path, rows: int) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["topic", "text"])
    if table.num_rows != rows:
        raise SystemExit(f"{path.name}: {table.num_rows} rows, expected {rows}")
    for topic, text in zip(table.column("topic").to_pylist(), table.column("text").to_pylist(), strict=True):
        if text != "echo: " + prompt(topic):
            raise SystemExit(f"{path.name}: wrong answer for {topic!r}: {text!r}")


def client(kind: str, extra: list[str], env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", kind, *extra],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} client failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(kind: str, server: Server, work: Path, rows: int, concurrency: int, tag: str, args) -> dict:
    output = work / f"{kind}-{tag}.parquet"
    cache = work / f"cache-{tag}"
    before = server.stats()
    if kind != "engine":
        extra = ["--base-url", server.base_url, "--rows", str(rows), "--concurrency", str(concurrency)]
        result = client(kind, [*extra, "--output", str(output)])
    else:
        spec = work / f"spec-{tag}.yaml"
        spec.write_text(
            SPEC.format(
                input=work / "topics.jsonl",
                output=output,
                base_url=server.base_url,
                concurrency=concurrency,
                batch=max(2 * concurrency, 200),
                template=TEMPLATE,
            )
        )
        extra = ["--spec", str(spec), "--run-dir", str(work / f"run-{tag}")]
        if args.profile:
            extra += ["--profile", str(Path(args.profile) / f"engine-{tag}.pstats")]
        result = client("engine", extra, env=dict(os.environ, DATAFLOW_CACHE_DIR=str(cache)))
    after = server.stats()
    check_output(output, rows)
    result["requests"] = after["requests"] - before["requests"]
    result["server_cpu_ms"] = 1000 * (after["cpu"] - before["cpu"]) / max(1, result["requests"])
    result["rows_per_second"] = rows / result["seconds"]
    result["cpu_ms_per_request"] = 1000 * result["cpu"] / rows
    return result


def check_server(server: Server, work: Path, concurrency: int, latency: float) -> str:
    """The server must hold `concurrency` sleeps at once: three waves of that many requests from
    the bare client, and the server saw (nearly) all of one wave in flight together."""
    server.reset()
    cpu = server.stats()["cpu"]
    rows = 3 * concurrency
    result = client(
        "bare",
        ["--base-url", server.base_url, "--rows", str(rows), "--concurrency", str(concurrency)]
        + ["--output", str(work / "burst.parquet")],
    )
    stats = server.stats()
    peak = stats["max_in_flight"]
    note = "" if peak >= 0.98 * concurrency else " -- WARNING: the server did not hold them all"
    return (
        f"server check: {rows} requests at concurrency {concurrency}: {peak} in flight at once, "
        f"{result['seconds']:.2f} s (3 x latency = {3 * latency:.2f} s), server CPU "
        f"{1000 * (stats['cpu'] - cpu) / rows:.3f} ms/request{note}"
    )


def faults(work: Path, rows: int, latency: float) -> None:
    """The retry scenario on the test server (fault injection): 5% of requests fail."""
    from tests.support.openai_server import OpenAIServerProcess

    test_server = OpenAIServerProcess(latency=latency, rules=[], record=False).start()
    try:

        def run(tag: str) -> dict:
            spec = work / f"spec-{tag}.yaml"
            spec.write_text(
                SPEC.format(
                    input=work / "topics.jsonl",
                    output=work / f"{tag}.parquet",
                    base_url=test_server.base_url,
                    concurrency=100,
                    batch=200,
                    template=TEMPLATE,
                )
            )
            env = dict(os.environ, DATAFLOW_CACHE_DIR=str(work / f"cache-{tag}"))
            return client("engine", ["--spec", str(spec), "--run-dir", str(work / f"run-{tag}")], env=env)

        clean = run("test-server-clean")
        test_server.configure(
            fail_rate=0.05, fail_kinds={"rate_limit": 1, "server_error": 1}, retry_after=1.0
        )
        faulty = run("test-server-faults")
    finally:
        test_server.stop()
    lost = rows - faulty["rows"] - faulty["rejected"]
    print(
        f"5% faults (429 Retry-After 1 s / 500), c100: {faulty['seconds']:.2f} s vs {clean['seconds']:.2f} s "
        f"failure-free = {faulty['seconds'] / clean['seconds']:.2f} x (goal <= 1.3); retries "
        f"{faulty['retries']}, rows lost {lost}, rejected {faulty['rejected']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each client per concurrency")
    parser.add_argument("--faults", action="store_true", help="also run the 5%% fault scenario")
    parser.add_argument("--profile", help="directory for cProfile dumps of the engine runs")
    # Internal: the server and client processes.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["bare", "bare-http1", "engine"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.latency))
        return
    if args.worker:
        worker_main(args)
        return
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    rows, latency = args.rows, args.latency
    report: dict = {"rows": rows, "latency": latency, "runs": []}
    with tempfile.TemporaryDirectory(prefix="dataflow-llm-bench-") as tmp:
        work = Path(tmp)
        (work / "topics.jsonl").write_text(
            "".join(json.dumps({"topic": f"topic {i}"}) + "\n" for i in range(rows))
        )
        server = Server(latency)
        try:
            print(check_server(server, work, max(args.concurrency), latency))
            for concurrency in args.concurrency:
                best: dict[str, dict] = {}
                for r in range(args.repeat):
                    for kind in ("bare", "engine", "bare-http1"):
                        tag = f"c{concurrency}-{r}"
                        result = measure(kind, server, work, rows, concurrency, tag, args)
                        report["runs"].append({"client": kind, "concurrency": concurrency, **result})
                        print(
                            f"  c{concurrency:<4} {kind:>10}: {result['seconds']:6.2f} s, "
                            f"{result['rows_per_second']:7,.0f} rows/s, client CPU "
                            f"{result['cpu_ms_per_request']:.3f} ms/request, server CPU "
                            f"{result['server_cpu_ms']:.3f} ms/request",
                            flush=True,
                        )
                        if kind not in best or result["rows_per_second"] > best[kind]["rows_per_second"]:
                            best[kind] = result
                ratio = best["engine"]["rows_per_second"] / best["bare"]["rows_per_second"]
                floor = concurrency / latency
                print(
                    f"concurrency {concurrency}: engine {best['engine']['rows_per_second']:,.0f} rows/s, "
                    f"bare aiohttp {best['bare']['rows_per_second']:,.0f} rows/s (latency floor "
                    f"{floor:,.0f}): ratio {ratio:.3f} (goal >= 0.95); engine CPU "
                    f"{min(r['cpu_ms_per_request'] for r in report['runs'] if r['client'] == 'engine' and r['concurrency'] == concurrency):.3f} ms/request "
                    f"(goal <= 0.5), bare "
                    f"{min(r['cpu_ms_per_request'] for r in report['runs'] if r['client'] == 'bare' and r['concurrency'] == concurrency):.3f}",
                    flush=True,
                )
                report[f"ratio_c{concurrency}"] = round(ratio, 3)
                own = best["engine"]["rows_per_second"] / best["bare-http1"]["rows_per_second"]
                print(
                    f"  and a bare loop on the engine's own HTTP client: "
                    f"{best['bare-http1']['rows_per_second']:,.0f} rows/s, CPU "
                    f"{best['bare-http1']['cpu_ms_per_request']:.3f} ms/request: engine at {own:.3f} of it",
                    flush=True,
                )
                report[f"ratio_own_c{concurrency}"] = round(own, 3)
            # The last engine spec again, with its filled cache: no request may reach the server.
            tag = f"c{args.concurrency[-1]}-{args.repeat - 1}"
            before = server.stats()["requests"]
            env = dict(os.environ, DATAFLOW_CACHE_DIR=str(work / f"cache-{tag}"))
            spec = work / f"spec-{tag}.yaml"
            cached = client("engine", ["--spec", str(spec), "--run-dir", str(work / "run-cached")], env=env)
            requests = server.stats()["requests"] - before
            check_output(work / f"engine-{tag}.parquet", rows)
            print(
                f"cached rerun: {requests} requests, {rows / cached['seconds']:,.0f} rows/s, "
                f"{1000 * cached['cpu'] / rows:.3f} ms CPU/row, cache hits {cached['cache_hits']}"
            )
            report["cached"] = {**cached, "requests": requests}
        finally:
            server.stop()
        if args.faults:
            faults(work, rows, latency)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
