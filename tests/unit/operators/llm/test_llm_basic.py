"""The reference LLM operators: prompted_generator and prompted_evaluator.

`build_messages` and `parse` are tested directly, without a backend; then each operator runs
against a real `LLMEngine` with a scripted `FakeBackend`, checking the exact requests sent and
the columns (or `Partial` failures) returned; then end to end through `dataflow run`.
"""

from __future__ import annotations

import json

import pytest
from dataflow_operators.llm.prompted_evaluator import PromptedEvaluator
from dataflow_operators.llm.prompted_generator import PromptedGenerator
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli.cli.app import app
from dataflow_cli.io.paths import default_rejects_path
from dataflow_cli.llm.operator import ParseError
from dataflow_cli.llm.types import LLMError, Request, Sampling
from dataflow_cli.operator import Fanout, Partial
from tests.support.llm_ops import batch, bound, user

RATE = (
    "Rate the quality of the following text on a scale from 1 (useless) to 10 (excellent) as training "
    "data for a helpful assistant. Consider correctness, clarity and completeness.\n\nText:\n{}\n\n"
    "Answer with the number only.\n"
)


# --- prompted_generator: prompt ---


def test_generator_messages_render_the_template_with_and_without_system():
    op = PromptedGenerator(PromptedGenerator.Params(template="Write a poem about {{ topic }}."))
    assert op.build_messages({"topic": "the sea"}) == [
        {"role": "user", "content": "Write a poem about the sea."}
    ]
    op = PromptedGenerator(PromptedGenerator.Params(template="Q: {{ q }}", system="Be brief."))
    assert op.build_messages({"q": "2+2?"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: 2+2?"},
    ]


def test_stage_prompt_overrides_the_template_param():
    op = PromptedGenerator(PromptedGenerator.Params(template="param {{ a }}"))
    op.prompt = "stage {{ b }}"
    assert op.template_columns() == ["b"]
    assert op.required_columns() == ["b"]
    assert op.build_messages({"b": "x"}) == [{"role": "user", "content": "stage x"}]


def test_generator_has_no_default_template():
    assert PromptedGenerator().template_text() == ""


# --- prompted_generator: with an engine ---


def test_generator_one_sample_per_row():
    op = PromptedGenerator(
        PromptedGenerator.Params(template="Say {{ word }}", temperature=0.7, max_tokens=20)
    )
    with bound(op, lambda r: "  " + r.messages[-1]["content"].upper() + "\n") as backend:
        result = op.process(batch(word=["hi", "日本"]))
    assert result == {"text": ["SAY HI", "SAY 日本"]}  # no `sample` column when n == 1
    sampling = Sampling(temperature=0.7, max_tokens=20)
    assert backend.history == [
        Request(user("Say hi"), sampling, None, sample_index=0),
        Request(user("Say 日本"), sampling, None, sample_index=0),
    ]


def test_generator_strip_false_keeps_whitespace():
    op = PromptedGenerator(PromptedGenerator.Params(template="{{ w }}", strip=False))
    with bound(op, lambda r: " x\n"):
        assert op.process(batch(w=["a"]))["text"] == [" x\n"]


def test_generator_n_samples_fan_out():
    op = PromptedGenerator(PromptedGenerator.Params(template="Name a {{ thing }}", n=3, seed=7))
    with bound(op, lambda r: f"{r.messages[-1]['content'][7:]} #{r.sample_index}") as backend:
        result = op.process(batch(thing=["fruit", "city"]))
    assert isinstance(result, Fanout)
    assert result.columns == {
        "text": ["fruit #0", "fruit #1", "fruit #2", "city #0", "city #1", "city #2"],
        "sample": [0, 1, 2, 0, 1, 2],
    }
    assert result.source_index.to_pylist() == [0, 0, 0, 1, 1, 1]
    sampling = Sampling(seed=7)
    assert backend.history == [
        Request(user(f"Name a {thing}"), sampling, None, sample_index=k)
        for thing in ("fruit", "city")
        for k in range(3)
    ]


def test_generator_null_column_in_prompt_fails_the_row_without_a_request():
    op = PromptedGenerator(PromptedGenerator.Params(template="{{ a }} and {{ b }}"))
    with bound(op, lambda r: "ok") as backend:
        result = op.process(batch(a=["x", None, "z"], b=["1", "2", None]))
    assert isinstance(result, Partial)
    assert result.failed == [None, "null `a` in prompt", "null `b` in prompt"]
    assert result.result["text"][0] == "ok"
    assert [r.messages for r in backend.history] == [user("x and 1")]


def test_generator_fan_out_with_a_null_row():
    op = PromptedGenerator(PromptedGenerator.Params(template="{{ a }}", n=2))
    with bound(op, lambda r: "ok") as backend:
        result = op.process(batch(a=[None, "y"]))
    assert isinstance(result, Partial) and result.failed == ["null `a` in prompt", None]
    assert result.result.columns == {"text": ["ok", "ok"], "sample": [0, 1]}
    assert result.result.source_index.to_pylist() == [1, 1]
    assert [(r.messages, r.sample_index) for r in backend.history] == [(user("y"), 0), (user("y"), 1)]


def test_generator_failed_request_is_a_partial_failure():
    def script(r):
        if "boom" in r.messages[-1]["content"]:
            return LLMError("server", "down", status=500)
        return "fine"

    op = PromptedGenerator(PromptedGenerator.Params(template="{{ a }}"))
    with bound(op, script, max_retries=1, backoff=0.0) as backend:
        result = op.process(batch(a=["boom", "ok"]))
    assert isinstance(result, Partial)
    assert result.failed == ["llm server (HTTP 500)", None]
    assert result.result["text"] == [None, "fine"]
    assert [r.messages for r in backend.history].count(user("boom")) == 2  # one retry


# --- prompted_evaluator: prompt and parse ---


def test_evaluator_default_template():
    op = PromptedEvaluator()
    assert op.required_columns() == ["text"]
    assert op.build_messages({"text": "Water boils at 100 °C."}) == [
        {"role": "user", "content": RATE.format("Water boils at 100 °C.")}
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("8", {"score": 8.0, "label": "8"}),
        ("Score: 7.5/10", {"score": 7.5, "label": "7.5"}),
        ("10", {"score": 10.0, "label": "10"}),
        ("I'd say 1.", {"score": 1.0, "label": "1"}),
    ],
)
def test_evaluator_parses_the_first_number(answer, expected):
    assert PromptedEvaluator().parse(answer, {}) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [("great text", "no number in answer"), ("11", r"score outside \[1, 10\]"), ("-3", r"score outside")],
)
def test_evaluator_parse_errors(answer, reason):
    with pytest.raises(ParseError, match=reason):
        PromptedEvaluator().parse(answer, {})


def test_evaluator_label_mode():
    op = PromptedEvaluator(PromptedEvaluator.Params(parse="label", labels=["bad", "ok", "good"]))
    assert op.parse("Good.", {}) == {"score": 2.0, "label": "good"}
    assert op.parse("ok, not bad", {}) == {"score": 1.0, "label": "ok"}  # the earliest label wins
    with pytest.raises(ParseError, match="no known label"):
        op.parse("excellent", {})


def test_evaluator_params_are_checked():
    with pytest.raises(ValidationError, match="`labels` is required"):
        PromptedEvaluator.Params(parse="label")
    with pytest.raises(ValidationError, match="greater than"):
        PromptedEvaluator.Params(min_score=5, max_score=1)
    with pytest.raises(ValidationError, match="extra"):
        PromptedEvaluator.Params(tempreature=0.5)


# --- prompted_evaluator: with an engine ---


def test_evaluator_scores_rows_and_rejects_unparsable_answers_with_raw_text():
    replies = {"good": "9", "meh": "Five? 5", "odd": "no idea", "huge": "42"}
    op = PromptedEvaluator(PromptedEvaluator.Params(temperature=0))
    with bound(
        op, lambda r: replies[r.messages[-1]["content"].split("Text:\n")[1].split("\n")[0]]
    ) as backend:
        result = op.process(batch(text=["good", "meh", "odd", "huge"]))
    assert isinstance(result, Partial)
    assert result.result == {"score": [9.0, 5.0, None, None], "label": ["9", "5", None, None]}
    assert result.failed == [
        None,
        None,
        "parse error: no number in answer",
        "parse error: score outside [1, 10]",
    ]
    assert result.raw == [None, None, "no idea", "42"]
    assert backend.history == [
        Request(user(RATE.format(t)), Sampling(temperature=0), None, sample_index=0) for t in replies
    ]


def test_evaluator_all_good_returns_plain_columns():
    op = PromptedEvaluator(PromptedEvaluator.Params(template="{{ x }}", system="Judge."))
    with bound(op, lambda r: "3") as backend:
        assert op.process(batch(x=["a"])) == {"score": [3.0], "label": ["3"]}
    assert backend.history[0].messages == (
        {"role": "system", "content": "Judge."},
        {"role": "user", "content": "a"},
    )


def test_unbound_operator_refuses_to_run():
    with pytest.raises(RuntimeError, match="no LLM backend bound"):
        PromptedEvaluator().process(batch(text=["a"]))


# --- end to end ---


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_spec(tmp_path, monkeypatch, spec: str, rows: list[dict]) -> dict:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "in.jsonl", rows)
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "spec.yaml", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert (tmp_path / ".dataflow" / "llm-cache.sqlite").exists()
    return stats


def test_cli_prompted_generator_fans_out(tmp_path, monkeypatch):
    spec = """
version: 1
name: gen
input: {path: in.jsonl}
output: {path: out.jsonl, internal_columns: true}
backends:
  default: {provider: fake, reply_template: "answer {{ index % 2 }} to {{ prompt }}"}
stages:
  - name: write
    op: prompted_generator
    params: {template: "Tell me about {{ topic }}", n: 2}
"""
    stats = run_spec(tmp_path, monkeypatch, spec, [{"topic": "tea"}, {"topic": None}, {"topic": "rain"}])
    assert stats["rows_read"] == 3 and stats["rows_added_by_fanout"] == 2
    assert (
        stats["rows_read"] + stats["rows_added_by_fanout"] == stats["rows_written"] + stats["rows_rejected"]
    )
    assert stats["rows_written"] == 4 and stats["rows_rejected"] == 1
    assert stats["stages"][0]["dropped_by_reason"] == {"null `topic` in prompt": 1}
    out = read_jsonl(tmp_path / "out.jsonl")
    assert sorted((r["_id"], r["_parent_id"], r["sample"]) for r in out) == [
        ("0.0", "0", 0),
        ("0.1", "0", 1),
        ("2.0", "2", 0),
        ("2.1", "2", 1),
    ]
    assert all(r["text"].endswith(f"to Tell me about {r['topic']}") for r in out)
    rejects = read_jsonl(default_rejects_path(tmp_path / "out.jsonl"))
    assert [(r["_id"], r["_reason"]) for r in rejects] == [("1", "null `topic` in prompt")]


def test_cli_prompted_evaluator_rejects_unparsable_scores(tmp_path, monkeypatch):
    spec = """
version: 1
name: judge
input: {path: in.jsonl}
output: {path: out.jsonl, internal_columns: true}
backends:
  default:
    provider: fake
    reply_template: "{% if 'junk' in prompt %}no idea{% elif 'meh' in prompt %}4{% else %}9{% endif %}"
stages:
  - name: rate
    op: prompted_evaluator
    inputs: {}
    outputs: {score: quality}
"""
    rows = [{"text": "a fine text"}, {"text": "junk"}, {"text": "meh"}]
    stats = run_spec(tmp_path, monkeypatch, spec, rows)
    assert stats["rows_read"] == stats["rows_written"] + stats["rows_rejected"] == 3
    assert stats["rows_rejected"] == 1
    assert stats["stages"][0]["dropped_by_reason"] == {"parse error: no number in answer": 1}
    assert stats["stages"][0]["llm"]["requests"] == 3
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [(r["text"], r["quality"], r["label"]) for r in out] == [
        ("a fine text", 9.0, "9"),
        ("meh", 4.0, "4"),
    ]
    rejects = read_jsonl(default_rejects_path(tmp_path / "out.jsonl"))
    assert [(r["text"], r["_reason"], r["_raw_output"]) for r in rejects] == [
        ("junk", "parse error: no number in answer", "no idea")
    ]


@pytest.mark.parametrize("name", ["prompted_generator", "prompted_evaluator"])
def test_operators_show(name):
    result = CliRunner().invoke(app, ["operators", "show", name])
    assert result.exit_code == 0, result.output
    assert name in result.stdout and "Params" in result.stdout and "Example stage" in result.stdout


def test_multi_turn_messages_from_a_column():
    from dataflow_operators.llm.prompted_generator import PromptedGenerator

    op = PromptedGenerator(
        PromptedGenerator.Params(system="Be brief.", messages_column="history", template="And {{ topic }}?")
    )
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert op.required_columns() == ["topic", "history"]
    assert op.build_messages({"topic": "cats", "history": history}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And cats?"},
    ]
    alone = PromptedGenerator(PromptedGenerator.Params(messages_column="history"))
    assert alone.build_messages({"history": history}) == history
