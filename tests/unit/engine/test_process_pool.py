"""Row-local stages in worker processes (`engine/pool.py`): real processes, real files."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataflow_cli import registry
from dataflow_cli.engine import pool
from dataflow_cli.engine.executor import Executor
from dataflow_cli.errors import DataflowError
from dataflow_cli.spec.build import load_spec
from tests.conftest import write_jsonl

pytestmark = pytest.mark.timeout(120)


def rows(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        contact = rng.choice([f"mail me at user{i}@example.org", f"call +1 415-555-{1000 + i}", "no contact"])
        out.append({"name": f"person {i}", "note": None if i % 17 == 0 else contact, "n": i})
    return out


def spec_file(tmp: Path, stages: str, batch_size: int = 40, n: int = 300) -> Path:
    write_jsonl(tmp / "in.jsonl", rows(n))
    spec = tmp / "spec.yaml"
    spec.write_text(
        f"version: 1\nname: pooltest\ninput: {{path: in.jsonl, batch_size: {batch_size}}}\n"
        f"output: {{path: out.parquet}}\nstages:\n" + textwrap.dedent(stages)
    )
    return spec


STAGES = """\
  - name: render
    op: template_generator
    outputs: {{text: letter}}
    params: {{template: "Dear {{{{ name | title }}}} ({{{{ n * 3 }}}}): {{{{ note }}}}"}}
    {processes}
  - name: mask
    op: pii_refiner
    inputs: {{text: letter}}
    {processes}
  - name: calls
    op: regex_filter
    inputs: {{text: letter}}
    params: {{pattern: "<PHONE>", mode: drop_matching}}
    {processes}
"""


def run(spec: Path, run_dir: Path, processes: int | None = None) -> tuple[Executor, dict]:
    executor = Executor(load_spec(spec), run_dir, fresh=True, processes=processes)
    stats = executor.run().to_dict()
    return executor, stats


def test_a_pooled_run_writes_exactly_what_one_process_writes(tmp_path):
    single = tmp_path / "single"
    pooled = tmp_path / "pooled"
    single.mkdir()
    pooled.mkdir()
    ex1, stats1 = run(spec_file(single, STAGES.format(processes="processes: 1")), single / "run", 1)
    ex2, stats2 = run(spec_file(pooled, STAGES.format(processes="processes: 2")), pooled / "run", 2)
    assert not ex1.pools.used and ex2.pools.used
    assert [ex2.pools.decided(k) for k in range(3)] == [2, 2, 2]
    assert pq.read_table(single / "out.parquet").equals(pq.read_table(pooled / "out.parquet"))
    rejects1, rejects2 = (pq.read_table(Path(s["rejects"])) for s in (stats1, stats2))
    assert rejects1.num_rows > 0 and rejects1.equals(rejects2)
    for key in ("rows_read", "rows_written", "rows_rejected", "batches"):
        assert stats1[key] == stats2[key]
    assert [s["dropped_by_reason"] for s in stats1["stages"]] == [
        s["dropped_by_reason"] for s in stats2["stages"]
    ]
    # A rerun replays the pooled run's checkpoints without starting a pool.
    rerun = Executor(load_spec(pooled / "spec.yaml"), pooled / "run", processes=2)
    assert rerun.run().rows_written == stats2["rows_written"] and not rerun.pools.used


def shards(executor: Executor, batches: int) -> list[list]:
    """Every stage's checkpoint of every batch (None where there is none)."""
    run_dir = executor.run_dir
    return [[run_dir.load_shard(k, i) for i in range(batches)] for k in range(len(executor.stages))]


def assert_same_run(single: Path, pooled: Path, stats1: dict, stats2: dict) -> None:
    """Output, rejects (with `_stage` and `_reason`), counts and reasons are those of one process."""
    assert pq.read_table(single / "out.parquet").equals(pq.read_table(pooled / "out.parquet"))
    if stats1["rejects"] is None:
        assert stats2["rejects"] is None
    else:
        assert pq.read_table(Path(stats1["rejects"])).equals(pq.read_table(Path(stats2["rejects"])))
    for key in ("rows_read", "rows_written", "rows_rejected", "rows_added_by_fanout", "batches"):
        assert stats1[key] == stats2[key], key
    for one, other in zip(stats1["stages"], stats2["stages"], strict=True):
        for key in ("rows_in", "rows_out", "dropped_by_reason", "columns"):
            assert one[key] == other[key], (one["name"], key)


# A filter inside the run (second of four pooled stages) drops rows 80..119 (all of batch 2)
# and those without contact details: the stages after it see only the rows left.
FUSED = """\
  - name: render
    op: template_generator
    outputs: {{text: letter}}
    params: {{template: "{{% if 80 <= n < 120 %}}DROP{{% else %}}Dear {{{{ name | title }}}}: {{{{ note }}}}{{% endif %}}"}}
    {processes}
  - name: drop
    op: regex_filter
    inputs: {{text: letter}}
    params: {{pattern: "^DROP|no contact", mode: drop_matching}}
    {processes}
  - name: mask
    op: pii_refiner
    inputs: {{text: letter}}
    {processes}
  - name: count
    op: template_generator
    outputs: {{text: summary}}
    params: {{template: "{{{{ letter | length }}}} characters for {{{{ name }}}}"}}
    {processes}
"""


def test_a_run_of_pooled_stages_makes_one_trip_per_batch_with_the_same_result(tmp_path):
    single, pooled = tmp_path / "single", tmp_path / "pooled"
    single.mkdir()
    pooled.mkdir()
    ex1, stats1 = run(spec_file(single, FUSED.format(processes="processes: 1")), single / "run", 1)
    ex2, stats2 = run(spec_file(pooled, FUSED.format(processes="processes: 2")), pooled / "run", 2)
    batches = stats1["batches"]
    assert ex2.pools.trips == batches  # all four stages in one trip (batch 2: two, then empty)
    assert_same_run(single, pooled, stats1, stats2)
    assert stats1["stages"][1]["dropped_by_reason"] and stats1["stages"][2]["rows_in"] < stats1["rows_read"]
    # Checkpoints, written by the workers, are those of one process, stage by stage; the stages
    # after the filter emptied batch 2 have none, as in-process.
    assert shards(ex1, batches) == shards(ex2, batches)
    assert shards(ex2, batches)[2][2] is None and shards(ex2, batches)[1][2] is not None


def test_a_checkpointed_stage_inside_a_pooled_run_is_replayed_not_recomputed(tmp_path):
    single, pooled = tmp_path / "single", tmp_path / "pooled"
    single.mkdir()
    pooled.mkdir()
    _, stats1 = run(spec_file(single, FUSED.format(processes="processes: 1")), single / "run", 1)
    ex, _ = run(spec_file(pooled, FUSED.format(processes="processes: 2")), pooled / "run", 2)
    batches = stats1["batches"]
    # As if a crash had lost every stage's checkpoints but those of `drop` (the second stage).
    kept = {i: ex.run_dir.shard_path(1, i) for i in range(batches)}
    written = {i: path.stat().st_mtime_ns for i, path in kept.items()}
    for k in (0, 2, 3):
        for i in range(batches):
            ex.run_dir.shard_path(k, i).unlink(missing_ok=True)
    rerun = Executor(load_spec(pooled / "spec.yaml"), pooled / "run", processes=2)
    stats2 = rerun.run().to_dict()
    assert_same_run(single, pooled, stats1, stats2)
    drop = stats2["stages"][1]
    assert (drop["batches_reused"], drop["batches_computed"]) == (batches, 0)
    assert {i: path.stat().st_mtime_ns for i, path in kept.items()} == written
    assert [s["batches_computed"] for s in stats2["stages"]] == [batches, 0, batches - 1, batches - 1]
    # `render` alone, then `mask` and `count` together: two trips per batch (one for batch 2).
    assert rerun.pools.trips == 2 * batches - 1


def test_a_refiner_that_replaces_the_batch_gets_every_column_in_a_worker(tmp_path):
    stages = """\
      - name: render
        op: template_generator
        outputs: {{text: letter}}
        params: {{template: "Dear {{{{ name }}}}"}}
        processes: {processes}
      - name: rename
        op: rename_columns_refiner
        params: {{mapping: {{letter: text}}}}
        processes: {processes}
    """
    single, pooled = tmp_path / "single", tmp_path / "pooled"
    single.mkdir()
    pooled.mkdir()
    ex1, stats1 = run(spec_file(single, stages.format(processes=1)), single / "run", 1)
    ex2, stats2 = run(spec_file(pooled, stages.format(processes=2)), pooled / "run", 2)
    assert_same_run(single, pooled, stats1, stats2)
    assert set(pq.read_table(pooled / "out.parquet").column_names) == {"name", "note", "n", "text"}
    assert shards(ex1, stats1["batches"]) == shards(ex2, stats2["batches"])


def test_batches_travel_through_files_that_are_gone_after_the_run(tmp_path):
    base = Path(pool._exchange_base() or tempfile.gettempdir())
    stale = base / f"{pool.Exchange.PREFIX}{2**22 + 12345}-killed"  # above Linux's pid_max default
    stale.mkdir()
    (stale / "batch-0.arrow").write_bytes(b"left by a killed run")
    ex, _ = run(spec_file(tmp_path, STAGES.format(processes="processes: 2")), tmp_path / "run", 2)
    assert ex.pools.used
    assert not stale.exists()
    assert not list(base.glob(f"{pool.Exchange.PREFIX}{os.getpid()}-*"))


@pytest.mark.slow
def test_auto_keeps_a_quick_stage_in_process_and_pools_a_slow_cpu_bound_one(tmp_path):
    quick = tmp_path / "quick"
    quick.mkdir()
    ex, _ = run(spec_file(quick, STAGES.format(processes="")), quick / "run", 2)
    assert [ex.pools.decided(k) for k in range(3)] == [1, 1, 1]  # regex_filter: not cpu_bound
    assert not ex.pools.used
    slow = tmp_path / "slow"
    slow.mkdir()
    heavy = """\
      - name: render
        op: template_generator
        outputs: {text: letter}
        params: {template: "{% for i in range(8000) %}{{ (i * n) % 7 }}{% endfor %}"}
      - name: mask
        op: pii_refiner
        inputs: {text: note}
    """
    # 6 batches of about 0.5 s (more on a busy machine): a sample of the first moves the stage
    # to the pool, with the quick cpu-bound stage after it (they share the worker trip).
    ex, stats = run(spec_file(slow, heavy, batch_size=100, n=600), slow / "run", 2)
    assert [ex.pools.decided(k) for k in range(2)] == [2, 2] and ex.pools.trips == 6
    single = tmp_path / "single"
    single.mkdir()
    run(spec_file(single, heavy, batch_size=100, n=600), single / "run", 1)
    assert pq.read_table(slow / "out.parquet").equals(pq.read_table(single / "out.parquet"))


def test_an_operator_error_in_a_worker_is_the_same_clear_error(tmp_path):
    stages = """\
      - name: render
        op: template_generator
        params: {{template: "{{{{ 100 // (n - 250) }}}}"}}
        processes: {processes}
    """
    messages = []
    for processes in (1, 2):
        folder = tmp_path / str(processes)
        folder.mkdir()
        with pytest.raises(DataflowError) as err:
            run(spec_file(folder, stages.format(processes=processes)), folder / "run")
        messages.append(err.value.render())
        assert not (folder / "out.parquet").exists()
    assert messages[0] == messages[1] and "_id 250" in messages[0]


@pytest.fixture
def crashing_plugin(tmp_path, monkeypatch):
    """A refiner, installed as a real plugin distribution, that kills its own process."""
    root = tmp_path / "plugin"
    info = root / "pooltest_crash-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pooltest-crash\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[dataflow.operators]\ncrash_refiner = pooltest_crash:CrashRefiner\n"
    )
    (root / "pooltest_crash.py").write_text(
        textwrap.dedent(
            '''
            import os, signal
            from dataflow_cli.operator import Port, Refiner

            class CrashRefiner(Refiner):
                """Kill the process that runs it.

                Inputs:
                    text: anything.
                Outputs:
                    (none)
                Params:
                    (none)
                """

                name = "crash_refiner"
                inputs = {"text": Port("anything")}

                def refine(self, batch):
                    os.kill(os.getpid(), signal.SIGKILL)
            '''
        )
    )
    monkeypatch.syspath_prepend(str(root))
    registry.entries.cache_clear()
    registry.load.cache_clear()
    yield
    registry.entries.cache_clear()
    registry.load.cache_clear()


def test_a_worker_that_dies_fails_the_run_with_a_clear_error(tmp_path, crashing_plugin):
    stages = """\
      - name: crash
        op: crash_refiner
        inputs: {text: name}
        processes: 2
    """
    with pytest.raises(DataflowError) as err:
        run(spec_file(tmp_path, stages), tmp_path / "run")
    assert "worker process died" in err.value.reason and "crash_refiner" in err.value.reason
    assert "processes: 1" in err.value.hint
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.slow
def test_a_driver_killed_mid_run_resumes_to_the_same_output(tmp_path):
    heavy = """\
      - name: render
        op: template_generator
        outputs: {{text: letter}}
        params: {{template: "{{% for i in range(3000) %}}{{{{ (i * n) % 7 }}}}{{% endfor %}} {{{{ note }}}}"}}
        processes: {processes}
      - name: mask
        op: pii_refiner
        inputs: {{text: letter}}
        processes: {processes}
    """
    single = tmp_path / "single"
    single.mkdir()
    run(spec_file(single, heavy.format(processes=1), batch_size=25, n=500), single / "run", 1)
    spec = spec_file(tmp_path, heavy.format(processes=2), batch_size=25, n=500)
    command = [
        sys.executable,
        "-m",
        "dataflow_cli",
        "run",
        str(spec),
        "--quiet",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    driver = subprocess.Popen(command, stderr=subprocess.PIPE)
    masked = tmp_path / "run" / "stages"
    deadline = time.monotonic() + 60
    while len(list(masked.glob("01-mask/*/batch-*"))) < 4:  # written by the workers
        assert driver.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    tree = descendants(driver.pid)  # the workers' server and the workers
    assert len(tree) >= 3
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    while any(Path(f"/proc/{pid}").exists() for pid in tree):  # no orphan keeps its memory
        assert time.monotonic() < deadline
        time.sleep(0.01)
    done = len(list(masked.glob("01-mask/*/batch-*")))
    assert done < 20  # killed mid-run
    rerun = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["stages"][1]["batches_reused"] >= done
    assert pq.read_table(tmp_path / "out.parquet").equals(pq.read_table(single / "out.parquet"))
    base = Path(pool._exchange_base() or tempfile.gettempdir())
    assert not list(base.glob(f"{pool.Exchange.PREFIX}{driver.pid}-*"))  # the killed run's files


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").iterdir():
            children = [int(c) for c in (task / "children").read_text().split()]
            found += children
            todo += children
    return found
