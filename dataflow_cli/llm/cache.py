"""Persistent request cache: SQLite in WAL mode, keyed by a hash of model, messages and
sampling params (see `Request.cache_key`).

Every completion is committed as soon as it arrives (the engine commits the answers of one
event-loop step together), so a killed run re-sends at most the requests that were in flight.
WAL lets readers (e.g. `dataflow cache stats`) run while a run writes. One connection per thread: sqlite3 connections must not cross threads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from dataflow_cli.llm.types import Completion

SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT,
    cost REAL,
    created REAL NOT NULL
)
"""


# 8 bound values per row: 100 rows stay under SQLite's oldest limit of 999 values a statement.
ROWS_PER_INSERT = 100


@lru_cache(maxsize=ROWS_PER_INSERT)
def _insert(rows: int) -> str:
    return "INSERT OR REPLACE INTO completions VALUES " + ",".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)


def default_cache_path() -> Path:
    """`$DATAFLOW_CACHE_DIR/llm-cache.sqlite`, else `.dataflow/llm-cache.sqlite` in the working
    directory (next to the run directories, so a project carries its own cache)."""
    root = os.environ.get("DATAFLOW_CACHE_DIR")
    return (Path(root) if root else Path(".dataflow")) / "llm-cache.sqlite"


class RequestCache:
    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connection() as db:
                db.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            from dataflow_cli.errors import DataflowError

            raise DataflowError(
                f"cannot open the request cache `{path}`: {exc}",
                hint="set DATAFLOW_CACHE_DIR to a writable directory (or `cache: false` on the backend)",
            ) from None

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode is durable against process crashes (the case we promise);
            # an OS crash may lose the last commits, which are then simply re-requested.
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def get(self, key: str) -> Completion | None:
        row = (
            self._connection()
            .execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason, cost FROM completions WHERE key = ?",
                (key,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Completion(row[0], row[1], row[2], row[3], row[4], cached=True)

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        db = self._connection()
        for start in range(0, len(keys), 500):  # SQLite limits bound parameters per statement
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in db.execute(
                "SELECT key, text, prompt_tokens, completion_tokens, finish_reason, cost "
                f"FROM completions WHERE key IN ({marks})",
                chunk,
            ):
                found[row[0]] = Completion(row[1], row[2], row[3], row[4], row[5], cached=True)
        return found

    def put(self, key: str, model: str, completion: Completion) -> None:
        self.put_many([(key, model, completion)])

    def put_many(self, items: list[tuple[str, str, Completion]]) -> None:
        """Store completions in one transaction. Rows go in as multi-row INSERTs of up to
        `ROWS_PER_INSERT`: `executemany` steps SQLite once per row, and each step gives up the
        GIL, which the engine's event loop thread may then wait milliseconds to get back while
        executor threads run Python."""
        if not items:
            return
        now = time.time()
        db = self._connection()
        chunks = [items[i : i + ROWS_PER_INSERT] for i in range(0, len(items), ROWS_PER_INSERT)]
        if len(chunks) > 1:
            db.execute("BEGIN")
        try:
            for chunk in chunks:
                values: list[Any] = []
                for key, model, c in chunk:
                    values += (key, model, c.text, c.prompt_tokens, c.completion_tokens)
                    values += (c.finish_reason, c.cost, now)
                db.execute(_insert(len(chunk)), values)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if len(chunks) > 1:
            db.execute("COMMIT")

    def stats(self) -> dict[str, Any]:
        db = self._connection()
        total, prompt, completion = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM completions"
        ).fetchone()
        models = dict(
            db.execute("SELECT model, COUNT(*) FROM completions GROUP BY model ORDER BY 2 DESC").fetchall()
        )
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "path": str(self.path),
            "entries": total,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "bytes": size,
            "models": models,
        }

    def clear(self, model: str | None = None) -> int:
        db = self._connection()
        if model is None:
            removed = db.execute("DELETE FROM completions").rowcount
        else:
            removed = db.execute("DELETE FROM completions WHERE model = ?", (model,)).rowcount
        db.execute("VACUUM")
        return removed

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
