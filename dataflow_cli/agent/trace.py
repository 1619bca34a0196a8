"""The agent's trace: one JSON line per step and per model call, written beside the spec.

Each step of the agent is a unit with inputs and outputs; recording both (and the time it
took) lets a user see why the agent chose what it chose, and lets a test replay one step.
Lines are appended and flushed as they happen, so a crashed or interrupted run keeps its trace.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class Trace:
    def __init__(self, path: Path | None):
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")

    def record(self, step: str, **fields: Any) -> dict[str, Any]:
        event = {"step": step, "at": round(time.time(), 3), **fields}
        self.events.append(event)
        if self._file is not None:
            self._file.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self._file.flush()
        return event

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Timer:
    """`with Timer() as t: ...; t.seconds`"""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.started, 4)
