"""Deltas: what a stage did to a batch, encoded and replayed exactly."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dataflow_cli.engine.delta import (
    REASON_KEY,
    ROW,
    OperatorContractError,
    apply_delta,
    composable,
    make_delta,
    replay,
)
from dataflow_cli.operator import Evaluator, Fanout, Filter, Generator, Partial, Port, Refiner, Verdict
from dataflow_cli.spec.model import Stage


class Upper(Refiner):
    name = "upper_refiner"
    inputs = {"text": Port("t")}


class Score(Evaluator):
    name = "score_evaluator"
    outputs = {"score": Port("s", "float64")}


class Keep(Filter):
    name = "keep_filter"


class Split(Generator):
    name = "split_generator"
    outputs = {"part": Port("p")}


def stage(op) -> Stage:
    return Stage(0, "s", op.name, op)


TABLE = pa.table({"_id": ["0", "1", "2", "3"], "text": ["a", "B", None, "d"]})


def roundtrip(op, result):
    delta = make_delta(stage(op), TABLE, result)
    return delta, apply_delta(stage(op), TABLE, delta)


def test_sparse_refine_delta_keeps_only_changed_rows_including_null_transitions():
    new = ["A", "B", "x", None]  # row 1 unchanged; null -> "x"; "d" -> null
    delta, (out, rejected) = roundtrip(Upper(), {"text": new})
    assert delta.column_names == ["text"]  # 3 of 4 rows changed: stored dense
    assert out.column("text").to_pylist() == new and rejected is None


def test_sparse_refine_when_few_rows_change():
    delta, (out, _) = roundtrip(Upper(), {"text": ["a", "B", None, "D"]})
    assert delta.column(ROW).to_pylist() == [3] and delta.column("text").to_pylist() == ["D"]
    assert out.column("text").to_pylist() == ["a", "B", None, "D"]


def test_unchanged_refine_stores_nothing_but_replays():
    delta, (out, _) = roundtrip(Upper(), {"text": TABLE.column("text")})
    assert delta.num_rows == 0
    assert out.equals(TABLE)


def test_evaluate_casts_to_declared_type():
    delta, (out, _) = roundtrip(Score(), {"score": [1, 2, 3, 4]})
    assert out.schema.field("score").type == pa.float64()


def test_filter_rejects_with_reason_and_detail():
    verdict = Verdict(
        [True, False, True, False], [None, "short", None, "dup"], [None, None, None, "of _id 0"]
    )
    _, (out, rejected) = roundtrip(Keep(), verdict)
    assert out.column("_id").to_pylist() == ["0", "2"]
    assert rejected.column("_reason").to_pylist() == ["short", "dup: of _id 0"]
    assert rejected.column(REASON_KEY).to_pylist() == ["short", "dup"]
    assert rejected.column("_stage").to_pylist() == ["s", "s"]


def test_filter_without_reason_is_a_contract_error():
    with pytest.raises(OperatorContractError, match="no reason"):
        make_delta(stage(Keep()), TABLE, Verdict([True, False, True, True], [None] * 4))


def test_wrong_length_is_a_contract_error():
    with pytest.raises(OperatorContractError, match="3 values for 4 rows"):
        make_delta(stage(Score()), TABLE, {"score": [1, 2, 3]})


def test_fanout_ids_parents_and_childless_rows():
    result = Fanout({"part": ["a1", "a2", "d1"]}, [0, 0, 3])
    _, (out, rejected) = roundtrip(Split(), result)
    assert out.column("_id").to_pylist() == ["0.0", "0.1", "3.0"]
    assert out.column("_parent_id").to_pylist() == ["0", "0", "3"]
    assert rejected.column("_id").to_pylist() == ["1", "2"]
    assert set(rejected.column("_reason").to_pylist()) == {"generated no rows"}


def test_partial_failures_go_to_rejects_with_raw_output():
    result = Partial(
        {"score": [1.0, None, 3.0, None]},
        [None, "llm server (HTTP 500)", None, "parse error: x"],
        [None, None, None, "garbage"],
    )
    _, (out, rejected) = roundtrip(Score(), result)
    assert out.column("_id").to_pylist() == ["0", "2"] and out.column("score").to_pylist() == [1.0, 3.0]
    assert rejected.column("_reason").to_pylist() == ["llm server (HTTP 500)", "parse error: x"]
    assert rejected.column("_raw_output").to_pylist() == [None, "garbage"]


def test_partial_fanout_reports_the_failure_not_generated_no_rows():
    result = Partial(Fanout({"part": ["a1"]}, [0]), [None, "llm timeout", None, None])
    _, (out, rejected) = roundtrip(Split(), result)
    assert out.column("_id").to_pylist() == ["0.0"]
    reasons = dict(
        zip(rejected.column("_id").to_pylist(), rejected.column("_reason").to_pylist(), strict=True)
    )
    assert reasons == {"1": "llm timeout", "2": "generated no rows", "3": "generated no rows"}


class Flag(Filter):
    name = "flag_filter"
    outputs = {"flag": Port("f", "int64")}


def test_replay_of_a_run_equals_applying_each_delta():
    # Two chunks, evaluate/filter alternating, a filter with an output, one keeping every row.
    rows = 40
    table = pa.Table.from_batches(
        pa.table(
            {"_id": [str(i) for i in range(rows)], "text": [f"t{i}" * (i % 5) for i in range(rows)]}
        ).to_batches(max_chunksize=25)
    )
    run = [
        (
            Stage(0, "score", "score_evaluator", Score()),
            lambda t: {"score": [float(len(v)) for v in t.column("text").to_pylist()]},
        ),
        (
            Stage(1, "short", "keep_filter", Keep()),
            lambda t: Verdict(
                [len(v) > 2 for v in t.column("text").to_pylist()],
                [None if len(v) > 2 else "short" for v in t.column("text").to_pylist()],
                [None if len(v) > 2 else f"{len(v)} chars" for v in t.column("text").to_pylist()],
            ),
        ),
        (Stage(2, "all", "keep_filter", Keep()), lambda t: Verdict([True] * t.num_rows, [None] * t.num_rows)),
        (
            Stage(3, "flag", "flag_filter", Flag()),
            lambda t: Verdict(
                [i % 3 != 0 for i in range(t.num_rows)],
                [None if i % 3 else "third" for i in range(t.num_rows)],
                columns={"flag": [i for i in range(t.num_rows)]},
            ),
        ),
        (Stage(4, "again", "score_evaluator", Score()), lambda t: {"score": [1.0] * t.num_rows}),
    ]
    step_by_step, deltas, expected, sizes, flags = table, [], [], [], None
    for s, result in run:
        delta = make_delta(s, step_by_step, result(step_by_step))
        deltas.append(pa.Table.from_batches(delta.to_batches(max_chunksize=7)))  # as read back: chunked
        rows_in = step_by_step.num_rows
        step_by_step, rejected = apply_delta(s, step_by_step, deltas[-1])
        expected.append(rejected)
        sizes.append((rows_in, step_by_step.num_rows))
        if s.name == "flag":
            flags = step_by_step.column("flag").to_pylist()
    assert all(composable(s, d) for (s, _), d in zip(run, deltas, strict=True))
    out, replayed = replay([s for s, _ in run], table, deltas)
    assert out.equals(step_by_step)
    assert out.column_names == ["_id", "text", "score", "flag", "score"]
    for done, rejected in zip(replayed, expected, strict=True):
        assert (done.rejected is None) == (rejected is None)
        if rejected is not None:
            assert done.rejected.equals(rejected)
    assert [(d.rows_in, d.rows_out) for d in replayed] == sizes
    assert sizes[1][1] < sizes[1][0] and sizes[3][1] < sizes[3][0] and sizes[2][0] == sizes[2][1]
    assert replayed[3].columns(["flag", "missing"]).column_names == ["flag"]
    assert replayed[3].columns(["flag"]).column("flag").to_pylist() == flags


def test_only_row_aligned_deltas_are_replayed_at_once():
    verdict = Verdict([True, False, True, True], [None, "x", None, None])
    assert composable(stage(Keep()), make_delta(stage(Keep()), TABLE, verdict))
    assert composable(stage(Score()), make_delta(stage(Score()), TABLE, {"score": [1, 2, 3, 4]}))
    assert not composable(stage(Upper()), make_delta(stage(Upper()), TABLE, {"text": ["a", "b", "c", "d"]}))
    assert not composable(stage(Split()), make_delta(stage(Split()), TABLE, Fanout({"part": ["a"]}, [0])))
    failed = Partial({"score": [1.0, None, 3.0, None]}, [None, "boom", None, None])
    assert not composable(stage(Score()), make_delta(stage(Score()), TABLE, failed))
