"""The run report in a real browser: headless Chromium (Debian's `chromium`, `make chromium`)
loads the report a shipped pipeline's run wrote, its DOM holds the funnel numbers of stats.json,
hostile row text did not run or become markup, and screenshots at desktop and phone widths show
a rendered page (decoded with zlib: many colours, the funnel's bar colour present)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, read_jsonl, write_jsonl
from tests.support.png import colour_stats, decode_png, has_colour

KEEP_GREEN = (0x2E, 0x9D, 0x5B)  # `--keep` in the report's CSS: the funnel bars
HOSTILE_KEPT = "Explain <script>document.title='pwned'</script> to me in simple words please"
HOSTILE_SOURCE = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_REJECTED = "<b>bold</b> <svg onload=alert(1)>"

pytestmark = pytest.mark.slow


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: run `make chromium` (apt-get install chromium)")
    command = [
        binary, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    if os.geteuid() == 0:  # Chromium refuses to run as root inside its own sandbox
        command.insert(1, "--no-sandbox")
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo pipeline (fake backend: LLM stages without a model), hostile rows first."""
    from typer.testing import CliRunner

    from dataflow_cli.cli.app import app

    root = tmp_path_factory.mktemp("report")
    target = root / "demo"
    shutil.copytree(REPO / "pipelines" / "demo", target, ignore=shutil.ignore_patterns("out"))
    data = target / "data" / "prompts.jsonl"
    hostile = [
        {"instruction": HOSTILE_KEPT, "source": HOSTILE_SOURCE},
        {"instruction": HOSTILE_REJECTED, "source": "x"},
    ]
    write_jsonl(data, hostile + read_jsonl(data))
    run_dir = target / "run"
    cwd = Path.cwd()
    os.chdir(target)
    try:
        result = CliRunner().invoke(
            app,
            [
                "run",
                "pipeline.yaml",
                "--set",
                "backends.default.provider=fake",
                "--run-dir",
                str(run_dir),
                "-q",
            ],
            catch_exceptions=False,
        )
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.stderr
    return run_dir, json.loads((run_dir / "stats.json").read_text())


def test_the_browser_shows_the_funnel_of_stats_json(demo_run, tmp_path):
    run_dir, stats = demo_run
    report = run_dir / "report.html"
    assert report.is_file()  # written by the run itself
    dom = chromium(tmp_path / "profile", "--dump-dom", report.as_uri()).stdout
    funnel = re.search(r'<section id="funnel">(.*?)</section>', dom, re.S).group(1)
    rows = re.findall(r'<tr data-stage="([^"]*)">(.*?)</tr>', funnel, re.S)
    shown = {name: [int(v) for v in re.findall(r'data-value="(\d+)"', body)] for name, body in rows}
    assert shown == {s["name"]: [s["rows_in"], s["rows_out"], s["rows_dropped"]] for s in stats["stages"]}
    for key in ("rows_read", "rows_written", "rows_rejected"):
        assert re.search(rf'id="kpi-{key}"><b data-value="{stats[key]}">', dom)
    llm = re.search(r'<section id="llm">(.*?)</section>', dom, re.S).group(1)
    for stage in (s for s in stats["stages"] if s["llm"]):
        body = re.search(rf'<tr data-stage="{stage["name"]}">(.*?)</tr>', llm, re.S).group(1)
        values = dict(re.findall(r'data-key="([^"]*)" data-value="([^"]*)"', body))
        for key in ("requests", "cache_hits", "prompt_tokens", "completion_tokens", "calls", "errors"):
            assert int(values[key]) == stage["llm"][key]
        assert float(values["cost"]) == stage["llm"]["cost"]
    assert len(re.findall(r"<svg ", dom)) == sum(
        1 for s in stats["stages"] for p in s["columns"].values() if p.get("type") == "numeric"
    )


def test_hostile_rows_did_not_run_or_become_markup(demo_run, tmp_path):
    run_dir, _ = demo_run
    dom = chromium(tmp_path / "profile", "--dump-dom", (run_dir / "report.html").as_uri()).stdout
    assert "<title>dataflow report: demo</title>" in dom  # a script setting the title never ran
    assert not re.search(r"<(script|img|iframe|object|embed)[\s>]", dom) and "<b>bold</b>" not in dom
    assert not re.search(r"<svg[^>]*onload", dom)
    assert "Explain &lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # shown, as text
    assert "&lt;b&gt;bold&lt;/b&gt; &lt;svg onload=alert(1)&gt;" in dom  # the rejected one too


@pytest.mark.parametrize(("width", "height"), [(1200, 1600), (390, 1400)], ids=["desktop", "phone"])
def test_screenshots_show_a_rendered_page(demo_run, tmp_path, width, height):
    run_dir, _ = demo_run
    shot = tmp_path / "shot.png"
    chromium(
        tmp_path / "profile", f"--window-size={width},{height}", f"--screenshot={shot}",
        (run_dir / "report.html").as_uri(),
    )  # fmt: skip
    pixels = decode_png(shot.read_bytes())
    assert pixels.shape[:2] == (height, width)
    distinct, non_white = colour_stats(pixels)
    assert distinct > 50 and non_white > 0.03  # text, panels and bars, not a blank page
    assert has_colour(pixels, KEEP_GREEN)  # the CSS applied: funnel bars or the status badge are drawn
