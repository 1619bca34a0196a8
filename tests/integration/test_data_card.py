"""The data card beside a run's output: it exists, its numbers are those of stats.json, its
provenance identifies inputs, operators, models and prompts, and its Markdown is a Hugging Face
dataset README (YAML metadata first)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import yaml

from dataflow_cli.report.card import _code, render_markdown, wilson
from tests.conftest import REPO, read_jsonl, write_jsonl


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def copy(name: str):
        target = tmp_path / name
        shutil.copytree(REPO / "pipelines" / name, target, ignore=shutil.ignore_patterns("out"))
        return target / "pipeline.yaml"

    return copy


def front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def test_card_of_a_rule_based_run(cli, pipeline):
    spec = pipeline("text_clean")
    stats = cli.json("run", spec, "--run-dir", spec.parent / "run")
    out = spec.parent / "out"
    md, card_json = out / "clean.card.md", out / "clean.card.json"
    assert md.is_file() and card_json.is_file()
    card = json.loads(card_json.read_text())
    measured = card["statistics"]
    assert {k: measured[k] for k in ("rows_read", "rows_written", "rows_rejected")} == {
        k: stats[k] for k in ("rows_read", "rows_written", "rows_rejected")
    }
    assert [(s["name"], s["rows_in"], s["rows_out"], s["dropped_by_reason"]) for s in measured["stages"]] == [
        (s["name"], s["rows_in"], s["rows_out"], s["dropped_by_reason"]) for s in stats["stages"]
    ]
    rows = read_jsonl(out / "clean.jsonl")
    assert card["dataset"]["rows"] == len(rows) == stats["rows_written"]
    assert [c["name"] for c in card["dataset"]["columns"]] == list(rows[0])
    assert card["dataset"]["sha256"] == hashlib.sha256((out / "clean.jsonl").read_bytes()).hexdigest()
    (source,) = card["provenance"]["inputs"]
    data = spec.parent / "data" / "sample.jsonl"
    assert source == {"path": "data/sample.jsonl", "bytes": data.stat().st_size,
                      "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}  # fmt: skip
    manifest = json.loads((spec.parent / "run" / "manifest.json").read_text())
    assert [s["fingerprint"] for s in card["provenance"]["stages"]] == [
        s["fingerprint"] for s in manifest["stages"]
    ]
    assert [s["op"] for s in card["provenance"]["stages"]] == [s["op"] for s in stats["stages"]]
    assert card["provenance"]["stages"][2]["params"] == {"min": 5.0, "max": 400.0, "inclusive": True}
    limits = " ".join(card["limitations"])
    assert "personal data (PII)" in limits and "deduplication" not in limits  # text_clean dedups
    assert "Model-made" not in limits and "Small dataset (31 rows)" in limits

    meta, body = front_matter(md.read_text())
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "clean.jsonl"}]}
    ]
    assert meta["size_categories"] == ["n<1K"] and "task_categories" not in meta and "license" not in meta
    assert (md.parent / meta["configs"][0]["data_files"][0]["path"]).is_file()
    assert f"Read {stats['rows_read']:,} rows" in body and f"wrote {stats['rows_written']:,}" in body
    assert "| length_bounds | range_filter | 40 | 37 | 3 | 92.5% (80.1–97.4%) |" in body
    bounds = next(s for s in measured["stages"] if s["name"] == "length_bounds")
    assert bounds["keep_ratio"] == 0.925 and bounds["keep_ratio_ci95"] == list(wilson(37, 40))
    # No user row text in the card: only names, counts and hashes.
    assert rows[0]["response"] not in md.read_text()


def test_card_names_models_prompts_seeds_and_tokens(cli, pipeline):
    spec = pipeline("demo")
    stats = cli.json("run", spec, "--set", "backends.default.provider=fake", "--run-dir", spec.parent / "run")
    card = json.loads((spec.parent / "out" / "demo.card.json").read_text())
    answer = next(s for s in card["provenance"]["stages"] if s["name"] == "answer")
    assert answer["backend"] == {"name": "default", "provider": "fake", "model": "fake"}
    assert answer["prompt_sha256"] == hashlib.sha256(b"{{ instruction }}").hexdigest()
    assert answer["system_prompt_sha256"] == hashlib.sha256(answer["params"]["system"].encode()).hexdigest()
    assert answer["seed"] == 7
    # The same hash `dataflow explain` shows (recorded in the manifest by the executor).
    manifest = json.loads((spec.parent / "run" / "manifest.json").read_text())
    assert [s.get("prompt_sha256") for s in manifest["stages"]] == [
        s.get("prompt_sha256") for s in card["provenance"]["stages"]
    ]
    assert "backend" not in next(s for s in card["provenance"]["stages"] if s["name"] == "dedup")
    llm = card["statistics"]["llm"]
    assert [
        (r["stage"], r["requests"], r["prompt_tokens"], r["completion_tokens"]) for r in llm["by_stage"]
    ] == [
        (s["name"], s["llm"]["requests"], s["llm"]["prompt_tokens"], s["llm"]["completion_tokens"])
        for s in stats["stages"]
        if s["llm"]
    ]
    assert llm["total"]["prompt_tokens"] == sum(
        s["llm"]["prompt_tokens"] for s in stats["stages"] if s["llm"]
    )
    judge = next(p for p in card["statistics"]["scores"] if p["column"] == "judge_score")
    profile = next(s for s in stats["stages"] if s["name"] == "judge")["columns"]["judge_score"]
    assert {k: judge[k] for k in profile} == profile
    limits = " ".join(card["limitations"])
    assert "`fake:fake`" in limits and "Do not train on this dataset" in limits
    meta, body = front_matter((spec.parent / "out" / "demo.card.md").read_text())
    assert meta["tags"] == ["dataflow", "synthetic"]
    assert "model `fake` via `fake`" in body and "seed 7" in body


def test_no_output_no_card_but_a_report(cli, pipeline):
    spec = pipeline("text_clean")
    cli("run", spec, "--run-dir", spec.parent / "run")
    assert (spec.parent / "out" / "clean.card.md").is_file()
    # Nothing kept: the earlier output is removed, and with it its card (it would describe it).
    stats = cli.json(
        "run",
        spec,
        "--set",
        "stages.length_bounds.params.min=1000",
        "--set",
        "stages.length_bounds.params.max=2000",
        "--run-dir",
        spec.parent / "run",
    )
    assert stats["rows_written"] == 0 and stats["output"] is None
    assert not list((spec.parent / "out").glob("*.card.*"))
    assert (spec.parent / "run" / "report.html").is_file()


def test_hostile_spec_text_cannot_become_markup_in_the_card(cli, pipeline):
    spec = pipeline("text_clean")
    text = spec.read_text().replace(
        "description: >", "description: >\n  <script>alert(1)</script> | pipe `tick` ``two``\n ", 1
    )
    spec.write_text(text)
    cli(
        "run", spec, "--set", "stages.no_boilerplate.params.pattern=a`b|<i>", "--run-dir", spec.parent / "run"
    )
    md = (spec.parent / "out" / "clean.card.md").read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md
    params = next(line for line in md.splitlines() if "a`b|<i>" in line)
    assert params.strip().startswith("params: ``{") and params.rstrip().endswith("}``")


def test_code_spans_and_intervals():
    assert _code("plain") == "`plain`"
    assert _code("a`b") == "``a`b``"
    assert _code("`x``") == "``` `x`` ```"
    low, high = wilson(5, 10)
    assert (low, high) == (0.2366, 0.7634)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 0) is None


def test_input_hashes_are_cached_by_identity(cli, pipeline):
    spec = pipeline("text_clean")
    run_dir = spec.parent / "run"
    cli("run", spec, "--run-dir", run_dir)
    cache = json.loads((run_dir / "input_hashes.json").read_text())
    data = spec.parent / "data" / "sample.jsonl"
    assert list(cache.values()) == [hashlib.sha256(data.read_bytes()).hexdigest()]
    rows = read_jsonl(data)
    write_jsonl(data, rows[:-1])  # a changed input: new identity, hashed again
    cli("run", spec, "--run-dir", run_dir)
    card = json.loads((spec.parent / "out" / "clean.card.json").read_text())
    assert card["provenance"]["inputs"][0]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert card["statistics"]["rows_read"] == len(rows) - 1


def test_markdown_renders_from_the_json_alone(cli, pipeline):
    spec = pipeline("text_clean")
    cli("run", spec, "--run-dir", spec.parent / "run")
    out = spec.parent / "out"
    card = json.loads((out / "clean.card.json").read_text())
    rendered = render_markdown(card)
    assert rendered == (out / "clean.card.md").read_text()


def test_a_report_that_cannot_be_written_does_not_fail_the_run(cli, pipeline):
    spec = pipeline("text_clean")
    run_dir = spec.parent / "run"
    (run_dir / "report.html").mkdir(parents=True)  # its place is taken: writing it fails
    stats = cli.json("run", spec, "--run-dir", run_dir)
    assert stats["status"] == "complete" and (spec.parent / "out" / "clean.jsonl").is_file()
    assert (spec.parent / "out" / "clean.card.md").is_file()
    assert "could not write the run report" in (run_dir / "run.log").read_text()
