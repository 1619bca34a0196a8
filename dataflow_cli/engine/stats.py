"""Per-stage and per-run counters: what `stats.json`, `--json` and the summary table show."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StageStats:
    name: str
    op: str
    kind: str
    rows_in: int = 0
    rows_out: int = 0
    rows_dropped: int = 0
    dropped_by_reason: Counter = field(default_factory=Counter)
    seconds: float = 0.0  # time spent computing (not replaying checkpoints)
    batches_computed: int = 0
    batches_reused: int = 0  # taken from checkpoints of an earlier run
    llm: dict[str, Any] | None = None  # requests, cache hits, retries, errors, tokens, cost
    limits: dict[str, Any] | None = None  # what untrusted content ran under (Operator.run_limits)
    columns: dict[str, Any] = field(default_factory=dict)  # profiles of its columns (engine/profile.py)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dropped_by_reason"] = dict(self.dropped_by_reason.most_common())
        out["seconds"] = round(self.seconds, 4)
        return out


@dataclass
class RunStats:
    spec: str
    name: str
    output: str | None  # None: no row was kept, so no output file was written
    rejects: str | None  # None: no row was rejected, so no rejects file was written
    run_dir: str
    status: str = "running"
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_added_by_fanout: int = 0
    batches: int = 0
    seconds: float = 0.0
    stages: list[StageStats] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)  # quality gate results (engine/gates.py)
    stopped_by: dict[str, Any] | None = None  # the budget cap that stopped the run (cost/budget.py)
    budget: dict[str, Any] | None = None  # caps, spent, left (only with a budget)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "stages"}
        out["seconds"] = round(self.seconds, 4)
        out["rows_per_second"] = round(self.rows_per_second, 1)
        out["stages"] = [s.to_dict() for s in self.stages]
        return out
