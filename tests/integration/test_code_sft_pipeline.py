"""pipelines/code_sft end to end: with a scripted model (what is kept and why the rest is not),
and on the embedded local model (shape only: every row accounted for)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.conftest import REPO, read_jsonl
from tests.unit.sandbox.isolation import require

# Answers by prompt: three exercises per seed; `add` is solved and tested right, `mul` is solved
# wrong, `ident` gets tests that a stub returning its input passes.
SCRIPT = """
{%- if 'example exercise' in prompt -%}
1. Write `add(a, b)` returning the sum of two integers.
2. Write `mul(a, b)` returning the product of two integers.
3. Write `ident(x)` returning x unchanged.
{%- elif 'Rewrite the following' in prompt -%}
{{ prompt.split('Exercise:\n')[1].split('\n\nAnswer')[0] }} Negative numbers are allowed.
{%- elif 'Solve the following' in prompt -%}
```python
{% if 'the sum' in prompt %}def add(a, b):
    return a + b{% elif 'the product' in prompt %}def mul(a, b):
    return a + b{% else %}def ident(x):
    return x{% endif %}
```
{%- elif 'Write unit tests' in prompt -%}
```python
{% if 'the sum' in prompt %}assert add(2, 3) == 5
assert add(-4, 1) == -3{% elif 'the product' in prompt %}assert mul(2, 3) == 6
assert mul(-2, 4) == -8{% else %}assert ident(3) == 3{% endif %}
```
{%- else -%}
{"score": 8, "reason": "Correct and idiomatic."}
{%- endif -%}
"""


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "code_sft"
    shutil.copytree(REPO / "pipelines" / "code_sft", target, ignore=shutil.ignore_patterns("out"))
    return target / "pipeline.yaml"


@pytest.mark.slow
def test_code_sft_keeps_only_verified_solutions(cli, pipeline):
    require("bwrap")
    spec = yaml.safe_load(pipeline.read_text())
    spec["backends"]["default"] = {"provider": "fake", "reply_template": SCRIPT}
    spec["stages"][0]["params"]["count"] = 3
    pipeline.write_text(yaml.safe_dump(spec, sort_keys=False))
    stats = cli.json("run", pipeline, "--limit", "2")
    assert (stats["rows_read"], stats["rows_added_by_fanout"]) == (2, 4)
    assert (stats["rows_written"], stats["rows_rejected"]) == (2, 4)
    rows = read_jsonl(pipeline.parent / "out" / "code_sft.jsonl")
    for row in rows:
        user, assistant = row["messages"]
        assert user == {
            "role": "user",
            "content": "Write `add(a, b)` returning the sum of two integers. Negative numbers are allowed.",
        }
        assert assistant == {
            "role": "assistant",
            "content": "```python\ndef add(a, b):\n    return a + b\n```",
        }
        assert (row["tests_passed"], row["quality"]) == (2, 8)
    rejects = read_jsonl(pipeline.parent / "out" / "rejects" / "code_sft.rejects.jsonl")
    assert sorted((r["_stage"], r["_reason"]) for r in rejects) == [
        ("all_tests_pass", "pass rate < 1: 0/2 tests passed"),
        ("all_tests_pass", "pass rate < 1: 0/2 tests passed"),
        ("strong_tests", "tests too weak: a stub that returns its input passes them"),
        ("strong_tests", "tests too weak: a stub that returns its input passes them"),
    ]
    run_tests = next(s for s in stats["stages"] if s["name"] == "run_tests")
    assert run_tests["limits"]["sandbox"]["isolation"]["network"] == "isolated"


@pytest.mark.slow
def test_code_sft_on_the_embedded_model(cli, pipeline):
    pytest.importorskip("llama_cpp", reason="installed by `make test`")
    require("bwrap")
    shorter = {"new_exercises": 96, "sharpen": 64, "solve": 128, "write_tests": 128, "judge": 32}
    overrides = [
        arg for stage, n in shorter.items() for arg in ("--set", f"stages.{stage}.params.max_tokens={n}")
    ]
    stats = cli.json(
        "run", pipeline, "--limit", "1", "--set", "stages.new_exercises.params.count=1", *overrides
    )
    out = pipeline.parent / "out"
    kept = read_jsonl(out / "code_sft.jsonl") if (out / "code_sft.jsonl").exists() else []
    rejects_file = out / "rejects" / "code_sft.rejects.jsonl"
    rejected = read_jsonl(rejects_file) if rejects_file.exists() else []
    assert stats["rows_read"] == 1
    assert (
        1 + stats["rows_added_by_fanout"]
        == len(kept) + len(rejected)
        == (stats["rows_written"] + stats["rows_rejected"])
    )
    for row in kept:  # the model is tiny: the shape is checked, never the content
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["tests_passed"] >= 1 and 6 <= row["quality"] <= 10
    for row in rejected:
        assert row["_stage"] and row["_reason"]
