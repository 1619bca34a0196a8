"""Read-only execution of untrusted SQL against SQLite files: the one guard every SQL operator uses.

A query written by a model is hostile until proven otherwise. `SqlGuard.execute(path, sql)`
runs it so that it can only read, only for a bounded time, and only return a bounded result:

- The file is opened through a read-only URI (`mode=ro`), with extensions off, `trusted_schema`
  off (functions named in a hostile file's views cannot run) and temporary storage in memory
  (a large sort writes no temporary file).
- Only statements that start with SELECT, WITH or VALUES are run; anything else is refused by
  name before SQLite sees it ("sql not read-only: VACUUM").
- SQLite's authorizer, consulted while the statement is compiled, allows reading tables,
  SELECT, recursive CTEs, ordinary functions and a short list of schema-introspection PRAGMA
  functions, and denies everything else: writes (a `WITH ... DELETE` included), DDL, ATTACH and
  DETACH (which VACUUM INTO needs), every other PRAGMA (`query_only` cannot be switched off),
  transactions and `load_extension`. `mode=ro` plus `PRAGMA query_only` alone is not enough:
  ATTACH and VACUUM INTO would still create files, and the query could turn `query_only` off.
  SQLite's attached-database limit is 0 as well, so ATTACH fails even without the authorizer.
- One statement only ("sql multiple statements"); trailing semicolons are fine.
- A time limit that really interrupts: a progress handler, called by SQLite every
  `check_every` virtual-machine steps on the thread that runs the query, aborts it once the
  deadline has passed (a runaway recursive CTE or cartesian join stops within the limit).
- At most `max_rows` rows are fetched ("sql too many rows"); a value (string or blob) may not
  exceed `max_value_bytes`, nor the SQL text `max_sql_bytes` (SQLite's own length limits), nor
  the text and blobs of a whole result `max_result_bytes` ("sql result too large": without it
  10,000 rows of 1 MB values would be 10 GB in memory). Rows are fetched in small chunks, the
  clock and the size checked after each: a row that is cheap for SQLite to make but large to
  copy (`zeroblob(900000)` per row) cannot outrun the limit between two progress-handler calls.
- With `isolation="process"` (what the operators use by default) queries run in a worker
  process per calling thread. SQLite looks at the progress handler only between steps of its
  virtual machine, and one step can take far longer than any limit (`printf('%.*c', 1e9, 'x')`
  builds a gigabyte in one call; `instr` and `replace` are quadratic in their inputs): a worker
  that outlasts the limit by `GRACE` (30 ms) is killed and restarted, so the limit holds for
  every query. The worker's address space is capped (`max_memory_mb`) and it gets a bare
  environment (no secret of this process is even present in it). `isolation="thread"` runs
  in this process: faster to start, but such a single step is not interrupted and memory is
  not capped.

The database file is never written: it is byte-identical after any run (the tests hash it),
and nothing is created beside it (a database in WAL mode with no log is opened immutable,
since a read-only open would create `-wal` and `-shm` files).

Connections are opened once per thread and file (keyed by the file's identity: device, inode,
size, modification time, so an edited file is reopened) and reused, which keeps the cost per
query near SQLite's own.

A result is an ordered list of typed row tuples (int, float, str, bytes or None as SQLite
returned them) plus the column count; a failed query carries a short, low-cardinality reason
("sql timeout", "sql error: no such column", "sql not read-only: ATTACH") and the full message
as detail. `SqlResult.fingerprint` groups results that hold the same rows in any order.
"""

from __future__ import annotations

import atexit
import hashlib
import marshal
import os
import re
import select
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

# SQLite authorizer action codes, by name (the module exposes them as SQLITE_<name>).
_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER "
        "CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX "
        "DROP_TEMP_TABLE DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA READ "
        "SELECT TRANSACTION UPDATE ATTACH DETACH ALTER_TABLE REINDEX ANALYZE CREATE_VTABLE "
        "DROP_VTABLE FUNCTION SAVEPOINT RECURSIVE"
    ).split()
    if hasattr(sqlite3, f"SQLITE_{name}")
}
_READ_ACTIONS = frozenset(
    getattr(sqlite3, f"SQLITE_{name}")
    for name in ("SELECT", "READ", "RECURSIVE")
    if hasattr(sqlite3, f"SQLITE_{name}")
)

# PRAGMAs that only describe the schema. Their table-valued forms (`pragma_table_info('t')`)
# are what a query may use; every other PRAGMA can change connection state.
READONLY_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "collation_list",
    }
)

# Functions a read-only query never needs: loading native code, the FTS3 tokenizer pointer
# trick, and the file functions of SQLite's shell (absent from most builds; denied if present).
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})

# First keywords of the statements a query may be (VALUES is a query in SQLite).
QUERY_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES"})
# First keywords of every other SQLite statement: refused by name before SQLite sees them.
OTHER_STATEMENT_KEYWORDS = frozenset(
    {
        "ALTER",
        "ANALYZE",
        "ATTACH",
        "BEGIN",
        "COMMIT",
        "CREATE",
        "DELETE",
        "DETACH",
        "DROP",
        "END",
        "EXPLAIN",
        "INSERT",
        "PRAGMA",
        "REINDEX",
        "RELEASE",
        "REPLACE",
        "ROLLBACK",
        "SAVEPOINT",
        "UPDATE",
        "VACUUM",
    }
)

TIMEOUT = "sql timeout"
TOO_MANY_ROWS = "sql too many rows"
RESULT_TOO_LARGE = "sql result too large"
MULTIPLE_STATEMENTS = "sql multiple statements"
EMPTY_SQL = "sql empty"
NOT_READ_ONLY = "sql not read-only"
NO_DATABASE = "sql database unreadable"

_CONNECTIONS_PER_THREAD = 32
# Rows fetched between two looks at the clock and the result size: small enough that a chunk of
# values at `max_value_bytes` stays a bounded copy, large enough to cost nothing on small results.
_FETCH_CHUNK = 32

# SQLite's limit categories (sqlite3.h: SQLITE_LIMIT_LENGTH 0, SQL_LENGTH 1, ATTACHED 7). The
# module names them from Python 3.11 only, together with Connection.setlimit; on 3.10 the limits
# are not set and the checks below stand alone: the authorizer refuses ATTACH, `check` the SQL
# length, and the value length falls back to SQLite's compiled maximum (1e9 bytes by default)
# plus, under process isolation, the worker's memory cap.
_LIMIT_LENGTH: int = getattr(sqlite3, "SQLITE_LIMIT_LENGTH", 0)
_LIMIT_SQL_LENGTH: int = getattr(sqlite3, "SQLITE_LIMIT_SQL_LENGTH", 1)
_LIMIT_ATTACHED: int = getattr(sqlite3, "SQLITE_LIMIT_ATTACHED", 7)


@dataclass(frozen=True)
class SqlLimits:
    """What one query may use. Every SQL operator takes these as params (see `GuardParams`)."""

    timeout: float = 5.0  # seconds of wall time for compiling, running and fetching one query
    max_rows: int = 10_000  # rows fetched at most; a larger result is an error, never truncated
    max_value_bytes: int = 1_000_000  # largest string or blob a query may build or read
    max_sql_bytes: int = 100_000  # longest SQL text accepted
    max_result_bytes: int = 64_000_000  # text and blob bytes of one whole result
    check_every: int = 1_000  # virtual-machine steps between two looks at the clock
    max_memory_mb: int = 2048  # address space of a worker process (process isolation only)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SqlResult:
    """One query's outcome: typed rows in SQLite's order, or why there are none.

    `error` is None on success, else a short reason (a stats counter); `detail` is the message
    that explains it (SQLite's, or the denied action).
    """

    columns: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: str | None = None
    detail: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def column_count(self) -> int:
        return len(self.columns)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def reason(self) -> str | None:
        """`error: detail` (the detail shortened), for a rejects file."""
        if self.error is None:
            return None
        return f"{self.error}: {_shorten(self.detail)}" if self.detail else self.error

    @property
    def fingerprint(self) -> str | None:
        """A hash of the column count and the rows as a multiset (order ignored; 600 and 600.0
        alike): results with equal fingerprints hold the same rows. It groups exact results; for
        a verdict use the equivalence rule, which also knows when order matters and compares
        floats within a tolerance."""
        if self.error is not None:
            return None
        # repr() of a row tells 1 from '1' from b'1' and escapes newlines; integral floats are
        # written as integers first (600.0 -> 600), only in rows holding a float.
        parts = sorted(
            repr(tuple(map(_canonical_float, row))) if float in map(type, row) else repr(row)
            for row in self.rows
        )
        digest = hashlib.sha256(f"{self.column_count}\n".encode())
        digest.update("\n".join(parts).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:16]


def _canonical_float(value: Any) -> Any:
    if type(value) is float and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Statement text ------------------------------------------------------------------------------
_SPACE_OR_COMMENT = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.S)
_WORD = re.compile(r"[A-Za-z_]+")


def _skip_space(sql: str, position: int = 0) -> int:
    """Where the text after whitespace and comments starts (the pattern matches the empty string)."""
    match = _SPACE_OR_COMMENT.match(sql, position)
    return match.end() if match else position


def leading_keyword(sql: str) -> str | None:
    """The statement's first keyword, upper-cased, after whitespace and comments (None when
    it does not start with a word, e.g. a parenthesis: SQLite then reports the syntax error)."""
    position = _skip_space(sql)
    match = _WORD.match(sql, position)
    return match.group().upper() if match else None


def strip_trailing_semicolons(sql: str) -> str:
    """`SELECT 1;;` is one statement to a person; SQLite's prepare would see two."""
    text = sql.rstrip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


# SQLite's messages name tables and columns; the reason keeps the kind of error only.
_ERROR_KINDS = (
    (re.compile(r"^no such column"), "no such column"),
    (re.compile(r"^no such table"), "no such table"),
    (re.compile(r"^no such function"), "no such function"),
    (re.compile(r"^ambiguous column name"), "ambiguous column name"),
    (re.compile(r"syntax error"), "syntax error"),
    (re.compile(r"^incomplete input"), "syntax error"),
    (re.compile(r"^unrecognized token"), "syntax error"),
    (re.compile(r"^wrong number of arguments"), "wrong number of arguments"),
    (re.compile(r"^misuse of (?:aggregate|window)"), "misuse of aggregate"),
    (re.compile(r"^(?:\d+\w* )?ORDER BY term out of range"), "order by term out of range"),
    (re.compile(r"^(?:\d+\w* )?GROUP BY term out of range"), "group by term out of range"),
    (re.compile(r"do not have the same number of result columns"), "set operation column count mismatch"),
    (re.compile(r"^sub-select returns \d+ columns"), "subquery column count mismatch"),
    (re.compile(r"^row value misused"), "row value misused"),
    (re.compile(r"^string or blob too big"), "value too big"),
    (re.compile(r"^too many"), "too many terms"),
    (re.compile(r"^Expression tree is too large"), "too many terms"),
    (re.compile(r"^parser stack overflow"), "too many terms"),
    (re.compile(r"^no such (?:module|collation sequence)"), "unsupported feature"),
    (re.compile(r"^(?:out of memory|database or disk is full)"), "out of memory"),
    (re.compile(r"^(?:file is not a database|database disk image is malformed)"), "database unreadable"),
    (re.compile(r"^unable to open database"), "database unreadable"),
    (re.compile(r"^(?:integer overflow|datatype mismatch)"), "value error"),
)


def error_kind(message: str) -> str:
    """The low-cardinality kind of an SQLite error message ("no such column")."""
    for pattern, kind in _ERROR_KINDS:
        if pattern.search(message):
            return kind
    # Unknown messages: drop quoted names and numbers so the counter stays small.
    generic = re.sub(r"\"[^\"]*\"|'[^']*'|`[^`]*`|\[[^\]]*\]|\d+", "", message.split(":")[0]).strip()
    return " ".join(generic.split())[:60] or "error"


# Guarded connections ---------------------------------------------------------------------------
def open_flags(path: Path) -> str:
    """URI flags that open `path` without writing anything: read-only, and for a database in
    WAL mode with no write-ahead log beside it, immutable too (a read-only open would otherwise
    create `-wal` and `-shm` files next to it)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return "mode=ro"
    wal = header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"
    if wal and not Path(f"{path}-wal").exists():
        return "mode=ro&immutable=1"
    return "mode=ro"


class _Guarded:
    """One read-only connection with its authorizer and progress handler, used by one thread."""

    def __init__(self, path: Path, limits: SqlLimits):
        self.limits = limits
        self.deadline = float("inf")
        self.timed_out = False
        self.denied: str | None = None
        uri = f"file:{quote(str(path.resolve()))}?{open_flags(path)}"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, cached_statements=64)
        try:
            self._configure()
        except BaseException:
            self.conn.close()
            raise

    def _configure(self) -> None:
        conn = self.conn
        if hasattr(conn, "enable_load_extension"):  # absent when Python's SQLite omits extensions
            conn.enable_load_extension(False)
        setlimit = getattr(conn, "setlimit", None)  # Python >= 3.11; see _LIMIT_* for 3.10
        if setlimit is not None:
            setlimit(_LIMIT_ATTACHED, 0)
            setlimit(_LIMIT_LENGTH, self.limits.max_value_bytes)
            setlimit(_LIMIT_SQL_LENGTH, self.limits.max_sql_bytes + 64)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Loads the schema now (a malformed file fails here, with a clear reason) and creates
        # the eponymous virtual tables a query may read (json_each, pragma_table_info, ...):
        # SQLite registers each on first use through an internal write to its schema table,
        # which the authorizer below would refuse.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        modules = [r[0] for r in conn.execute("SELECT name FROM pragma_module_list")]
        for name in [*modules, *(f"pragma_{p}" for p in READONLY_PRAGMAS)]:
            try:
                conn.execute(f'SELECT * FROM "{name}" LIMIT 0').fetchall()
            except sqlite3.Error:
                pass  # not an eponymous table (e.g. fts5 needs CREATE VIRTUAL TABLE): never usable
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._progress, self.limits.check_every)

    def _authorize(self, action: int, arg1: Any, arg2: Any, _db: Any, _trigger: Any) -> int:
        if action in _READ_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            if str(arg2).lower() not in DENIED_FUNCTIONS:
                return sqlite3.SQLITE_OK
            what = f"{str(arg2).lower()}()"
        elif action == sqlite3.SQLITE_PRAGMA:
            if str(arg1).lower() in READONLY_PRAGMAS:
                return sqlite3.SQLITE_OK
            what = f"PRAGMA {str(arg1).lower()}"
        else:
            what = _ACTION_NAMES.get(action, f"action {action}")
        if self.denied is None:
            self.denied = what
        return sqlite3.SQLITE_DENY

    def _progress(self) -> int:
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return 1  # non-zero: SQLite abandons the statement with SQLITE_INTERRUPT
        return 0

    def _fetch(self, cursor: sqlite3.Cursor, most: int) -> tuple[list[tuple[Any, ...]], SqlResult | None]:
        """Up to `most` rows, in chunks; after each chunk, the time and result-size limits."""
        rows: list[tuple[Any, ...]] = []
        size = 0
        while len(rows) < most:
            chunk = cursor.fetchmany(min(_FETCH_CHUNK, most - len(rows)))
            if not chunk:
                break
            rows.extend(chunk)
            size += sum(len(v) for row in chunk for v in row if isinstance(v, (str, bytes)))
            seconds = time.monotonic() - (self.deadline - self.limits.timeout)
            if size > self.limits.max_result_bytes:
                detail = f"more than {self.limits.max_result_bytes} bytes of text and blobs"
                return [], SqlResult(error=RESULT_TOO_LARGE, detail=detail, seconds=seconds)
            if time.monotonic() > self.deadline:
                detail = f"stopped after {seconds:.3f} s (limit {self.limits.timeout:g} s)"
                return [], SqlResult(error=TIMEOUT, detail=detail, seconds=seconds)
        return rows, None

    def run(self, sql: str, params: tuple = (), max_rows: int | None = None) -> SqlResult:
        limit = self.limits.max_rows if max_rows is None else max_rows
        started = time.monotonic()
        self.denied, self.timed_out = None, False
        self.deadline = started + self.limits.timeout
        cursor = None
        try:
            cursor = self.conn.execute(sql, params)
            columns = tuple(d[0] for d in cursor.description or ())
            rows, overrun = self._fetch(cursor, limit + 1)
            if overrun is not None:
                return overrun
        except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:
            message = str(exc)
            if "one statement" in message:
                return SqlResult(
                    error=MULTIPLE_STATEMENTS, detail=message, seconds=time.monotonic() - started
                )
            return SqlResult(error=f"sql error: {error_kind(message)}", detail=message)
        except sqlite3.Error as exc:
            message = str(exc)
            seconds = time.monotonic() - started
            if self.timed_out:
                detail = f"stopped after {seconds:.3f} s (limit {self.limits.timeout:g} s)"
                return SqlResult(error=TIMEOUT, detail=detail, seconds=seconds)
            if self.denied is not None:
                return SqlResult(error=f"{NOT_READ_ONLY}: {self.denied}", detail=message, seconds=seconds)
            if "decode" in message and "UTF-8" in message:
                raise _NotUtf8 from exc
            return SqlResult(error=f"sql error: {error_kind(message)}", detail=message, seconds=seconds)
        finally:
            self.deadline = float("inf")
            if cursor is not None:
                cursor.close()  # ends the read transaction: no lock outlives the query
        seconds = time.monotonic() - started
        if len(rows) > limit:
            return SqlResult(columns, [], TOO_MANY_ROWS, f"more than {limit} rows", seconds)
        return SqlResult(columns, rows, None, None, seconds)


class _NotUtf8(Exception):
    """A text value is not valid UTF-8: the query is run again, decoding with replacement."""


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def file_identity(path: str | Path) -> tuple[int, int, int, int]:
    """What changes when a file is edited or replaced: device, inode, size, mtime."""
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class _Local:
    """Runs queries in this process: one cached connection per thread and file."""

    def __init__(self, limits: SqlLimits):
        self.limits = limits
        self._local = threading.local()

    def _connection(self, path: str) -> _Guarded:
        cache: OrderedDict | None = getattr(self._local, "connections", None)
        if cache is None:
            cache = self._local.connections = OrderedDict()
        key = (path, file_identity(path))
        guarded = cache.get(key)
        if guarded is not None:
            cache.move_to_end(key)
            return guarded
        for stale in [k for k in cache if k[0] == key[0]]:  # the file changed: reopen it
            cache.pop(stale).conn.close()
        guarded = cache[key] = _Guarded(Path(path), self.limits)
        while len(cache) > _CONNECTIONS_PER_THREAD:
            cache.popitem(last=False)[1].conn.close()
        return guarded

    def close(self) -> None:
        cache = getattr(self._local, "connections", None)
        while cache:
            cache.popitem()[1].conn.close()

    def run(self, path: str, sql: str, params: tuple, max_rows: int | None) -> SqlResult:
        try:
            guarded = self._connection(path)
        except (OSError, sqlite3.Error) as exc:
            return SqlResult(error=NO_DATABASE, detail=f"{os.path.basename(path)}: {exc}")
        try:
            return guarded.run(sql, params, max_rows)
        except _NotUtf8:
            guarded.conn.text_factory = _lenient_text
            try:
                return guarded.run(sql, params, max_rows)
            finally:
                guarded.conn.text_factory = str
        except UnicodeEncodeError as exc:
            return SqlResult(error="sql error: invalid text", detail=str(exc))
        except MemoryError:
            return SqlResult(error="sql error: out of memory", detail="the result does not fit in memory")
        except (OverflowError, ValueError) as exc:
            return SqlResult(error=f"sql error: {type(exc).__name__}", detail=str(exc))


# Process isolation -------------------------------------------------------------------------------
# SQLite's progress handler runs between virtual-machine steps; a single step can run far longer
# (`printf('%.*c', 1e9, 'x')` builds a gigabyte in one call, `instr`/`replace` on long strings are
# quadratic). A worker process that outlasts the limit by GRACE is killed, so the limit holds for
# any query, and the worker's address space is capped.
GRACE = 0.03
_WORKER_START_TIMEOUT = 60.0


def _write_frame(stream: Any, payload: bytes) -> None:
    stream.write(len(payload).to_bytes(4, "little") + payload)
    stream.flush()


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int) -> bytes | None:
    header = _read_exactly(fd, 4)
    return None if header is None else _read_exactly(fd, int.from_bytes(header, "little"))


class _Worker:
    """A child process running `_Local` for one thread of this process."""

    def __init__(self, limits: SqlLimits):
        self.limits = limits
        self.process: subprocess.Popen | None = None

    def _start(self) -> None:
        _reap()
        # A bare environment: no secret of this process is even present in the worker. Only
        # this package's own folder is importable (not the current directory).
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": package_root, "PYTHONSAFEPATH": "1", "PATH": os.defpath}
        process = self.process = subprocess.Popen(
            [sys.executable, "-s", "-m", "dataflow_cli.sandbox.sql"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        _LIVE_WORKERS.add(self)
        assert process.stdin is not None and process.stdout is not None  # both are PIPEs
        _write_frame(process.stdin, marshal.dumps(self.limits.as_dict()))
        fd = process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], _WORKER_START_TIMEOUT)
        if not ready or _read_frame(fd) != b"ready":
            self.stop()
            raise OSError("the SQL worker process did not start")

    def stop(self) -> None:
        """Kill the worker now; it is reaped later, so a caller never waits for a dying
        process to free its memory."""
        process, self.process = self.process, None
        _LIVE_WORKERS.discard(self)
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        _reap(process)

    def run(self, path: str, sql: str, params: tuple, max_rows: int | None) -> SqlResult:
        if self.process is None or self.process.poll() is not None:
            self.stop()
            try:
                self._start()
            except OSError as exc:
                return SqlResult(error="sql worker failed", detail=str(exc))
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        started = time.monotonic()
        try:
            _write_frame(process.stdin, marshal.dumps((path, sql, tuple(params), max_rows)))
        except (OSError, ValueError) as exc:
            self.stop()
            return SqlResult(error="sql worker failed", detail=f"cannot send the query: {exc}")
        fd = process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self.limits.timeout + GRACE)
        if not ready:
            self.stop()  # one step of SQLite is running past the limit: only a kill stops it
            seconds = time.monotonic() - started
            detail = f"worker killed after {seconds:.3f} s (limit {self.limits.timeout:g} s)"
            return SqlResult(error=TIMEOUT, detail=detail, seconds=seconds)
        frame = _read_frame(fd)
        if frame is None:  # the worker died: out of memory, most likely
            self.stop()
            seconds = time.monotonic() - started
            return SqlResult(
                error="sql error: out of memory", detail="the worker process died", seconds=seconds
            )
        columns, rows, error, detail, seconds = marshal.loads(frame)
        return SqlResult(tuple(columns), rows, error, detail, seconds)


_LIVE_WORKERS: weakref.WeakSet = weakref.WeakSet()
_DYING: list[subprocess.Popen] = []
_DYING_LOCK = threading.Lock()


def _reap(process: subprocess.Popen | None = None) -> None:
    """Collect killed workers that have exited (and remember `process` until it has)."""
    with _DYING_LOCK:
        if process is not None:
            _DYING.append(process)
        _DYING[:] = [p for p in _DYING if p.poll() is None]


@atexit.register
def _stop_workers() -> None:
    for worker in list(_LIVE_WORKERS):
        worker.stop()
    for process in list(_DYING):
        process.wait()


def _stop_pairs(pairs: list[tuple[threading.Thread, _Worker]], lock: threading.Lock) -> None:
    with lock:
        workers = [w for _, w in pairs]
        pairs.clear()
    for worker in workers:
        worker.stop()


class _Workers:
    """One worker process per thread of this process (started on first use); a worker whose
    thread has ended is stopped when the next one starts, the rest when the guard is closed or
    collected, or at exit."""

    def __init__(self, limits: SqlLimits):
        self.limits = limits
        self._local = threading.local()
        self._pairs: list[tuple[threading.Thread, _Worker]] = []  # mutated in place only
        self._lock = threading.Lock()
        weakref.finalize(self, _stop_pairs, self._pairs, self._lock)

    def run(self, path: str, sql: str, params: tuple, max_rows: int | None) -> SqlResult:
        worker = getattr(self._local, "worker", None)
        if worker is None:
            worker = self._local.worker = _Worker(self.limits)
            with self._lock:
                orphans = [w for t, w in self._pairs if not t.is_alive()]
                self._pairs[:] = [(t, w) for t, w in self._pairs if t.is_alive()]
                self._pairs.append((threading.current_thread(), worker))
            for orphan in orphans:
                orphan.stop()
        return worker.run(path, sql, params, max_rows)

    def close(self) -> None:
        _stop_pairs(self._pairs, self._lock)


def _serve() -> None:
    """The worker process: read limits, then answer queries until stdin closes."""
    stdin, stdout = sys.stdin.buffer.fileno(), sys.stdout.buffer
    frame = _read_frame(stdin)
    if frame is None:
        return
    limits = SqlLimits(**marshal.loads(frame))
    try:
        import resource

        cap = limits.max_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):
        pass  # no address-space limits on this platform: the time limit still holds
    runner = _Local(limits)
    _write_frame(stdout, b"ready")
    while (frame := _read_frame(stdin)) is not None:
        path, sql, params, max_rows = marshal.loads(frame)
        r = runner.run(path, sql, params, max_rows)
        try:
            payload = marshal.dumps((r.columns, r.rows, r.error, r.detail, r.seconds))
        except ValueError as exc:  # a value marshal cannot carry
            payload = marshal.dumps(((), [], "sql error: value error", str(exc), r.seconds))
        _write_frame(stdout, payload)


class SqlGuard:
    """Runs untrusted SQL read-only under `limits`; thread-safe.

    `isolation="thread"` runs queries in this process (a connection per thread and file);
    `"process"` in one worker process per calling thread, killed and restarted when a query
    outlasts the limit by `GRACE`, with its address space capped at `max_memory_mb`.
    """

    def __init__(self, limits: SqlLimits | None = None, isolation: str = "thread"):
        if isolation not in ("thread", "process"):
            raise ValueError(f"isolation must be `thread` or `process`, not `{isolation}`")
        self.limits = limits or SqlLimits()
        self.isolation = isolation
        self._runner: _Local | _Workers = (
            _Workers(self.limits) if isolation == "process" else _Local(self.limits)
        )

    def close(self) -> None:
        """Stop worker processes (process isolation) or close this thread's connections."""
        self._runner.close()

    def check(self, sql: Any) -> SqlResult | None:
        """Why `sql` cannot be run without asking SQLite (None when it may be tried)."""
        if not isinstance(sql, str):
            return SqlResult(error=EMPTY_SQL, detail="no SQL text")
        if "\x00" in sql:
            return SqlResult(error="sql error: null character", detail="the SQL contains a NUL character")
        text = strip_trailing_semicolons(sql)
        keyword = leading_keyword(text)
        if keyword is None and not text[_skip_space(text) :]:
            return SqlResult(error=EMPTY_SQL, detail="only whitespace or comments")
        if keyword in OTHER_STATEMENT_KEYWORDS:
            return SqlResult(error=f"{NOT_READ_ONLY}: {keyword}", detail=f"{keyword} statements are refused")
        if len(text.encode("utf-8", "surrogatepass")) > self.limits.max_sql_bytes:
            return SqlResult(error="sql too long", detail=f"more than {self.limits.max_sql_bytes} bytes")
        return None

    def execute(self, path: str | Path, sql: Any, *, max_rows: int | None = None) -> SqlResult:
        """Run one read-only query against the SQLite file at `path`."""
        refused = self.check(sql)
        if refused is not None:
            return refused
        return self._runner.run(os.fspath(path), strip_trailing_semicolons(sql), (), max_rows)

    def explain(self, path: str | Path, sql: Any) -> SqlResult:
        """Compile `sql` (as `EXPLAIN`, which does not run it) under the same checks; ok means
        SQLite accepts it against this database's schema."""
        refused = self.check(sql)
        if refused is not None:
            return refused
        result = self._runner.run(os.fspath(path), "EXPLAIN " + strip_trailing_semicolons(sql), (), 1_000_000)
        return SqlResult(error=result.error, detail=result.detail, seconds=result.seconds)

    def query(self, path: str | Path, sql: str, params: tuple = (), max_rows: int | None = None) -> SqlResult:
        """Trusted SQL with parameters (schema extraction), under the same guard and limits."""
        return self._runner.run(os.fspath(path), sql, params, max_rows)


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (tests and benchmarks check databases stay byte-identical)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = [
    "EMPTY_SQL",
    "MULTIPLE_STATEMENTS",
    "NOT_READ_ONLY",
    "TIMEOUT",
    "RESULT_TOO_LARGE",
    "TOO_MANY_ROWS",
    "SqlGuard",
    "SqlLimits",
    "SqlResult",
    "error_kind",
    "file_identity",
    "hash_file",
    "leading_keyword",
]


if __name__ == "__main__":
    _serve()
