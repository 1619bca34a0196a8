"""Row-local stages in worker processes (`engine/pool.py`): real processes, real files."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataflow_cli import registry
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
    """
    # 6 batches of about 0.5 s (more on a busy machine): the first, timed in-process, moves the
    # stage to the pool, which then computes most of the others.
    ex, stats = run(spec_file(slow, heavy, batch_size=100, n=600), slow / "run", 2)
    assert ex.pools.decided(0) == 2 and ex.pools.used
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
