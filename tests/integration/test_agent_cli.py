"""`dataflow agent` end to end: real retrieval, validator, dry run and sandbox; scripted models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataflow_cli.agent.model import ModelClient
from dataflow_cli.agent.session import AgentOptions, run_agent
from dataflow_cli.cli.app import app
from dataflow_cli.llm.backends.fake import FakeBackend

ROWS = [
    {
        "instruction": "Explain what a hash table is.",
        "response": "A hash table maps keys to values through a hash function.",
    },
    {"instruction": "hi", "response": "Hello!"},
    {
        "instruction": "Explain what a hash table is.",
        "response": "A hash table maps keys to values through a hash function.",
    },
    {
        "instruction": "What is the capital of France?",
        "response": "As an AI language model, I cannot answer that.",
    },
    {
        "instruction": "Write a haiku about autumn leaves.",
        "response": "Red leaves drift and fall, the wind carries them home, silence on the ground.",
    },
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def agent(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dataflow_cli", "agent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_writes_a_spec_that_validates_and_dry_runs(tmp_path, sample):
    spec = tmp_path / "agent" / "pipeline.yaml"
    done = agent(
        "remove duplicate rows and drop refusals",
        "--sample",
        str(sample),
        "-o",
        str(spec),
        "--backend",
        "fake",
        "--yes",
        "--json",
        "--limit",
        "5",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout is the JSON and nothing else
    assert result["status"] == "ok" and result["exit_code"] == 0
    assert result["stages"] and all(s["why"] for s in result["stages"])
    assert result["dry_run"]["rows_read"] == 5
    assert result["dry_run"]["rows_written"] + result["dry_run"]["rows_rejected"] >= 1
    assert result["commands"][-1] == f"dataflow run {spec}"
    text = spec.read_text()
    assert text.startswith("# Written by `dataflow agent`")
    assert text.count("\n  # ") >= len(result["stages"])  # a comment on every stage
    check = subprocess.run(
        [sys.executable, "-m", "dataflow_cli", "validate", str(spec)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    steps = [
        json.loads(line)["step"]
        for line in (spec.parent / "pipeline.yaml.trace.jsonl").read_text().splitlines()
    ]
    for step in ("start", "intent", "inspect", "retrieve", "plan", "dry_run", "result"):
        assert step in steps


def test_refuses_what_the_product_cannot_do(tmp_path, sample):
    done = agent(
        "label these photos of cats by breed",
        "--sample",
        str(sample),
        "-o",
        str(tmp_path / "p.yaml"),
        "--backend",
        "fake",
        "--yes",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "cannot do" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "p.yaml").exists()  # no pipeline presented as the answer


def test_without_sample_nor_terminal_it_asks_for_one(tmp_path):
    done = agent("drop short answers", "-o", str(tmp_path / "p.yaml"), "--backend", "fake", cwd=tmp_path)
    assert done.returncode == 2
    assert "no `--sample`" in done.stderr and "--yes" in done.stderr


@pytest.mark.slow
def test_with_yes_and_no_sample_it_designs_the_input_and_says_so(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "agent",
            "drop short responses and duplicates",
            "-o",
            str(tmp_path / "p.yaml"),
            "--backend",
            "fake",
            "--yes",
            "--json",
        ],
    )
    payload = json.loads(result.stdout)
    assert payload["sample"]["invented"] is True
    assert any("designed the input columns" in note for note in payload["notes"])
    assert (tmp_path / "p.sample.jsonl").exists()


def test_unknown_backend_is_a_usage_error(tmp_path, sample):
    done = agent("drop short answers", "--sample", str(sample), "--backend", "nope", cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown backend `nope`" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (make test installs it)")
def test_full_mode_synthesizes_a_plugin_for_what_nothing_fits(tmp_path, sample):
    """A capable (scripted) model: the plan leaves a sub-goal uncovered, the agent has a plugin
    written for it, tests it in the sandbox, installs it (into a test folder) and uses it."""
    plugin = {
        "name": "palindrome_filter",
        "summary": "Keep texts that read the same backwards.",
        "input": "text",
        "code": "def check(value):\n    s = ''.join(c.lower() for c in value if c.isalnum())\n    return s == s[::-1]\n",
        "tests": "assert check('Never odd or even')\nassert not check('hello')\n",
    }

    def script(request):
        props = request.json_schema["properties"]
        if "choice" in props:
            return json.dumps({"choice": "none of these"})
        if "stages" in props:
            return json.dumps(
                {
                    "stages": [
                        {
                            "name": "normalize",
                            "op": "text_normalize_refiner",
                            "why": "tidy",
                            "inputs": {"text": "response"},
                        }
                    ],
                    "uncovered": ["keep only palindromes"],
                }
            )
        if "code" in props:
            return json.dumps(plugin)
        return json.dumps({"edits": [{"op": "remove", "path": "/stages/0"}]})

    sample.write_text(
        sample.read_text() + json.dumps({"instruction": "Never odd or even", "response": "yes"}) + "\n"
    )
    spec = tmp_path / "pal.yaml"
    model = ModelClient(backend=FakeBackend.scripted(script), mode="full")
    try:
        result = run_agent(
            AgentOptions(
                "keep only palindromes",
                sample=sample,
                output=spec,
                backend="fake",
                yes=True,
                limit=10,
                plugin_target=tmp_path / "site",
            ),
            model=model,
        )
    finally:
        model.close()
        sys.path[:] = [p for p in sys.path if p != str(tmp_path / "site")]
        from dataflow_cli.agent.synth import refresh_registry

        refresh_registry()
    assert result.synthesis and result.synthesis[0]["accepted"] and result.synthesis[0]["installed"]
    assert result.synthesis[0]["tests_passed"] == 2
    assert [s["op"] for s in result.stages][-1] == "palindrome_filter"
    assert result.status == "ok", result.message
    assert result.dry_run["rows_written"] == 1  # the palindrome, through the plugin's own check
    assert (
        tmp_path / "plugins" / "palindrome-filter-plugin" / "palindrome_filter_plugin" / "logic.py"
    ).exists()


def test_too_ambiguous_a_request_is_refused_with_a_hint(tmp_path, sample):
    done = agent(
        "do stuff with my data",
        "--sample",
        str(sample),
        "-o",
        str(tmp_path / "p.yaml"),
        "--backend",
        "fake",
        "--yes",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    result = json.loads(done.stdout)
    assert result["status"] == "refused"
    assert "too ambiguous" in result["message"]
    assert not (tmp_path / "p.yaml").exists()


def test_one_clarifying_question_when_someone_can_answer(tmp_path, sample):
    asked = []

    def ask(question):
        asked.append(question)
        return "remove duplicate rows"

    result = run_agent(
        AgentOptions(
            "do stuff with my data",
            sample=sample,
            output=tmp_path / "p.yaml",
            backend="fake",
            limit=5,
            ask_user=ask,
        )
    )
    assert len(asked) == 1 and "What should the pipeline do" in asked[0]
    assert result.status == "ok", result.message


def test_full_mode_over_an_openai_compatible_server(tmp_path, sample):
    """`--backend FILE` with an API backend: the model (a real HTTP server here) writes the
    whole plan; the bad column it used is repaired by its own JSON-patch edits."""
    from tests.support.openai_server import OpenAIServer

    def responder(body):
        wanted = json.dumps(body.get("response_format") or {})
        if '"edits"' in wanted:
            return json.dumps(
                {"edits": [{"op": "replace", "path": "/stages/0/params/columns", "value": ["response"]}]}
            )
        if '"stages"' in wanted:
            step = {
                "name": "dedup",
                "op": "exact_dedup_filter",
                "why": "drop repeated answers",
                "params": {"columns": ["answer"]},
            }
            return json.dumps({"stages": [step]})
        return json.dumps({"choice": "none of these"})

    with OpenAIServer(responder=responder) as server:
        config = tmp_path / "backends.yaml"
        config.write_text(
            f"mode: full\nagent: {{provider: openai, model: m, api_base: '{server.base_url}'}}\n"
        )
        result = CliRunner().invoke(
            app,
            [
                "agent",
                "remove duplicate responses",
                "--sample",
                str(sample),
                "-o",
                str(tmp_path / "p.yaml"),
                "--backend",
                str(config),
                "--yes",
                "--json",
                "--limit",
                "5",
            ],
        )
        requests = server.requests() if callable(getattr(server, "requests", None)) else None
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok", payload["message"]
    assert [s["op"] for s in payload["stages"]] == ["exact_dedup_filter"]
    assert payload["stages"][0]["why"] == "drop repeated answers"
    assert "column `answer`" in payload["repair"][0]["errors"][0]
    assert payload["dry_run"]["rows_rejected"] == 1  # the duplicate pair
    assert payload["model"]["mode"] == "full"
    assert requests is None or len(requests) >= 2


def test_help_names_the_command_and_its_exit_codes():
    runner = CliRunner()
    assert "agent" in runner.invoke(app, ["--help"]).stdout
    shown = runner.invoke(app, ["agent", "--help"])
    assert shown.exit_code == 0
    assert "--sample" in shown.stdout and "2 cannot be served" in " ".join(shown.stdout.split())


def test_an_existing_spec_is_not_overwritten_without_yes(tmp_path, sample):
    spec = tmp_path / "p.yaml"
    spec.write_text("mine\n")
    done = agent(
        "remove duplicate rows", "--sample", str(sample), "-o", str(spec), "--backend", "fake", cwd=tmp_path
    )
    assert done.returncode == 2 and "exists" in done.stderr
    assert spec.read_text() == "mine\n"
