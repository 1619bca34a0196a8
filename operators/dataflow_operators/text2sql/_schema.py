"""Schema extraction (tables, columns, types, keys, sample values, row counts) and its renderings.

Extraction reads the database through the read-only guard, like every query, and is cached per
database file identity (path, device, inode, size, mtime): an edited file is read again.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.sandbox.sql import SqlGuard, file_identity

FORMATS = ("ddl", "compact")
SAMPLE_CHARS = 40  # longer sample values are cut in prompts

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words that must be quoted to be used as names (a common subset of SQLite's keywords).
_KEYWORDS = frozenset(
    """abort action add after all alter and as asc attach autoincrement before begin between by
    cascade case cast check collate column commit conflict constraint create cross current
    current_date current_time current_timestamp database default deferrable deferred delete desc
    detach distinct do drop each else end escape except exclusive exists explain fail filter
    following for foreign from full glob group having if ignore immediate in index indexed
    initially inner insert instead intersect into is isnull join key left like limit match natural
    no not nothing notnull null of offset on or order outer over partition plan pragma preceding
    primary query raise range recursive references regexp reindex release rename replace restrict
    right rollback row rows savepoint select set table temp temporary then to transaction trigger
    unbounded union unique update using vacuum values view virtual when where window with without""".split()
)


def quote_name(name: str) -> str:
    """`name` as an SQL identifier, quoted only when it has to be."""
    if _PLAIN.match(name) and name.lower() not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Column:
    name: str
    type: str
    not_null: bool = False
    primary_key: bool = False
    samples: list[Any] = field(default_factory=list)


@dataclass
class ForeignKey:
    columns: list[str]
    table: str
    references: list[str]


@dataclass
class Table:
    name: str
    kind: str  # "table" or "view"
    columns: list[Column]
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    row_count: int | None = None


@dataclass
class Schema:
    db_id: str
    tables: list[Table]

    def render(self, fmt: str = "ddl", samples: bool = True) -> str:
        return self.ddl(samples) if fmt == "ddl" else self.compact(samples)

    def ddl(self, samples: bool = True) -> str:
        """CREATE statements, one per table, with sample values and row counts as comments."""
        blocks = []
        for table in self.tables:
            if table.kind == "view":
                names = ", ".join(quote_name(c.name) for c in table.columns)
                blocks.append(f"-- view {quote_name(table.name)}({names})")
                continue
            entries: list[tuple[str, str]] = []
            keys = [c for c in table.columns if c.primary_key]
            for column in table.columns:
                code = f"{quote_name(column.name)} {column.type or 'ANY'}".rstrip()
                if column.primary_key and len(keys) == 1:
                    code += " PRIMARY KEY"
                if column.not_null and not column.primary_key:
                    code += " NOT NULL"
                comment = f"examples: {render_values(column.samples)}" if samples and column.samples else ""
                entries.append((code, comment))
            if len(keys) > 1:
                entries.append((f"PRIMARY KEY ({', '.join(quote_name(c.name) for c in keys)})", ""))
            for fk in table.foreign_keys:
                local = ", ".join(quote_name(c) for c in fk.columns)
                remote = ", ".join(quote_name(c) for c in fk.references)
                entries.append((f"FOREIGN KEY ({local}) REFERENCES {quote_name(fk.table)} ({remote})", ""))
            lines = [f"CREATE TABLE {quote_name(table.name)} ("]
            for i, (code, comment) in enumerate(entries):
                comma = "," if i < len(entries) - 1 else ""
                lines.append(f"  {code}{comma}" + (f"  -- {comment}" if comment else ""))
            count = f"  -- {table.row_count} rows" if table.row_count is not None else ""
            lines.append(f");{count}")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    def compact(self, samples: bool = True) -> str:
        """One line per table (columns with types and keys), then sample values per column."""
        lines = []
        for table in self.tables:
            parts = []
            for column in table.columns:
                text = f"{quote_name(column.name)} {column.type or 'ANY'}".rstrip()
                if column.primary_key:
                    text += " PK"
                for fk in table.foreign_keys:
                    if column.name in fk.columns:
                        ref = fk.references[fk.columns.index(column.name)]
                        text += f" -> {quote_name(fk.table)}.{quote_name(ref)}"
                parts.append(text)
            what = "view " if table.kind == "view" else ""
            count = f" [{table.row_count} rows]" if table.row_count is not None else ""
            lines.append(f"{what}{quote_name(table.name)}({', '.join(parts)}){count}")
            if samples:
                for column in table.columns:
                    if column.samples:
                        lines.append(f"  {quote_name(column.name)}: {render_values(column.samples)}")
        return "\n".join(lines)

    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]


def render_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<blob {len(value)} bytes>"
    if isinstance(value, str):
        text = value if len(value) <= SAMPLE_CHARS else value[: SAMPLE_CHARS - 1] + "…"
        return "'" + " ".join(text.split()).replace("'", "''") + "'"
    return repr(value)


def render_values(values: list[Any]) -> str:
    return ", ".join(render_value(v) for v in values)


class SchemaError(RuntimeError):
    """The schema could not be read; the message is a short reason."""


_CACHE: dict[tuple, Schema] = {}
_LOCK = threading.Lock()


def extract_schema(path: Path, db_id: str, guard: SqlGuard, sample_values: int = 3) -> Schema:
    """The schema of the database at `path` (cached per file identity and sample count)."""
    key = (str(path.resolve()), file_identity(path), db_id, sample_values)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    schema = _read_schema(path, db_id, guard, sample_values)
    with _LOCK:
        _CACHE[key] = schema
    return schema


def _query(guard: SqlGuard, path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    result = guard.query(path, sql, params)
    if not result.ok:
        raise SchemaError(f"cannot read schema: {result.error}")
    return result.rows


def _read_schema(path: Path, db_id: str, guard: SqlGuard, sample_values: int) -> Schema:
    objects = _query(
        guard,
        path,
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )
    tables = []
    for name, kind in objects:
        info = _query(
            guard, path, 'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid', (name,)
        )
        columns = [Column(c, t or "", bool(nn), bool(pk)) for c, t, nn, pk in info]
        table = Table(name, kind, columns)
        if kind == "table":
            table.foreign_keys = _foreign_keys(guard, path, name)
            count = guard.query(path, f"SELECT count(*) FROM {quote_name(name)}")
            table.row_count = count.rows[0][0] if count.ok else None
        if sample_values > 0:
            for column in columns:
                sql = (
                    f"SELECT DISTINCT {quote_name(column.name)} FROM {quote_name(name)} "
                    f"WHERE {quote_name(column.name)} IS NOT NULL LIMIT ?"
                )
                result = guard.query(path, sql, (sample_values,))
                column.samples = [r[0] for r in result.rows] if result.ok else []
        tables.append(table)
    return Schema(db_id, tables)


def _foreign_keys(guard: SqlGuard, path: Path, table: str) -> list[ForeignKey]:
    rows = _query(
        guard,
        path,
        'SELECT id, seq, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq',
        (table,),
    )
    grouped: dict[int, ForeignKey] = {}
    for fk_id, _seq, parent, local, remote in rows:
        fk = grouped.setdefault(fk_id, ForeignKey([], parent, []))
        fk.columns.append(local)
        fk.references.append(remote)
    for fk in grouped.values():
        if any(r is None for r in fk.references):  # `REFERENCES parent` alone: the parent's key
            keys = _query(
                guard, path, "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (fk.table,)
            )
            names = [k[0] for k in keys]
            fk.references = [
                r if r is not None else (names[i] if i < len(names) else "rowid")
                for i, r in enumerate(fk.references)
            ]
    return list(grouped.values())
