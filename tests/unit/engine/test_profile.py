"""Column profiles: exact figures, NaN as null, type handling and the bounded reservoir."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dataflow_cli.engine import profile as profile_module
from dataflow_cli.engine.profile import ColumnProfile, StageProfile, measure_column


def test_numeric_profile_is_exact_across_batches():
    profile = StageProfile(["score"])
    batches = [[1.0, None, 3.0, float("nan")], [10.0, 2.0], [None]]
    for values in batches:
        profile.merge(profile.measure(pa.table({"score": pa.array(values, pa.float64())})))
    out = profile.to_dict()["score"]
    kept = np.array([1.0, 3.0, 10.0, 2.0])
    assert (out["count"], out["nulls"]) == (7, 3)  # NaN counts as null
    assert out["mean"] == kept.mean() and (out["min"], out["max"]) == (1.0, 10.0)
    assert out["quantiles"] == {
        k: pytest.approx(np.quantile(kept, q)) for k, q in profile_module.QUANTILES.items()
    }
    assert out["histogram"]["edges"][0] == 1.0 and out["histogram"]["edges"][-1] == 10.0
    assert out["histogram"]["counts"] == np.histogram(kept, bins=20, range=(1, 10))[0].tolist()
    assert "sampled" not in out


def test_bool_string_list_and_empty_columns():
    assert measure_column(pa.array([True, None, False, True])).trues == 2
    profile = ColumnProfile("text")
    profile.merge(measure_column(pa.array(["ab", None, "héllo"])))
    assert profile.to_dict() == {"type": "string", "count": 3, "nulls": 1, "mean_length": 3.5}
    lists = ColumnProfile("tests")
    lists.merge(measure_column(pa.array([[1, 2], [], None])))
    assert lists.to_dict() == {"type": "list", "count": 3, "nulls": 1, "mean_length": 1.0}
    empty = ColumnProfile("x")
    empty.merge(measure_column(pa.nulls(3)))  # all-null batch: type unknown until a typed batch
    empty.merge(measure_column(pa.array([4], pa.int64())))
    assert empty.to_dict()["type"] == "numeric" and empty.to_dict()["nulls"] == 3
    assert StageProfile(["a"]).to_dict() == {"a": {"type": "null", "count": 0, "nulls": 0}}


def test_reservoir_bounds_memory_and_keeps_exact_moments(monkeypatch):
    monkeypatch.setattr(profile_module, "SAMPLE_CAP", 1000)
    values = np.random.default_rng(0).normal(50, 10, 20_000)

    def build() -> ColumnProfile:
        profile = ColumnProfile("score")
        for chunk in np.array_split(values, 40):
            profile.merge(measure_column(pa.array(chunk)))
        return profile

    profile = build()
    out = profile.to_dict()
    assert len(profile.values()) == 1000 and out["sampled"] is True and out["sample_size"] == 1000
    assert out["count"] == 20_000 and out["mean"] == pytest.approx(values.mean())
    assert (out["min"], out["max"]) == (pytest.approx(values.min()), pytest.approx(values.max()))
    assert sum(out["histogram"]["counts"]) == pytest.approx(20_000, abs=20)  # scaled to the exact count
    # A uniform sample of 1000: the median within a few percent of the true one.
    assert out["quantiles"]["p50"] == pytest.approx(np.median(values), rel=0.03)
    assert build().to_dict() == out  # seeded: a rerun reports the same figures
