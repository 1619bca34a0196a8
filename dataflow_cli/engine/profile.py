"""Column profiles: what the values a stage wrote look like, for `stats.json`, gates and reports.

Each stage profiles the columns it writes (evaluate/generate/filter: its outputs; refine: the
rewritten columns) plus any column one of its gates names, over the rows that *left* the stage.
A batch is measured where the executor applies the stage's delta (computed or replayed from a
checkpoint, so a resumed run has the same profiles) and merged in input order when the batch is
accounted.

count, nulls, mean, min, max, true counts and mean lengths are exact. Quantiles and the 20-bin
histogram of a numeric column come from its values, kept as float64 (8 bytes per row): exact up
to `SAMPLE_CAP` values per column; beyond that from a uniform reservoir sample of that size
(Vitter's algorithm R, seeded per column so a rerun gives the same figures), with the histogram
counts scaled to the exact count and `"sampled": true` in the profile. NaN counts as null.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SAMPLE_CAP = 1_000_000  # values kept per numeric column: 8 MB
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
BINS = 20


def _kind(dtype: pa.DataType) -> str | None:
    if pa.types.is_null(dtype):
        return None  # an all-null batch says nothing about the column's type
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return "list"
    return "other"


@dataclass
class BatchColumn:
    """One column of one batch, measured (small: the numeric values are the only per-row part)."""

    kind: str | None
    count: int
    nulls: int
    trues: int = 0
    length_sum: int = 0
    values: np.ndarray | None = None  # non-null numeric values, float64


def measure_column(column: pa.Array | pa.ChunkedArray) -> BatchColumn:
    kind = _kind(column.type)
    count = len(column)
    nulls = column.null_count
    if kind == "numeric":
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        values = values[~np.isnan(values)]  # nulls come back as NaN
        return BatchColumn(kind, count, count - len(values), values=values)
    if kind == "bool":
        return BatchColumn(kind, count, nulls, trues=int(pc.sum(column).as_py() or 0))
    if kind == "string":
        return BatchColumn(kind, count, nulls, length_sum=int(pc.sum(pc.utf8_length(column)).as_py() or 0))
    if kind == "list":
        return BatchColumn(
            kind, count, nulls, length_sum=int(pc.sum(pc.list_value_length(column)).as_py() or 0)
        )
    return BatchColumn(kind, count, nulls)


@dataclass
class ColumnProfile:
    """A column's running profile over every accounted batch."""

    name: str
    kind: str | None = None
    count: int = 0
    nulls: int = 0
    trues: int = 0
    length_sum: int = 0
    total: float = 0.0  # sum of the non-null numeric values
    low: float | None = None
    high: float | None = None
    seen: int = 0  # non-null numeric values merged so far
    _chunks: list[np.ndarray] = field(default_factory=list)
    _sample: np.ndarray | None = None  # the reservoir, once more than SAMPLE_CAP values were seen
    _rng: np.random.Generator | None = None

    def merge(self, part: BatchColumn) -> None:
        if part.kind is not None:
            if self.kind is None:
                self.kind = part.kind
            elif self.kind != part.kind:
                self.kind = "other"  # batches disagree (a plugin returning mixed types)
        self.count += part.count
        self.nulls += part.nulls
        self.trues += part.trues
        self.length_sum += part.length_sum
        values = part.values
        if values is not None and len(values):
            self.total += float(values.sum())
            lo, hi = float(values.min()), float(values.max())
            self.low = lo if self.low is None else min(self.low, lo)
            self.high = hi if self.high is None else max(self.high, hi)
            self._keep(values)

    def _keep(self, values: np.ndarray) -> None:
        if self._sample is None and self.seen + len(values) <= SAMPLE_CAP:
            self._chunks.append(values)
            self.seen += len(values)
            return
        if self._sample is None:
            kept = np.concatenate([*self._chunks, values[: SAMPLE_CAP - self.seen]])
            values = values[SAMPLE_CAP - self.seen :]
            self._chunks = []
            self._sample, self.seen = kept, len(kept)
            seed = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "little")
            self._rng = np.random.default_rng(seed)
        assert self._rng is not None
        # Algorithm R: the t-th value (0-based) replaces a random slot with probability cap/(t+1).
        t = np.arange(self.seen, self.seen + len(values))
        slots = self._rng.integers(0, t + 1)
        accept = slots < SAMPLE_CAP
        self._sample[slots[accept]] = values[accept]
        self.seen += len(values)

    # Reading ---------------------------------------------------------------------------
    def values(self) -> np.ndarray:
        """The kept values (all of them, or the reservoir sample)."""
        if self._sample is not None:
            return self._sample
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.empty(0)

    @property
    def sampled(self) -> bool:
        return self._sample is not None

    @property
    def non_null(self) -> int:
        return self.count - self.nulls

    @property
    def mean(self) -> float | None:
        return self.total / self.non_null if self.kind == "numeric" and self.non_null else None

    def quantile(self, q: float) -> float | None:
        values = self.values()
        return float(np.quantile(values, q)) if len(values) else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind or "null", "count": self.count, "nulls": self.nulls}
        if self.kind == "bool":
            out["true"] = self.trues
        elif self.kind in ("string", "list"):
            out["mean_length"] = round(self.length_sum / self.non_null, 4) if self.non_null else None
        elif self.kind == "numeric":
            values = self.values()
            out["mean"] = _num(self.mean)
            out["min"], out["max"] = _num(self.low), _num(self.high)
            if len(values):
                qs = np.quantile(values, list(QUANTILES.values()))
                out["quantiles"] = {k: _num(float(v)) for k, v in zip(QUANTILES, qs, strict=True)}
                counts, edges = np.histogram(values, bins=BINS, range=(self.low, self.high))  # type: ignore[arg-type]
                if self.sampled:  # scaled so the bins add up to the exact number of values
                    counts = np.round(counts * (self.non_null / len(values))).astype(np.int64)
                out["histogram"] = {"edges": [_num(float(e)) for e in edges], "counts": counts.tolist()}
            else:
                out["quantiles"], out["histogram"] = None, None
            if self.sampled:
                out["sampled"] = True
                out["sample_size"] = len(values)
        return out


def _num(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


class StageProfile:
    """The profiles of one stage's columns."""

    def __init__(self, columns: list[str]):
        self.columns = list(dict.fromkeys(columns))
        self.profiles = {name: ColumnProfile(name) for name in self.columns}

    def measure(self, table: pa.Table) -> dict[str, BatchColumn]:
        """Measure a batch as it leaves the stage (runs on worker threads; touches no state)."""
        return {
            name: measure_column(table.column(name)) for name in self.columns if name in table.column_names
        }

    def merge(self, measured: dict[str, BatchColumn] | None) -> None:
        for name, part in (measured or {}).items():
            self.profiles[name].merge(part)

    def to_dict(self) -> dict[str, Any]:
        return {name: p.to_dict() for name, p in self.profiles.items()}


__all__ = ["SAMPLE_CAP", "BatchColumn", "ColumnProfile", "StageProfile", "measure_column"]
