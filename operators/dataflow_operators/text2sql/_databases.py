"""Finding SQLite databases by `db_id` in a folder laid out flat or the Spider/BIRD way."""

from __future__ import annotations

import re
from pathlib import Path

from dataflow_cli.errors import DataflowError

SUFFIXES = (".sqlite", ".db", ".sqlite3")

# A db_id names a file inside the folder, never a path out of it.
_DB_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


class UnknownDatabase(ValueError):
    """No database file for a db_id; the message is a short reject reason."""


def database_root(db_root: str, base_dir: Path | None) -> Path:
    """`db_root` resolved against the spec file's folder (or the current one)."""
    path = Path(db_root).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def check_root(root: Path) -> Path:
    if not root.is_dir():
        raise DataflowError(
            f"database folder `{root}` does not exist",
            hint="set `db_root` to a folder holding `<db_id>.sqlite` or `<db_id>/<db_id>.sqlite` files "
            "(relative paths are relative to the spec file)",
        )
    return root


def resolve_database(root: Path, db_id: object) -> Path:
    """The file of `db_id`: `<root>/<db_id>.sqlite` (flat) or `<root>/<db_id>/<db_id>.sqlite`
    (Spider, BIRD); `.db` and `.sqlite3` are accepted too."""
    if not isinstance(db_id, str) or not _DB_ID.match(db_id) or ".." in db_id:
        raise UnknownDatabase("invalid db_id")
    for suffix in SUFFIXES:
        for candidate in (root / f"{db_id}{suffix}", root / db_id / f"{db_id}{suffix}"):
            if candidate.is_file():
                return candidate
    raise UnknownDatabase("unknown db_id")


def list_databases(root: Path) -> dict[str, Path]:
    """Every database in `root`, by db_id, in name order (both layouts)."""
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        if child.is_file() and child.suffix in SUFFIXES:
            found.setdefault(child.stem, child)
        elif child.is_dir():
            for suffix in SUFFIXES:
                inner = child / f"{child.name}{suffix}"
                if inner.is_file():
                    found.setdefault(child.name, inner)
                    break
    return dict(sorted(found.items()))


def root_identity(root: Path) -> list[dict]:
    """Path, size and mtime of every database under `root`: part of a stage's fingerprint, so
    an edited database reruns the stages that read it."""
    if not root.is_dir():
        return [{"path": str(root), "missing": True}]
    out = []
    for db_id, path in list_databases(root).items():
        stat = path.stat()
        out.append({"db_id": db_id, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return out
