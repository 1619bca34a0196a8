"""`--executor ray` on a real local Ray cluster (started once for the module, 2 CPUs): the same
rows, rejects and stats as the local executor for every shipped pipeline, resume after the
driver is killed without repeating a completed LLM request, checkpoints on a `file://` URI, and
RPM limits that hold across the LLM actors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, read_jsonl, write_jsonl
from tests.integration.test_pipelines import LLM_PIPELINES, PIPELINES

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray", reason="the `ray` extra (installed by `make test`)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A head node on loopback (`ray start --block` in its own process group, removed after the
    module); drivers join it through `--address`."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="dfray-", dir="/tmp")  # short: Ray's socket paths have a limit
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
         "--node-ip-address=127.0.0.1", f"--temp-dir={temp}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    try:
        deadline = time.monotonic() + 120
        while True:
            if head.poll() is not None:
                raise RuntimeError(f"ray start failed: {head.stderr.read().decode()[-2000:]}")
            try:
                subprocess.run(
                    [sys.executable, "-c", f"import ray; ray.init(address='{address}'); ray.shutdown()"],
                    check=True, capture_output=True, timeout=60, env=env,
                )  # fmt: skip
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        # The tests' in-process runs share one connection (the executor keeps a driver it did
        # not start): connecting once saves seconds per run.
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        yield address
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        # Every process of the cluster is in the session `ray start` opened (workers have
        # process groups of their own, not sessions).
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in _session(head.pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while _session(head.pid) and time.monotonic() < deadline:
                head.poll()  # reaps `ray start` itself
                time.sleep(0.1)
        shutil.rmtree(temp, ignore_errors=True)


def _session(sid: int) -> list[int]:
    """Live processes of session `sid` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def _rows(path: Path) -> list[dict]:
    rows = pq.read_table(path).to_pylist() if path.suffix == ".parquet" else read_jsonl(path)
    return sorted(rows, key=lambda r: r["_id"])


def _outputs(folder: Path) -> dict[str, list[dict]]:
    """Every data file under `folder` (output and rejects), rows sorted by `_id`."""
    return {
        str(p.relative_to(folder)): _rows(p)
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".jsonl", ".parquet") and p.is_file()
    }


def _comparable(stats: dict) -> dict:
    """Stats without what legitimately differs between two runs: timings and paths."""
    out = {k: v for k, v in stats.items() if k not in ("seconds", "rows_per_second", "run_dir")}
    out["stages"] = []
    for stage in stats["stages"]:
        stage = {k: v for k, v in stage.items() if k != "seconds"}
        if stage.get("llm"):
            stage["llm"] = {
                k: v for k, v in stage["llm"].items() if k not in ("rate_limit_wait", "in_flight")
            }
        out["stages"].append(stage)
    return out


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_gives_the_same_rows_rejects_and_stats_as_local(
    name, ray_cluster, cli, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    if name in ("pretrain_filter", "text_clean"):  # exact and MinHash dedup: on the cluster, not the driver
        monkeypatch.setenv("DATAFLOW_RAY_SHUFFLE_MIN_ROWS", "0")
    folder = tmp_path / name
    shutil.copytree(REPO / "pipelines" / name, folder, ignore=shutil.ignore_patterns("out"))
    spec = folder / "pipeline.yaml"
    args = ["--set", "output.internal_columns=true", "--quiet"]
    if name in LLM_PIPELINES:
        args += ["--set", "backends.default.provider=fake"]
    results = {}
    for executor in ("local", "ray"):
        # Separate request caches: the Ray run must make its own calls, not replay the local ones.
        monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / f"cache-{executor}"))
        extra = ["--executor", "ray", "--address", ray_cluster] if executor == "ray" else []
        stats = cli.json("run", spec, *args, *extra, "--run-dir", tmp_path / f"run-{executor}")
        shutil.move(folder / "out", tmp_path / f"out-{executor}")
        results[executor] = (stats, _outputs(tmp_path / f"out-{executor}"))
    (local_stats, local_rows), (ray_stats, ray_rows) = results["local"], results["ray"]
    assert (
        local_rows
        and sum(map(len, local_rows.values())) == local_stats["rows_written"] + local_stats["rows_rejected"]
    )
    assert ray_rows == local_rows
    assert _comparable(ray_stats) == _comparable(local_stats)


# ------------------------------------------------------------------------------ crash and resume

KILL_SPEC = """\
version: 1
name: ray_crash
input: {{path: {input}, batch_size: 8}}
output: {{path: {output}, internal_columns: true}}
{executor}
backends:
  default:
    provider: openai
    model: test-model
    api_base: {base_url}
    api_key_env: DATAFLOW_TEST_KEY
    max_concurrency: 4
    timeout: 10
stages:
  - name: normalize
    op: text_normalize_refiner
  - name: answer
    op: prompted_generator
    params: {{template: "Say something about {{{{ text }}}}", max_tokens: 16}}
    outputs: {{text: answer}}
  - name: dedup
    op: exact_dedup_filter
    params: {{columns: [text], normalize: true}}
  - name: short
    op: length_evaluator
    inputs: {{text: answer}}
"""


def _kill_setup(tmp_path: Path, base_url: str, executor: str, checkpoints: str | None, name: str) -> Path:
    source = tmp_path / "in.jsonl"
    if not source.exists():
        write_jsonl(source, [{"text": f"topic   {i % 150} number {i % 150}"} for i in range(200)])
    spec = tmp_path / f"{name}.yaml"
    chosen = f'executor: {{type: ray, checkpoint_dir: "{checkpoints}"}}' if executor == "ray" else ""
    spec.write_text(
        KILL_SPEC.format(
            input=source, output=tmp_path / f"{name}.parquet", executor=chosen, base_url=base_url
        )
    )
    return spec


def _run(spec: Path, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dataflow_cli", "run", str(spec), "--quiet", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=spec.parent,
    )  # fmt: skip


def _cached(cache_dir: Path) -> int:
    path = cache_dir / "llm-cache.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]


def test_driver_killed_mid_run_resumes_to_identical_output_without_repeating_requests(
    ray_cluster, openai_server_factory, tmp_path
):
    server = openai_server_factory(latency=0.05)
    env = {**os.environ, "DATAFLOW_TEST_KEY": "sk-test", "DATAFLOW_CACHE_DIR": str(tmp_path / "cache-ref")}
    reference = _kill_setup(tmp_path, server.base_url, "local", None, "reference")
    done = _run(reference, "--run-dir", str(tmp_path / "run-ref"), env=env)
    assert done.wait(timeout=240) == 0, done.stderr.read().decode()
    prompts = {r.last_content for r in server.chat_requests}
    assert len(prompts) == 150  # distinct normalized texts

    server.reset()
    checkpoints = tmp_path / "shared" / "ckpt"
    spec = _kill_setup(tmp_path, server.base_url, "ray", checkpoints.as_uri(), "crash")  # a pyarrow.fs URI
    cache = tmp_path / "cache-ray"
    env = {**env, "DATAFLOW_CACHE_DIR": str(cache)}
    args = ("--address", ray_cluster, "--run-dir", str(tmp_path / "run-crash"))
    first = _run(spec, *args, env=env)
    deadline = time.monotonic() + 180
    while len(list(checkpoints.glob("stages/01-answer/*/batch-*.parquet"))) < 5:
        assert first.poll() is None, "the run ended before the kill point: " + first.stderr.read().decode()
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    time.sleep(1.0)  # the cluster notices the driver is gone and stops its workers
    before = [r.last_content for r in server.chat_requests if r.status == 200]
    cached = _cached(cache)
    assert 0 < cached < len(prompts)

    server.reset()
    final = _run(spec, *args, env=env)
    assert final.wait(timeout=240) == 0, final.stderr.read().decode()
    again = [r.last_content for r in server.chat_requests]
    # Exactly the answers the cache did not hold are asked for; a request answered before the
    # kill is repeated only if it was still in flight (its answer never reached the cache).
    assert len(again) == len(prompts) - cached
    assert len(set(again) & set(before)) <= 4  # max_concurrency: at most what was in flight
    assert _rows(tmp_path / "crash.parquet") == _rows(tmp_path / "reference.parquet")
    stats = json.loads((tmp_path / "run-crash" / "stats.json").read_text())
    assert stats["rows_read"] == 200 and stats["rows_written"] + stats["rows_rejected"] == 200
    answer = next(s for s in stats["stages"] if s["name"] == "answer")
    assert answer["batches_reused"] >= 5


# ------------------------------------------------------------------------------ limits, errors


def test_rpm_limit_holds_across_llm_actors(ray_cluster, openai_server_factory, tmp_path, monkeypatch, cli):
    """128 requests in flight at most means two LLM actors (64 each); their one limiter keeps
    the whole run at 1200 requests/minute (20/s, bursting 20): 160 requests take 7 s, where two
    actors with a bucket each would take 3 s ((160 - 2 * 20) / 40)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFLOW_TEST_KEY", "sk-test")
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    server = openai_server_factory(latency=0.0)
    write_jsonl(tmp_path / "in.jsonl", [{"topic": f"topic {i}"} for i in range(160)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: ray_rpm
input: {{path: in.jsonl, batch_size: 10}}
output: {{path: out.jsonl}}
executor: ray
backends:
  default: {{provider: openai, model: m, api_base: {server.base_url}, api_key_env: DATAFLOW_TEST_KEY,
            max_concurrency: 128, rpm: 1200}}
stages:
  - name: answer
    op: prompted_generator
    params: {{template: "About {{{{ topic }}}}", max_tokens: 8}}
    outputs: {{text: answer}}
"""
    )
    stats = cli.json("run", spec, "--address", ray_cluster, "--quiet")
    assert stats["rows_written"] == 160
    times = sorted(r.arrival for r in server.chat_requests)
    assert len(times) == 160
    # Tokens are granted before the HTTP connections exist, so the first arrivals bunch up
    # (up to ~1 s early); the span still shows one shared rate.
    assert times[-1] - times[0] >= 5.0
    assert stats["stages"][0]["llm"]["rate_limit_wait"] > 0


def test_executor_from_the_spec_and_overridden_on_the_command_line(ray_cluster, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", [{"text": f"row {i}"} for i in range(5)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: ex\ninput: {path: in.jsonl}\noutput: {path: out.jsonl}\n"
        "executor: {type: ray, checkpoint_dir: ckpt}\n"
        "stages:\n  - name: n\n    op: length_evaluator\n"
    )
    first = cli.json("run", spec, "--address", ray_cluster, "--quiet")
    assert list((tmp_path / "ckpt" / "stages").glob("00-n/*/batch-000000.parquet"))  # ran on Ray
    assert first["stages"][0]["batches_computed"] == 1
    again = cli.json("run", spec, "--address", ray_cluster, "--quiet")  # resumes from the local path
    assert again["stages"][0]["batches_reused"] == 1 and again["rows_written"] == 5
    shutil.rmtree(tmp_path / "ckpt")
    cli("run", spec, "--executor", "local", "--quiet", "--fresh")
    assert not (tmp_path / "ckpt").exists()  # the command line won: the local executor ran
    spec.write_text(spec.read_text().replace("type: ray", "type: spark"))
    result = cli("validate", spec, expect=2)
    assert "executor" in result.stderr


def test_missing_ray_is_one_line_with_the_install_command(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "a"}])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: ex\ninput: {path: in.jsonl}\noutput: {path: out.jsonl}\n"
        "stages:\n  - name: n\n    op: length_evaluator\n"
    )
    blocked = "import sys; sys.modules['ray'] = None; from dataflow_cli.cli.app import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", blocked, "run", str(spec), "--executor", "ray"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "pip install 'dataflow-cli[ray]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_fatal_llm_error_in_a_worker_is_one_clear_message(
    ray_cluster, openai_server_factory, cli, tmp_path, monkeypatch
):
    """A wrong API key fails the run from inside an LLM actor: the user sees the engine's own
    message (exit 1), not Ray's task traceback, and no output file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFLOW_TEST_KEY", "sk-wrong")
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    server = openai_server_factory(latency=0.0, require_api_key="sk-right")
    write_jsonl(tmp_path / "in.jsonl", [{"topic": f"topic {i}"} for i in range(4)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: ray_auth
input: {{path: in.jsonl}}
output: {{path: out.jsonl}}
backends:
  default: {{provider: openai, model: m, api_base: {server.base_url}, api_key_env: DATAFLOW_TEST_KEY}}
stages:
  - name: answer
    op: prompted_generator
    params: {{template: "About {{{{ topic }}}}"}}
    outputs: {{text: answer}}
"""
    )
    done = subprocess.run(
        [sys.executable, "-m", "dataflow_cli", "run", str(spec), "--executor", "ray", "--address", ray_cluster],
        capture_output=True, text=True, cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "backend `default`" in done.stderr and "Traceback" not in done.stderr
    assert "sk-wrong" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists()
