"""The agent's steps one by one: inspection, backend choice, questions, composing a plan."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataflow_cli.agent.draft import Draft, parse_path, validate
from dataflow_cli.agent.inspect import design_columns, inspect_sample
from dataflow_cli.agent.intent import SubGoal
from dataflow_cli.agent.model import ModelClient, ModelGaveUp, resolve_backend
from dataflow_cli.agent.plan import compose
from dataflow_cli.agent.trace import Trace
from dataflow_cli.errors import SpecError
from dataflow_cli.llm.backends.fake import FakeBackend


def test_inspects_any_format_the_product_reads(tmp_path):
    pq.write_table(
        pa.table({"question": ["What is 2+2?", None, "Name a colour."], "n": [1, 2, 3]}),
        tmp_path / "d.parquet",
    )
    profile = inspect_sample(tmp_path / "d.parquet")
    q = profile.columns["question"]
    assert (q.type, q.nulls, q.examples[0], q.max_length) == ("string", 1, "What is 2+2?", 14)
    assert profile.columns["n"].type == "int64"
    assert profile.text_columns() == ["question"]
    (tmp_path / "d.csv").write_text("text,label\nhello world,1\nbye,0\n")
    assert set(inspect_sample(tmp_path / "d.csv").columns) == {"text", "label"}


def test_a_bad_sample_is_the_readers_own_error(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(Exception) as error:
        inspect_sample(tmp_path / "bad.jsonl")
    assert "bad.jsonl:2" in str(getattr(error.value, "location", "")) + str(error.value)


def test_designed_columns_are_written_and_flagged(tmp_path):
    profile = design_columns("generate SFT questions about topics", ["generate"], tmp_path / "s.jsonl")
    assert profile.invented and list(profile.columns) == ["topic"]
    assert "placeholder rows" in profile.notes[0]
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 4


def test_backend_choice(tmp_path):
    assert resolve_backend(None, None).agent == {"provider": "local", "max_concurrency": 1}
    assert resolve_backend(None, None).mode == "small"
    assert resolve_backend(None, "openai/gpt-4o-mini").mode == "full"
    config = tmp_path / "b.yaml"
    config.write_text("mode: full\nagent: {provider: fake}\napi: {provider: openai, model: m}\n")
    choice = resolve_backend(str(config), None)
    assert choice.mode == "full" and choice.agent == {"provider": "fake"}
    assert set(choice.pipeline) == {"api", "default"}
    with pytest.raises(SpecError, match="not both"):
        resolve_backend("local", "x")


def test_answers_are_validated_against_the_schema_and_retried(tmp_path):
    answers = iter(['{"choice": "c"}', "not json", '{"choice": "b"}'])
    model = ModelClient(
        backend=FakeBackend.scripted(lambda r: next(answers)), trace=Trace(tmp_path / "t.jsonl")
    )
    try:
        assert model.choose("x", "pick", ["a", "b"]) == "b"
        assert model.calls == 3
        # The invalid answer and why were sent back before asking again.
        with pytest.raises(ModelGaveUp, match="after 3 attempts"):
            model.choose("x", "pick", ["a", "b"])
    finally:
        model.close()
    events = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert events[1]["messages"][-1]["content"].startswith(
        "That answer is invalid (choice: 'c' is not one of"
    )


def test_compose_in_small_mode_binds_columns_from_the_sample(tmp_path):
    from dataflow_cli.agent.retrieve import retrieve_operators

    sample = tmp_path / "d.jsonl"
    rows = [{"prompt": f"question {i}", "answer": f"an answer of some words {i}"} for i in range(3)]
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows))
    profile = inspect_sample(sample)
    spec = tmp_path / "spec.yaml"
    goals = [SubGoal("dedup", "remove duplicate answers")]
    model = ModelClient(backend=FakeBackend.scripted(_first), mode="small")
    try:
        plan = compose(
            "remove duplicate answers", goals, profile, model, spec, {"default": {"provider": "fake"}}, []
        )
    finally:
        model.close()
    (stage,) = plan.draft.stages
    # The yes/no questions went down the retrieval's list: the first hit, since the model said yes.
    assert stage["op"] == retrieve_operators("remove duplicate answers", k=5, kinds=("filter",))[0].name
    bound = list((stage.get("inputs") or {}).values()) + list((stage.get("params") or {}).get("columns", []))
    assert bound == ["answer"]  # the column the sub-goal names
    assert plan.draft.why[stage["name"]].startswith('dedup: "remove duplicate answers" -> ')
    assert validate(plan.draft, spec) == []


def _first(request):
    props = request.json_schema["properties"]
    if "choice" in props:
        return json.dumps({"choice": props["choice"]["enum"][0]})
    if "answer" in props:
        return json.dumps({"answer": "yes"})
    return json.dumps({"value": 1})


def test_rendered_yaml_has_a_reason_above_every_stage(tmp_path):
    draft = Draft(
        {"version": 1, "name": "n", "stages": [{"name": "a", "op": "x"}, {"name": "b", "op": "y"}]},
        {"a": "first", "b": "second"},
    )
    text = draft.render()
    assert "  # first\n  - name: a\n" in text and "  # second\n  - name: b\n" in text
    assert parse_path("stages[2].params.min") == ("stages", 2, "params", "min")
    assert Path  # noqa: B018
