"""A run killed with SIGKILL at any point, then resumed, produces exactly the uninterrupted output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

SPEC = """\
version: 1
name: crash
input: {{path: {input}, batch_size: 1000}}
output: {{path: {output}}}
stages:
  - name: normalize
    op: text_normalize_refiner
  - name: measure
    op: length_evaluator
  - name: bounds
    op: range_filter
    inputs: {{value: words}}
    params: {{min: 3}}
  - name: dedup
    op: exact_dedup_filter
    params: {{columns: [text], normalize: true}}
  - name: render
    op: template_generator
    outputs: {{text: prompt}}
    params: {{template: "Q: {{{{ text }}}} ({{{{ words }}}} words)"}}
"""


def make_input(path: Path, rows: int = 120_000) -> None:
    texts = [f"row   {i % 40_000} of the   crash test {'word ' * (i % 9)}" for i in range(rows)]
    pq.write_table(pa.table({"text": texts}), path)


def start(spec: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dataflow_cli", "run", str(spec), "--quiet", "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def rows_of(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def shards(run_dir: Path, stage_prefix: str) -> int:
    return sum(1 for _ in run_dir.glob(f"stages/{stage_prefix}-*/*/batch-*.parquet"))


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """SIGKILL `proc` as soon as `ready()` holds; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            return True
        time.sleep(0.002)
    raise AssertionError("kill point never reached")


def test_sigkill_at_several_points_then_resume_matches_uninterrupted(tmp_path):
    source = tmp_path / "in.parquet"
    make_input(source)
    reference_spec = tmp_path / "reference.yaml"
    reference_spec.write_text(SPEC.format(input=source, output=tmp_path / "reference.parquet"))
    done = start(reference_spec, tmp_path / "run-ref")
    assert done.wait(timeout=240) == 0, done.stderr.read().decode()

    spec = tmp_path / "crash.yaml"
    output = tmp_path / "out.parquet"
    spec.write_text(SPEC.format(input=source, output=output))
    run = tmp_path / "run-crash"
    kill_points = {
        "early in the global stage's upstream": lambda: shards(run, "00") >= 5,
        "inside the global pre-pass": lambda: shards(run, "03") >= 30,
        "early in the main pass": lambda: shards(run, "04") >= 20,
        "late in the main pass": lambda: shards(run, "04") >= 100,
        "while writing the final files": lambda: bool(list(tmp_path.glob(".out*.tmp-*"))),
    }
    killed = []
    for name, ready in kill_points.items():
        if kill_when(start(spec, run), ready):
            killed.append(name)
    assert len(killed) >= 4, f"only interrupted at {killed}"
    final = start(spec, run)
    assert final.wait(timeout=240) == 0, final.stderr.read().decode()
    # Temp files of killed runs are cleaned up, and the output equals the uninterrupted one.
    assert not list(tmp_path.glob(".out*.tmp-*"))
    assert rows_of(output) == rows_of(tmp_path / "reference.parquet")
    rejects = [tmp_path / "rejects" / f"{name}.rejects.parquet" for name in ("out", "reference")]
    assert [path.exists() and rows_of(path) for path in rejects] == [False, False]  # nothing dropped
