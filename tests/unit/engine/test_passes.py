"""The executor's passes: a streaming global stage inside a later global stage's scan, and
checkpoints replayed in one step, give exactly what stage-by-stage passes give."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dataflow_operators.text.exact_dedup import ExactDedupFilter
from dataflow_operators.text.minhash_dedup import MinhashDedupFilter

from dataflow_cli.engine import delta as delta_module
from dataflow_cli.engine import executor as executor_module
from dataflow_cli.engine.executor import Executor, Progress
from dataflow_cli.spec.build import load_spec
from tests.conftest import write_jsonl

pytestmark = pytest.mark.timeout(120)

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()

STAGES = """\
  - name: measure
    op: length_evaluator
  - name: long_enough
    op: range_filter
    inputs: {value: words}
    params: {min: 4}
  - name: exact
    op: exact_dedup_filter
    params: {columns: [text]}
  - name: score
    op: char_ratio_evaluator
    params: {signals: [special_char_ratio]}
  - name: near
    op: minhash_dedup_filter
    params: {threshold: 0.6, num_perm: 64}
  - name: clean
    op: range_filter
    inputs: {value: special_char_ratio}
    params: {max: 0.2}
"""


def corpus(n: int = 900, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    rows: list[dict] = []
    for i in range(n):
        roll = rng.random()
        if rows and roll < 0.15:
            text = rng.choice(rows)["text"]  # an exact copy
        elif rows and roll < 0.3:
            words = rng.choice(rows)["text"].split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)  # a near copy
            text = " ".join(words)
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30)))
            if rng.random() < 0.1:
                text += " %%%% #### !!!!"
        rows.append({"text": text, "n": i})
    return rows


def spec_file(tmp: Path, stages: str = STAGES) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    write_jsonl(tmp / "in.jsonl", corpus())
    spec = tmp / "spec.yaml"
    spec.write_text(
        "version: 1\nname: passes\ninput: {path: in.jsonl, batch_size: 100}\n"
        "output: {path: out.parquet}\nstages:\n" + stages
    )
    return spec


class Phases(Progress):
    def __init__(self) -> None:
        self.phases: list[str] = []

    def phase(self, text: str) -> None:
        self.phases.append(text)


def run(spec: Path, run_dir: Path, fresh: bool = True) -> tuple[dict, list[str]]:
    progress = Phases()
    stats = Executor(load_spec(spec), run_dir, fresh=fresh, progress=progress).run().to_dict()
    return stats, progress.phases


def results(spec: Path, stats: dict) -> tuple:
    out = pq.read_table(spec.parent / "out.parquet")
    rejects = pq.read_table(stats["rejects"])
    return out, rejects


def comparable(stats: dict) -> str:
    """stats.json without timings and paths."""

    def clean(value):
        if isinstance(value, dict):
            return {
                k: clean(v)
                for k, v in value.items()
                if k not in ("seconds", "rows_per_second", "run_dir", "output", "rejects", "spec")
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(stats), sort_keys=True)


@pytest.fixture
def reference(tmp_path, monkeypatch):
    """The run with every global stage in a scan of its own and every delta applied alone."""
    spec = spec_file(tmp_path / "reference")
    with monkeypatch.context() as patch:
        patch.setattr(ExactDedupFilter, "streaming", False)
        patch.setattr(executor_module, "composable", lambda stage, delta: False)
        stats, phases = run(spec, tmp_path / "reference" / "run")
    assert len(phases) == 2  # two scans before the main pass
    out, rejects = results(spec, stats)
    assert {"exact", "near", "long_enough", "clean"} <= set(rejects.column("_stage").to_pylist())
    return stats, out, rejects


def test_streaming_dedup_runs_inside_the_minhash_scan_with_identical_results(tmp_path, reference):
    spec = spec_file(tmp_path / "fused")
    stats, phases = run(spec, tmp_path / "fused" / "run")
    assert phases == ["global stage `near`: scanning"]  # exact dedup decided inside that scan
    out, rejects = results(spec, stats)
    assert out.equals(reference[1]) and rejects.equals(reference[2])
    assert comparable(stats) == comparable(reference[0])
    assert stats["stages"][2]["batches_computed"] == 9  # decided (and checkpointed) in this run


def test_a_resumed_run_replays_every_checkpoint_at_once_with_identical_results(tmp_path, reference):
    spec = spec_file(tmp_path / "resumed")
    run(spec, tmp_path / "resumed" / "run")
    calls = []
    original = delta_module.apply_delta
    executor_module.apply_delta = lambda *a: calls.append(a[0].name) or original(*a)
    try:
        stats, phases = run(spec, tmp_path / "resumed" / "run", fresh=False)
    finally:
        executor_module.apply_delta = original
    assert phases == [] and calls == []  # nothing scanned again, no delta applied one by one
    out, rejects = results(spec, stats)
    assert out.equals(reference[1]) and rejects.equals(reference[2])
    assert [s["batches_reused"] for s in stats["stages"]] == [9] * 6
    ref = json.loads(comparable(reference[0]))
    for s in ref["stages"]:
        s["batches_computed"], s["batches_reused"] = 0, 9
    assert json.loads(comparable(stats)) == ref


def test_a_scan_interrupted_inside_the_streaming_stage_recomputes_it(tmp_path, reference, monkeypatch):
    spec = spec_file(tmp_path / "crash")
    original = MinhashDedupFilter.process_all

    def dies_midway(self, batches):
        for i, _ in enumerate(batches):
            if i == 2:
                raise KeyboardInterrupt  # as a kill would, a few batches into the scan
        yield from original(self, [])

    with monkeypatch.context() as patch:
        patch.setattr(MinhashDedupFilter, "process_all", dies_midway)
        with pytest.raises(KeyboardInterrupt):
            run(spec, tmp_path / "crash" / "run")
    exact_dir = next((tmp_path / "crash" / "run" / "stages").glob("02-exact/*"))
    # Exact dedup decided the batches read so far (a few more than MinHash took: the stage
    # between them has batches in flight), not all of them, and is not marked complete.
    assert 3 <= len(list(exact_dir.glob("batch-*.parquet"))) < 9
    assert not (exact_dir / "complete.json").exists()
    stats, phases = run(spec, tmp_path / "crash" / "run", fresh=False)
    assert phases == ["global stage `near`: scanning"]
    out, rejects = results(spec, stats)
    assert out.equals(reference[1]) and rejects.equals(reference[2])
    assert (exact_dir / "complete.json").exists()


def test_an_operator_that_declares_streaming_but_reads_ahead_is_an_error(tmp_path, monkeypatch):
    stages = """\
  - name: near
    op: minhash_dedup_filter
    params: {threshold: 0.6, num_perm: 64}
  - name: exact
    op: exact_dedup_filter
    params: {columns: [text]}
"""
    monkeypatch.setattr(MinhashDedupFilter, "streaming", True)  # it is not: it decides at the end
    spec = spec_file(tmp_path / "bad", stages)
    with pytest.raises(RuntimeError, match="declares `streaming` but read past a batch"):
        run(spec, tmp_path / "bad" / "run")
