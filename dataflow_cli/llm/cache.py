"""Persistent request cache: SQLite in WAL mode, keyed by a hash of model, messages and
sampling params (see `Request.cache_key`).

Every completion is committed as soon as it arrives (the engine commits the answers that
arrive while its previous commit runs together), so a killed run re-sends at most the requests
that were in flight. WAL lets readers (e.g. `dataflow cache stats`) run while a run writes.
One connection per thread: sqlite3 connections must not cross threads.

Checkpoints (copying the WAL back into the database file, with an fsync) cost tens of
milliseconds: SQLite would run one inside every ~1000th page of commits, holding up the
answers of that commit. Here commits never checkpoint; a thread of their own does, in PASSIVE
mode, which runs beside writers and readers.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
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
# Rows written between checkpoints: each is about a page of WAL (its key lands in a random
# index page), and 1000 pages is SQLite's own automatic checkpoint interval.
CHECKPOINT_ROWS = 1000


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
        self._lock = threading.Lock()
        self._unchecked = 0  # rows written since the last checkpoint started
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpointing: Future | None = None
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
            db.execute("PRAGMA wal_autocheckpoint=0")  # see the module docstring
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
        self._after_write(len(items))

    def _after_write(self, rows: int) -> None:
        """Start a checkpoint on the checkpoint thread when enough rows were written since the
        last one, unless one still runs."""
        with self._lock:
            self._unchecked += rows
            if self._unchecked < CHECKPOINT_ROWS or (self._checkpointing and not self._checkpointing.done()):
                return
            self._unchecked = 0
            if self._checkpointer is None:
                self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="dataflow-cache-checkpoint")
            self._checkpointing = self._checkpointer.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:  # busy or failing: the next one catches up, and closing checkpoints too
            pass
        finally:
            self._close_thread_connection()

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
        """Close this thread's connection (and stop the checkpoint thread)."""
        with self._lock:
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.shutdown(wait=True)
        self._close_thread_connection()

    def _close_thread_connection(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
