"""The repair loop with scripted model answers (fake backend, real validator, real files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataflow_cli.agent.draft import Draft, validate
from dataflow_cli.agent.model import ModelClient
from dataflow_cli.agent.repair import PatchError, RepairFailed, apply_edits, repair
from dataflow_cli.agent.trace import Trace
from dataflow_cli.llm.backends.fake import FakeBackend


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    rows = [
        {"instruction": "Explain hash tables briefly.", "response": "They map keys to values with a hash."},
        {"instruction": "Name a prime.", "response": "Seven is a prime number."},
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def draft_with(stages: list[dict], **extra) -> Draft:
    data = {
        "version": 1,
        "name": "t",
        "input": {"path": "data.jsonl"},
        "output": {"path": "out/t.jsonl"},
        "backends": {"default": {"provider": "fake"}},
        **extra,
        "stages": stages,
    }
    return Draft(data, {s["name"]: "test stage" for s in stages})


def picker(*wanted: str, value=None):
    """A scripted model: yes to a proposed fix containing `wanted[i]` (in order of the errors),
    no to the others; for a value question, `value`. Records every prompt."""
    state = {"n": 0, "prompts": []}

    def answer(request):
        prompt = request.messages[-1]["content"]
        state["prompts"].append(prompt)
        props = request.json_schema["properties"]
        if "answer" in props:
            want = wanted[min(state["n"], len(wanted) - 1)]
            proposed = prompt.split("Proposed: ", 1)[-1].split("\n", 1)[0]
            if want in proposed:
                state["n"] += 1
                return json.dumps({"answer": "yes"})
            return json.dumps({"answer": "no"})
        if "choice" in props:
            return json.dumps({"choice": next(o for o in props["choice"]["enum"] if wanted[0] in o)})
        return json.dumps({"value": value})

    return answer, state


def client(script, tmp_path: Path, mode: str = "small") -> ModelClient:
    return ModelClient(backend=FakeBackend.scripted(script), mode=mode, trace=Trace(tmp_path / "trace.jsonl"))


@pytest.mark.parametrize(
    ("stage", "want", "value", "check"),
    [
        # unknown operator -> did-you-mean
        (
            {"name": "measure", "op": "lenght_evaluator", "inputs": {"text": "response"}},
            "use operator `length_evaluator`",
            None,
            lambda s: s["op"] == "length_evaluator",
        ),
        # bad param value -> the model gives a value of the param's schema
        (
            {
                "name": "bounds",
                "op": "range_filter",
                "inputs": {"value": "instruction"},
                "params": {"min": "five"},
            },
            "set parameter `min`",
            5,
            lambda s: s["params"]["min"] == 5,
        ),
        # unknown param -> dropped
        (
            {
                "name": "dedup",
                "op": "exact_dedup_filter",
                "params": {"columns": ["response"], "normalise": True},
            },
            "drop the unknown parameter",
            None,
            lambda s: s["params"] == {"columns": ["response"]},
        ),
        # missing column -> an available one
        (
            {"name": "measure", "op": "length_evaluator", "inputs": {"text": "answer"}},
            "read column `response`",
            None,
            lambda s: s["inputs"] == {"text": "response"},
        ),
        # unbound prompt variable -> an available column in the template
        (
            {"name": "judge", "op": "prompted_evaluator", "params": {"template": "Rate: {{ answer }}"}},
            "use `response` for the prompt variable",
            None,
            lambda s: s["params"]["template"] == "Rate: {{ response }}",
        ),
    ],
    ids=["unknown-operator", "bad-param", "unknown-param", "missing-column", "prompt-variable"],
)
def test_small_mode_fixes_each_validator_class(tmp_path, sample, stage, want, value, check):
    spec = tmp_path / "spec.yaml"
    draft = draft_with([stage])
    assert validate(draft, spec), "the injected error must be a real validation error"
    script, state = picker(want, value=value)
    model = client(script, tmp_path)
    try:
        fixed = repair(draft, spec, model, max_rounds=2)
    finally:
        model.close()
    assert validate(fixed, spec) == []
    assert check(fixed.stages[0])
    # The error went to the model with its location, as a user would see it.
    assert any(f"{spec}:" in p and "stages[0]" in p for p in state["prompts"])
    events = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["step"] == "repair"] == ["repair"]


def test_full_mode_applies_the_models_edits(tmp_path, sample):
    spec = tmp_path / "spec.yaml"
    draft = draft_with(
        [{"name": "bounds", "op": "range_filter", "inputs": {"value": "score"}, "params": {"min": 3}}]
    )
    edits = {
        "edits": [
            {
                "op": "add",
                "path": "/stages/0",
                "value": {"name": "measure", "op": "length_evaluator", "inputs": {"text": "response"}},
            },
            {"op": "replace", "path": "/stages/1/inputs/value", "value": "words"},
        ]
    }
    seen = []

    def script(request):
        seen.append(request.messages[-1]["content"])
        return json.dumps(edits)

    model = client(script, tmp_path, mode="full")
    try:
        fixed = repair(draft, spec, model)
    finally:
        model.close()
    assert [s["op"] for s in fixed.stages] == ["length_evaluator", "range_filter"]
    assert validate(fixed, spec) == []
    assert "column `score` is not in the input" in seen[0]


def test_gives_up_cleanly_after_its_bound(tmp_path, sample):
    spec = tmp_path / "spec.yaml"
    draft = draft_with(
        [{"name": "bounds", "op": "range_filter", "inputs": {"value": "nope"}, "params": {"min": 1}}]
    )
    # A model whose edits never apply (and then never valid): every round fails.
    model = client(
        lambda r: json.dumps({"edits": [{"op": "replace", "path": "/nothing/here", "value": 1}]}),
        tmp_path,
        "full",
    )
    try:
        with pytest.raises(RepairFailed) as failed:
            repair(draft, spec, model, max_rounds=2)
    finally:
        model.close()
    error = failed.value
    assert error.exit_code == 1
    assert "could not repair the spec in 2 rounds" in error.reason
    assert "stages[0].inputs.value: column `nope`" in error.reason
    assert spec.exists()  # the broken spec stays for the user to edit
    rounds = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [e["round"] for e in rounds if e["step"] == "repair"] == [1, 2]
    assert model.calls == 2 * 3  # each round: 1 try + 2 retries of the inapplicable edit


def test_invalid_answers_are_retried_then_given_up(tmp_path, sample):
    spec = tmp_path / "spec.yaml"
    draft = draft_with([{"name": "measure", "op": "lenght_evaluator"}])
    model = client(lambda r: '{"answer": "maybe"}', tmp_path)
    try:
        with pytest.raises(RepairFailed):
            repair(draft, spec, model, max_rounds=1)
    finally:
        model.close()
    assert model.calls == 3  # the schema (an enum) refused every answer; bounded retries
    events = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert all(not e["valid"] and "is not one of" in e["problem"] for e in events if e["step"] == "model")


def test_patches_are_all_or_nothing():
    data = {"stages": [{"name": "a", "params": {"x": 1}}]}
    assert apply_edits(data, [{"op": "remove", "path": "/stages/0/params/x"}]) == {
        "stages": [{"name": "a", "params": {}}]
    }
    with pytest.raises(PatchError):
        apply_edits(
            data,
            [
                {"op": "replace", "path": "/stages/0/name", "value": "b"},
                {"op": "remove", "path": "/stages/3"},
            ],
        )
    assert data["stages"][0]["name"] == "a"


def test_a_filter_that_drops_every_row_goes_back_into_the_repair_loop(tmp_path, sample):
    from dataflow_cli.agent.dryrun import dry_run

    spec = tmp_path / "spec.yaml"
    draft = draft_with(
        [
            {"name": "measure", "op": "length_evaluator", "inputs": {"text": "response"}},
            {
                "name": "long_enough",
                "op": "range_filter",
                "inputs": {"value": "words"},
                "params": {"min": 10},
            },
        ]
    )
    assert validate(draft, spec) == []
    dry = dry_run(spec, limit=5)
    assert dry.rows_read == 2 and dry.rows_written == 0
    assert [i.message for i in dry.surprises] == [
        "filter `long_enough` dropped all 2 rows it saw: `words` < 10 (2)"
    ]
    script, state = picker("relax `min`")
    model = client(script, tmp_path)
    try:
        fixed = repair(draft, spec, model, max_rounds=1, extra_issues=dry.surprises)
    finally:
        model.close()
    assert "dry-run: stages[1]: filter `long_enough` dropped all 2 rows" in state["prompts"][0]
    assert fixed.stages[1]["params"] == {"min": 5}
    again = dry_run(spec, limit=5)
    assert (again.rows_written, again.surprises) == (2, [])
    assert again.stages[1]["keep_rate"] == 1.0
