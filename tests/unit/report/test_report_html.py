"""The run report: its model equals stats.json, hostile row text cannot become markup, the page
loads nothing from anywhere, and `dataflow report` finds, renders and prints it."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from dataflow_cli.report.finish import write_report, write_run_artifacts
from dataflow_cli.report.html import render_html
from dataflow_cli.report.model import CELL_CHARS, build_report
from tests.conftest import write_jsonl

HOSTILE = [
    "<script>document.title='pwned'</script>",
    '"><img src=x onerror="alert(1)">',
    "</style></td></table><svg onload=alert(1)><a href='https://evil.example/x'>click</a>",
    "<!-- --><base href='https://evil.example/'>",
]


def _profile(values: list[float]) -> dict:
    lo, hi = min(values), max(values)
    edges = [lo + (hi - lo) * i / 20 for i in range(21)]
    counts = [0] * 20
    for v in values:
        counts[min(int((v - lo) / (hi - lo) * 20), 19)] += 1
    return {
        "type": "numeric", "count": len(values), "nulls": 0, "mean": sum(values) / len(values),
        "min": lo, "max": hi, "quantiles": {"p05": lo, "p25": 3.0, "p50": 5.0, "p75": 7.0, "p95": hi},
        "histogram": {"edges": edges, "counts": counts},
    }  # fmt: skip


def make_run(tmp_path: Path, **overrides) -> Path:
    """A run directory as the executor leaves it: stats.json, resolved spec, output, rejects."""
    out = tmp_path / "out"
    kept = [
        {"question": HOSTILE[i % 4], "answer": f"answer {i} " + HOSTILE[(i + 1) % 4], "score": 6 + i}
        for i in range(3)
    ]
    rejected = [
        {"question": "q" * 10_000, "answer": HOSTILE[0], "score": 1, "_stage": "keep_good",
         "_reason": "`score` < 5 " + HOSTILE[1]},
        {"question": "short", "answer": HOSTILE[2], "score": None, "_stage": "judge",
         "_reason": "llm error: " + HOSTILE[3], "_raw": HOSTILE[0]},
    ]  # fmt: skip
    write_jsonl(out / "data.jsonl", kept)
    write_jsonl(out / "rejects" / "data.rejects.jsonl", rejected)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stats = {
        "spec": "pipeline.yaml", "name": "hostile", "output": str(out / "data.jsonl"),
        "rejects": str(out / "rejects" / "data.rejects.jsonl"), "run_dir": str(run_dir), "status": "complete",
        "rows_read": 5, "rows_written": 3, "rows_rejected": 2, "rows_added_by_fanout": 0, "batches": 1,
        "seconds": 1.5, "rows_per_second": 3.3,
        "stages": [
            {"name": "judge", "op": "prompted_evaluator", "kind": "evaluate", "rows_in": 5, "rows_out": 4,
             "rows_dropped": 1, "dropped_by_reason": {"llm error: " + HOSTILE[3]: 1}, "seconds": 1.25,
             "batches_computed": 1, "batches_reused": 0, "limits": None,
             "llm": {"requests": 5, "cache_hits": 2, "calls": 3, "retries": 1, "errors": 1, "prompt_tokens": 1234,
                     "completion_tokens": 56, "cost": 0.0123, "latency_p50": 0.8},
             "columns": {"score": _profile([1, 2, 3, 5, 5, 6, 7, 9, 10]),
                         "passed": {"type": "bool", "count": 4, "nulls": 1, "true": 2},
                         "reason": {"type": "string", "count": 4, "nulls": 0, "mean_length": 30.0}}},
            {"name": "keep_good", "op": "range_filter", "kind": "filter", "rows_in": 4, "rows_out": 3,
             "rows_dropped": 1, "dropped_by_reason": {"`score` < 5 " + HOSTILE[1]: 1}, "seconds": 0.01,
             "batches_computed": 0, "batches_reused": 1, "llm": None, "limits": None, "columns": {}},
        ],
        "gates": [
            {"stage": "judge", "check": "mean", "column": "score", "observed": 6.1, "expected": ">= 5",
             "passed": True, "on_fail": "warn", "message": "ok"},
            {"stage": "keep_good", "check": "keep_ratio", "observed": 0.75, "expected": ">= 0.9",
             "passed": False, "on_fail": "warn", "message": HOSTILE[0]},
        ],
        "stopped_by": None,
    }  # fmt: skip
    stats.update(overrides)
    (run_dir / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    spec = {"version": 1, "name": "hostile", "description": "Judge <b>answers</b>\n  and keep good ones."}
    (run_dir / "spec.resolved.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return run_dir


class Page(HTMLParser):
    """Every tag, attribute and text node of a page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def funnel_values(page: str) -> dict[str, list[int]]:
    """`data-value`s of each funnel row: rows in, rows out, dropped."""
    section = re.search(r'<section id="funnel">(.*?)</section>', page, re.S).group(1)
    rows = re.findall(r'<tr data-stage="([^"]*)">(.*?)</tr>', section, re.S)
    return {name: [int(v) for v in re.findall(r'data-value="([^"]*)"', body)] for name, body in rows}


def test_report_numbers_equal_stats_json(tmp_path):
    run_dir = make_run(tmp_path)
    stats = json.loads((run_dir / "stats.json").read_text())
    model = build_report(run_dir)
    assert [(r["stage"], r["rows_in"], r["rows_out"], r["rows_dropped"]) for r in model["funnel"]] == [
        (s["name"], s["rows_in"], s["rows_out"], s["rows_dropped"]) for s in stats["stages"]
    ]
    assert {k: model["run"][k] for k in ("rows_read", "rows_written", "rows_rejected")} == {
        k: stats[k] for k in ("rows_read", "rows_written", "rows_rejected")
    }
    page = render_html(model)
    assert funnel_values(page) == {
        s["name"]: [s["rows_in"], s["rows_out"], s["rows_dropped"]] for s in stats["stages"]
    }
    llm = model["llm"][0]
    assert (llm["requests"], llm["cache_hits"], llm["prompt_tokens"], llm["cost"]) == (5, 2, 1234, 0.0123)
    assert llm["latency"] == {"latency_p50": 0.8} and llm["seconds_per_call"] == round(1.25 / 3, 4)
    assert re.search(r'data-value="1234">1,234<', page) and "$0.0123" in page
    assert [d["reasons"] for d in model["drops"]] == [
        [{"reason": r, "count": c} for r, c in s["dropped_by_reason"].items()] for s in stats["stages"]
    ]
    assert model["slowest"][0]["stage"] == "judge" and model["gates"] == stats["gates"]
    assert model["run"]["description"] == "Judge <b>answers</b> and keep good ones."


def test_hostile_row_text_stays_text(tmp_path):
    page = render_html(build_report(make_run(tmp_path)))
    parsed = Page(page)
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "img", "a", "base", "iframe", "object", "embed", "link", "form", "input"}
    assert not [(t, a) for t, attrs in parsed.tags for a in attrs if a.startswith("on")]
    assert {tag for tag, _ in parsed.tags if tag == "svg"} and all(
        "onload" not in attrs for tag, attrs in parsed.tags if tag == "svg"
    )
    text = "".join(parsed.text)
    for hostile in HOSTILE:  # shown as the text it is, in the samples, reasons and gates
        assert hostile in text
    assert "</style></td>" not in page and "&lt;script&gt;" in page


def test_page_is_self_contained_and_mobile_ready(tmp_path):
    page = render_html(build_report(make_run(tmp_path)))
    parsed = Page(page)
    assert not [attrs for _, attrs in parsed.tags if {"src", "href", "srcset", "action"} & set(attrs)]
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    metas = [attrs for tag, attrs in parsed.tags if tag == "meta"]
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    csp = next(m["content"] for m in metas if m.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "@media (max-width:600px)" in style and ".scroll{overflow-x:auto" in style
    # Every table sits in a sideways-scrolling wrapper, so a wide table never widens the page.
    assert page.count("<table") == page.count('<div class="scroll"><table')


def test_score_histograms_and_pass_rates_come_from_the_profiles(tmp_path):
    model = build_report(make_run(tmp_path))
    assert [(p["stage"], p["column"]) for p in model["scores"]] == [("judge", "score")]
    assert model["pass_rates"] == [
        {"stage": "judge", "column": "passed", "true": 2, "known": 3, "nulls": 1, "rate": 0.6667}
    ]
    page = render_html(model)
    card = re.search(r'<div class="card" data-column="score">(.*?)</div>', page, re.S).group(1)
    rects = re.findall(r'<rect [^>]*height="([0-9.]+)"', card)
    counts = model["scores"][0]["histogram"]["counts"]
    assert len(rects) == 20
    tallest = max(range(20), key=lambda i: counts[i])
    assert float(rects[tallest]) == max(float(h) for h in rects) > 0
    assert [float(h) == 0 for h in rects] == [c == 0 for c in counts]
    assert "66.7%" in page


def test_old_stats_without_profiles_or_gates_say_so(tmp_path):
    run_dir = make_run(tmp_path)
    stats = json.loads((run_dir / "stats.json").read_text())
    for stage in stats["stages"]:
        del stage["columns"]
    del stats["gates"], stats["stopped_by"]
    (run_dir / "stats.json").write_text(json.dumps(stats))
    model = build_report(run_dir)
    assert model["scores"] == [] and "no column profiles" in model["profiles_note"]
    assert "no gate results" in model["gates_note"]
    page = render_html(model)
    assert "no column profiles" in page and "no gate results" in page


def test_budget_stop_is_shown(tmp_path):
    stop = {"cap": "max_usd", "limit": 5.0, "spent": 5.01, "message": "raise --max-usd to continue"}
    budget = {"limits": {"max_usd": 5.0}, "spent": {"usd": 5.01, "tokens": 900, "requests": 12},
              "this_run": {"usd": 5.01, "tokens": 900, "requests": 12}, "left": {"max_usd": 0}}  # fmt: skip
    model = build_report(make_run(tmp_path, stopped_by=stop, status="stopped", budget=budget))
    assert model["stopped_by"] == stop and model["budget"] == budget
    # A stopped run wrote no output: files at its output path are an earlier run's, not shown.
    assert model["samples"]["kept"] == [] and "did not complete" in model["samples"]["notes"][0]
    page = render_html(model)
    assert 'id="stopped-by"' in page and "max_usd" in page and "5.01" in page
    budget_rows = re.search(r'<section id="budget">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", budget_rows) == ["max_usd", "5.0000", "5.0100", "0"]
    assert "not written (the run is stopped)" in page


def test_samples_are_cut_and_cover_every_stage(tmp_path):
    run_dir = make_run(tmp_path)
    stats = json.loads((run_dir / "stats.json").read_text())
    many = [{"text": f"row {i}", "_stage": "judge", "_reason": "llm error"} for i in range(300)]
    many.append({"text": "late", "_stage": "keep_good", "_reason": "too low"})
    write_jsonl(Path(stats["rejects"]), many)
    model = build_report(run_dir)
    assert {r["stage"] for r in model["samples"]["rejected"]} == {"judge", "keep_good"}
    assert len(model["samples"]["kept"]) == 3
    model = build_report(make_run(tmp_path / "again"))
    cells = [c for r in model["samples"]["rejected"] for c in r["cells"].values()]
    assert max(len(c) for c in cells) == CELL_CHARS and any(c.endswith("…") for c in cells)
    assert model["samples"]["rejected"][1]["raw"] == HOSTILE[0]


def test_missing_output_file_is_a_note_not_a_failure(tmp_path):
    run_dir = make_run(tmp_path)
    (tmp_path / "out" / "data.jsonl").unlink()
    model = build_report(run_dir)
    assert model["samples"]["kept"] == [] and "is gone" in model["samples"]["notes"][0]


def test_report_command_json_and_html(cli, tmp_path):
    run_dir = make_run(tmp_path)
    printed = cli.json("report", run_dir)
    expected = build_report(run_dir)
    printed.pop("generated_at"), expected.pop("generated_at")
    assert printed == expected
    assert not (run_dir / "report.html").exists()  # --json alone prints, writes nothing
    target = tmp_path / "r.html"
    result = cli("report", run_dir, "-o", target)
    assert result.stdout == "" and str(target) in result.stderr
    assert funnel_values(target.read_text())["keep_good"] == [4, 3, 1]
    cli("report", run_dir)
    assert (run_dir / "report.html").is_file()


def test_report_command_defaults_to_the_latest_run(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("report", expect=2)
    assert "no finished run under" in result.stderr and "Traceback" not in result.stderr
    runs = tmp_path / ".dataflow" / "runs"
    runs.mkdir(parents=True)
    old = make_run(tmp_path / "a").rename(runs / "old")
    make_run(tmp_path / "b", name="newest").rename(runs / "new")
    past = time.time() - 100
    os.utime(old / "stats.json", (past, past))
    assert cli.json("report")["run"]["name"] == "newest"
    result = cli("report", tmp_path / "nowhere", expect=2)
    assert "does not exist" in result.stderr


def test_a_report_that_cannot_be_written_does_not_fail_the_run(tmp_path, caplog):
    run_dir = make_run(tmp_path)
    stats = json.loads((run_dir / "stats.json").read_text())
    (run_dir / "report.html").mkdir()  # the report's place is taken: writing it fails
    with caplog.at_level(logging.WARNING, logger="dataflow_cli"):
        written = write_run_artifacts(_NoOutputSpec(tmp_path), run_dir, stats)
    assert written == []
    assert "could not write the run report" in caplog.text


class _NoOutputSpec:
    def __init__(self, tmp_path: Path):
        self.output_path = tmp_path / "missing.jsonl"


def test_write_report_default_target(tmp_path):
    run_dir = make_run(tmp_path)
    path = write_report(run_dir)
    assert path == run_dir / "report.html" and path.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("bad", ["", "[]", '{"stages": 3}'])
def test_a_broken_stats_file_is_a_clear_error(cli, tmp_path, bad):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "stats.json").write_text(bad)
    result = cli("report", run_dir, expect=1)
    assert "stats" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("suffix", ["parquet", "csv", "json", "jsonl"])
def test_samples_from_every_output_format(tmp_path, suffix):
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    rows = [{"text": f"row {i} {HOSTILE[i % 4]}", "n": i} for i in range(50)]
    output = tmp_path / "elsewhere" / f"sample.{suffix}"
    output.parent.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    if suffix == "parquet":
        pq.write_table(table, output, row_group_size=7)
    elif suffix == "csv":
        pa_csv.write_csv(table, output)
    elif suffix == "json":
        output.write_text(json.dumps(rows))
    else:
        write_jsonl(output, rows)
    model = build_report(make_run(tmp_path, output=str(output)))
    kept = model["samples"]["kept"]
    assert [r["cells"]["text"] for r in kept] == [r["text"] for r in rows[:5]]
    assert model["samples"]["notes"] == []
