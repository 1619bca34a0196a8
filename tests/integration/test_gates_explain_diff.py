"""Column profiles, quality gates, `dataflow explain` and `dataflow diff` on real runs through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import read_jsonl, write_jsonl

QUESTIONS = [
    "What is 2+2?", "Name a colour.", "bad question here", "Why is the sky blue?",
    "Define entropy briefly.", "bad input", "Capital of France?", "Largest planet?",
    "Speed of light?", "Who wrote Hamlet?",
]  # fmt: skip

# Fan-out generator (2 answers per question) -> LLM judge (a score, parse failures rejected with
# the raw answer) -> threshold filter. Fake backends answer deterministically.
LLM_SPEC = """\
version: 1
name: llm
input: {path: data.jsonl, batch_size: 4}
output: {path: out/o.jsonl}
backends:
  gen: {provider: fake, model: gen-model, reply_template: "Answer: {{ prompt }}"}
  judge:
    provider: fake
    model: judge-model
    reply_template: "{% if 'bad' in prompt %}no idea{% else %}{{ (prompt|length) % 10 }}{% endif %}"
stages:
  - name: answer
    op: prompted_generator
    backend: gen
    params: {template: "Q: {{ question }}", n: 2}
    outputs: {text: answer}
  - name: judge
    op: prompted_evaluator
    backend: judge
    params: {template: "Rate: {{ answer }} {{ sample }}"}
    expect:
      - {check: mean, column: score, min: 1}
  - name: keep_good
    op: range_filter
    inputs: {value: score}
    params: {min: MIN}
    expect:
      - {check: pass_rate, min: 0.2, on_fail: warn}
"""


@pytest.fixture
def llm_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "cache"))
    write_jsonl(tmp_path / "data.jsonl", [{"question": q} for q in QUESTIONS])
    (tmp_path / "spec.yaml").write_text(LLM_SPEC.replace("MIN", "4"))
    return tmp_path


def _stage(stats, name):
    return next(s for s in stats["stages"] if s["name"] == name)


def _stats(run_dir: Path) -> dict:
    return json.loads((run_dir / "stats.json").read_text())


# Column profiles --------------------------------------------------------------------------------
def test_profiles_describe_what_left_each_stage_and_survive_resume(llm_project, cli):
    cli("run", "spec.yaml", "--run-dir", "r1", "-q")
    stats = _stats(Path("r1"))
    rejected = read_jsonl(Path("out/rejects/o.rejects.jsonl"))
    kept = read_jsonl(Path("out/o.jsonl"))
    judged = [r for r in rejected if r["_stage"] == "keep_good"] + kept  # rows that left `judge`
    scores = np.array([r["score"] for r in judged])

    judge = _stage(stats, "judge")["columns"]
    assert set(judge) == {"score", "label"}
    score = judge["score"]
    assert score["type"] == "numeric" and score["count"] == len(judged) == 16 and score["nulls"] == 0
    assert score["mean"] == pytest.approx(scores.mean())
    assert (score["min"], score["max"]) == (scores.min(), scores.max())
    assert score["quantiles"]["p50"] == pytest.approx(np.quantile(scores, 0.5))
    assert score["quantiles"]["p95"] == pytest.approx(np.quantile(scores, 0.95))
    assert len(score["histogram"]["edges"]) == 21 and sum(score["histogram"]["counts"]) == 16
    counts, _ = np.histogram(scores, bins=20, range=(scores.min(), scores.max()))
    assert score["histogram"]["counts"] == counts.tolist()
    label = judge["label"]
    assert label["type"] == "string"
    assert label["mean_length"] == pytest.approx(np.mean([len(r["label"]) for r in judged]))
    answer = _stage(stats, "answer")["columns"]
    assert answer["answer"]["count"] == 20 and answer["sample"]["mean"] == 0.5
    assert _stage(stats, "keep_good")["columns"] == {}  # a filter that writes no column

    # A resumed run replays every stage from checkpoints and reports the same profiles.
    cli("run", "spec.yaml", "--run-dir", "r1", "-q")
    again = _stats(Path("r1"))
    assert all(s["batches_computed"] == 0 for s in again["stages"])
    assert [s["columns"] for s in again["stages"]] == [s["columns"] for s in stats["stages"]]


def test_profiles_of_bool_columns_and_nulls(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "d.jsonl", [{"text": t} for t in ["abc", "", "hello world", None, "x"]])
    (tmp_path / "s.yaml").write_text(
        "version: 1\nname: b\ninput: {path: d.jsonl}\noutput: {path: o.jsonl}\nstages:\n"
        "  - name: has_digit\n    op: regex_filter\n    inputs: {text: text}\n"
        "    params: {pattern: 'o', mode: keep_matching}\n"
        "  - name: measure\n    op: length_evaluator\n    inputs: {text: text}\n"
    )
    stats = cli.json("run", "s.yaml", "--run-dir", "r")
    chars = _stage(stats, "measure")["columns"]["chars"]
    assert chars["count"] == stats["rows_written"] == 1 and chars["mean"] == 11.0
    assert _stage(_stats(Path("r")), "measure")["columns"] == _stage(stats, "measure")["columns"]


# Gates ------------------------------------------------------------------------------------------
def test_passing_and_warning_gates_are_recorded(llm_project, cli):
    result = cli("run", "spec.yaml", "--run-dir", "r1", "-q")
    gates = _stats(Path("r1"))["gates"]
    assert [(g["stage"], g["check"], g["passed"]) for g in gates] == [
        ("judge", "mean", True),
        ("keep_good", "pass_rate", True),
    ]
    assert gates[1]["observed"] == pytest.approx(10 / 16) and gates[1]["expected"] == ">= 0.2"
    assert "warning" not in result.stderr

    # A warn gate that fails: the run completes, and says so on stderr even with -q.
    spec = Path("spec.yaml")
    spec.write_text(spec.read_text().replace("min: 0.2, on_fail: warn", "min: 0.9, on_fail: warn"))
    result = cli("run", "spec.yaml", "--run-dir", "r1", "-q")
    gate = _stats(Path("r1"))["gates"][1]
    assert gate["passed"] is False and gate["on_fail"] == "warn"
    assert "gate FAILED (warn): stage `keep_good`: pass_rate = 0.625, expected >= 0.9" in result.stderr
    assert Path("out/o.jsonl").exists()


def test_failing_gate_stops_before_any_output_and_keeps_checkpoints(llm_project, cli):
    spec = Path("spec.yaml")
    spec.write_text(
        spec.read_text().replace(
            "{check: mean, column: score, min: 1}", "{check: mean, column: score, min: 6}"
        )
    )
    result = cli("run", "spec.yaml", "--run-dir", "r1", expect=1)
    assert "quality gate failed" in result.stderr
    assert "stage `judge`: mean of `score` = 4.5, expected >= 6 (over 16 rows)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not Path("out").exists()  # neither output nor rejects were written
    stats = _stats(Path("r1"))
    assert stats["status"] == "failed"
    failed = [g for g in stats["gates"] if not g["passed"]]
    assert failed == [
        {
            "stage": "judge", "check": "mean", "observed": 4.5, "expected": ">= 6", "passed": False,
            "on_fail": "fail", "message": "stage `judge`: mean of `score` = 4.5, expected >= 6 (over 16 rows)",
            "rows": 16, "final": True, "column": "score",
        }
    ]  # fmt: skip
    assert json.loads(Path("r1/manifest.json").read_text())["status"] == "failed"
    assert "expected &gt;= 6" in Path("r1/report.html").read_text()  # the report shows why it failed
    # Relaxing the gate reruns nothing: the checkpoints were kept.
    spec.write_text(spec.read_text().replace("min: 6}", "min: 6, on_fail: warn}"))
    stats = cli.json("run", "spec.yaml", "--run-dir", "r1", "-q")
    assert all(s["batches_computed"] == 0 for s in stats["stages"])
    assert stats["rows_written"] == len(read_jsonl(Path("out/o.jsonl"))) == 10


def test_gate_fails_early_once_certain(tmp_path, cli, monkeypatch):
    """A Parquet input knows its row count: when even all rows still to come could not lift the
    keep ratio back over its bound, the run stops there instead of finishing."""
    monkeypatch.chdir(tmp_path)
    values = list(range(1000))  # the filter keeps 100..199 only: batches 2+ keep nothing
    pq.write_table(pa.table({"x": values}), tmp_path / "d.parquet")
    (tmp_path / "s.yaml").write_text(
        "version: 1\nname: e\ninput: {path: d.parquet, batch_size: 100}\noutput: {path: o.jsonl}\nstages:\n"
        "  - name: band\n    op: range_filter\n    inputs: {value: x}\n    params: {min: 100, max: 199}\n"
        "    expect:\n      - {check: keep_ratio, min: 0.5, min_rows: 50}\n"
    )
    result = cli("run", "s.yaml", "--run-dir", "r", "--workers", "1", expect=1)
    assert "already certain, stopped early" in result.stderr
    stats = _stats(Path("r"))
    gate = stats["gates"][0]
    assert gate["final"] is False and gate["passed"] is False
    # Stopped as soon as (kept + rows still to come) / all rows < 0.5: after 6 batches
    # (100 + 400) / 1000 = 0.5 was still reachable, after 7 (100 + 300) / 1000 was not.
    assert stats["rows_read"] == 700 and gate["rows"] == 700
    assert gate["observed"] == pytest.approx(100 / 700)
    assert not Path("o.jsonl").exists()


def test_invalid_gates_are_reported_with_locations(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "d.jsonl", [{"text": "abc"}])
    (tmp_path / "s.yaml").write_text(
        "version: 1\nname: v\ninput: {path: d.jsonl}\noutput: {path: o.jsonl}\nstages:\n"
        "  - name: measure\n    op: length_evaluator\n    inputs: {text: text}\n    expect:\n"
        "      - {check: mean, column: char, min: 3, max: 2}\n"
        "      - {check: quantile, column: words, min: 1}\n"
        "      - {check: null_rate, column: chars, max: 1.5}\n"
        "      - {check: pass_rate, column: chars, min: 0.5}\n"
        "      - {check: keep_ratio}\n"
        "      - {check: mean, column: text, min: 1}\n"
        "      - {check: median, column: chars}\n"
    )
    result = cli("validate", "s.yaml", expect=2)
    lines = [line.removeprefix("error: ") for line in result.stderr.splitlines()]
    assert lines[:8] == [
        "s.yaml:10:31: stages[0].expect[0].column: stage `measure` does not read or write a column "
        "`char`; did you mean `chars`? (its columns: `chars`, `words`, `lines`, `text`)",
        "s.yaml:10:42: stages[0].expect[0].min: `min` (3) is greater than `max` (2)",
        "s.yaml:11:9: stages[0].expect[1]: `quantile` needs `q`, the quantile in [0, 1] (0.5 = median)",
        "s.yaml:12:48: stages[0].expect[2].max: `null_rate` is a share of rows: `max` must be in [0, 1]",
        "s.yaml:13:36: stages[0].expect[3].column: `pass_rate` needs a bool column; `chars` is int64",
        "s.yaml:14:9: stages[0].expect[4]: `keep_ratio` needs a bound: `min`, `max` or both",
        "s.yaml:15:31: stages[0].expect[5].column: `mean` needs a numeric column; `text` is string",
        "s.yaml:16:17: stages[0].expect[6].check: 'median' is not one of ['keep_ratio', 'null_rate', "
        "'mean', 'quantile', 'pass_rate']",
    ]


# Explain ----------------------------------------------------------------------------------------
def test_explain_kept_dropped_and_fanout_rows(llm_project, cli):
    cli("run", "spec.yaml", "--run-dir", "r1", "-q")
    rejected = {r["_id"]: r for r in read_jsonl(Path("out/rejects/o.rejects.jsonl"))}

    # A child dropped by the LLM judge: its raw answer, the model and prompt hash of each LLM stage.
    bad = cli.json("explain", "r1", "2.1")
    assert bad["fate"] == "dropped" and bad["parent_id"] == "2"
    assert bad["dropped_at"] == {"stage": "judge", "reason": rejected["2.1"]["_reason"]}
    answer, judge, keep = bad["stages"]
    assert (
        answer["decision"] == "fanned_out" and answer["children"] == ["2.0", "2.1"] and answer["row"] == "2.1"
    )
    assert answer["values"] == {"answer": "Answer: Q: bad question here", "sample": 1}
    assert answer["llm"]["model"] == "gen-model" and len(answer["llm"]["prompt_sha256"]) == 64
    assert judge["decision"] == "dropped" and judge["raw_output"] == "no idea"
    assert judge["llm"]["model"] == "judge-model"
    assert keep["decision"] == "not_reached"

    # A child dropped by the filter carries the judge's score.
    low = next(i for i, r in rejected.items() if r["_stage"] == "keep_good")
    journey = cli.json("explain", "r1", low)
    assert journey["stages"][1]["values"]["score"] == rejected[low]["score"] < 4
    assert journey["stages"][2]["decision"] == "dropped"
    assert journey["stages"][2]["reason"] == rejected[low]["_reason"]

    # A kept child: every stage kept it, and its final row is the output's.
    kept = cli.json("explain", "r1", "3.0")
    assert kept["fate"] == "kept" and [s["decision"] for s in kept["stages"]] == [
        "fanned_out",
        "kept",
        "kept",
    ]
    assert kept["row"]["answer"] == "Answer: Q: Why is the sky blue?" and kept["row"]["score"] >= 4
    assert kept["row"] in [
        {**r, "_id": kept["row"]["_id"], "_parent_id": "3"} for r in read_jsonl(Path("out/o.jsonl"))
    ]

    # The parent: fanned out, the later stages saw its children.
    parent = cli.json("explain", "r1", "2")
    assert parent["fate"] == "fanned_out" and [s["decision"] for s in parent["stages"]] == [
        "fanned_out", "in_children", "in_children",
    ]  # fmt: skip

    people = cli("explain", "r1", "2.1")
    assert "dropped at `judge`" in people.stderr and "raw answer: no idea" in people.stderr
    assert people.stdout == ""


def test_explain_refine_rewrites_and_user_errors(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "d.jsonl", [{"text": "  Hello   World "}, {"text": "ok"}])
    (tmp_path / "s.yaml").write_text(
        "version: 1\nname: x\ninput: {path: d.jsonl}\noutput: {path: o.jsonl}\nstages:\n"
        "  - name: clean\n    op: text_normalize_refiner\n    inputs: {text: text}\n"
    )
    cli("run", "s.yaml", "--run-dir", "r", "-q")
    step = cli.json("explain", "r", "0")["stages"][0]
    assert step == {
        "stage": "clean", "op": "text_normalize_refiner", "kind": "refine", "decision": "rewritten",
        "before": {"text": "  Hello   World "}, "values": {"text": "Hello World"},
    }  # fmt: skip
    assert cli.json("explain", "r", "1")["stages"][0]["decision"] == "unchanged"

    missing = cli("explain", "r", "7", expect=2)
    assert "error: no row `7` in the run at `r`" in missing.stderr and "Traceback" not in missing.stderr
    assert "is not a run directory" in cli("explain", "nowhere", "0", expect=2).stderr
    # The input changed since the run: rows can no longer be replayed from it.
    write_jsonl(tmp_path / "d.jsonl", [{"text": "changed"}])
    assert "input changed since the run" in cli("explain", "r", "0", expect=1).stderr


# Diff -------------------------------------------------------------------------------------------
def test_diff_of_two_runs(llm_project, cli):
    cli("run", "spec.yaml", "--run-dir", "a", "-q")
    Path("spec.yaml").write_text(LLM_SPEC.replace("MIN", "6"))
    cli("run", "spec.yaml", "--run-dir", "b", "-q")
    a, b = _stats(Path("a")), _stats(Path("b"))

    result = cli.json("diff", "a", "b")
    keep = next(s for s in result["stages"] if s["stage"] == "keep_good")
    ka, kb = _stage(a, "keep_good"), _stage(b, "keep_good")
    assert keep["rows_out"] == {
        "a": ka["rows_out"],
        "b": kb["rows_out"],
        "delta": kb["rows_out"] - ka["rows_out"],
    }
    assert keep["keep_rate"]["a"] == pytest.approx(ka["rows_out"] / ka["rows_in"])
    assert keep["keep_rate"]["b"] == pytest.approx(kb["rows_out"] / kb["rows_in"])
    assert {r["reason"]: (r["a"], r["b"]) for r in keep["drop_reasons"]} == {
        "`score` < 4": (ka["dropped_by_reason"]["`score` < 4"], 0),
        "`score` < 6": (0, kb["dropped_by_reason"]["`score` < 6"]),
    }
    judge = next(s for s in result["stages"] if s["stage"] == "judge")
    score = next(c for c in judge["columns"] if c["column"] == "score")
    assert score["mean"] == {"a": 4.5, "b": 4.5, "delta": 0.0}  # same judge, same scores
    assert judge["llm"]["prompt_tokens"]["a"] == _stage(a, "judge")["llm"]["prompt_tokens"]
    for key in ("requests", "cache_hits", "calls", "prompt_tokens", "completion_tokens"):
        total_a = sum((s["llm"] or {}).get(key, 0) for s in a["stages"])
        total_b = sum((s["llm"] or {}).get(key, 0) for s in b["stages"])
        assert result["llm"][key] == {"a": total_a, "b": total_b, "delta": total_b - total_a}
    assert result["llm"]["calls"]["b"] == 0 and result["llm"]["cache_hits"]["b"] == 40  # b: from the cache
    # Rows whose fate differs: newly dropped (4 <= score < 6), and dropped for another reason.
    rows = result["rows"]
    assert rows["dropped_in_b_only"] == kb["rows_dropped"] - ka["rows_dropped"] == 4
    assert rows["dropped_differently"] == ka["rows_dropped"] == 6 and rows["dropped_in_a_only"] == 0
    assert rows["differ"] == len(rows["sample"]) == 10
    assert {(r["a"], r["b"]) for r in rows["sample"]} == {
        ("not dropped", "dropped at keep_good: `score` < 6"),
        ("dropped at keep_good: `score` < 4", "dropped at keep_good: `score` < 6"),
    }
    assert sum(r["a"] == "not dropped" for r in rows["sample"]) == 4

    people = cli("diff", "a", "b")
    assert "keep_good" in people.stderr and "`score` < 6" in people.stderr and people.stdout == ""
    assert "is not a run directory" in cli("diff", "a", "zzz", expect=2).stderr
