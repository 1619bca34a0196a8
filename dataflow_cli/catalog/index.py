"""The cached catalogue: every installed operator described once, reused until something changes.

Describing the operators means importing every operator module (pandas, pyarrow, jinja2, ...;
about a second for the built-ins), which `operators list` and `operators search` should not pay
on every call. The descriptions and the search index are stored as JSON under the cache dir,
stamped with a signature of what could change them:

- the entry points (name, target, distribution and its version), after `DATAFLOW_PLUGINS`;
- the size and mtime of every source file in the packages that hold the operators and in
  `dataflow_cli` (an edited docstring in an editable install, a changed shared params base);
- the mtime of every site-packages directory (installing or removing a package touches it,
  which also covers a plugin whose missing dependency just got installed);
- the Python and dataflow versions.

Computing the signature stats a few hundred files (milliseconds) and imports nothing. A missing,
corrupt or unwritable cache only costs the rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dataflow_cli import registry

FORMAT = 1
_MAX_FILES_PER_PACKAGE = 5000  # beyond that a package is fingerprinted by its version alone
_SOURCE_SUFFIXES = (".py", ".jinja", ".json", ".txt", ".yaml")

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """`$DATAFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/dataflow` (`~/.cache/dataflow`): the catalogue
    describes the environment, not a project, so it does not go in the working directory."""
    root = os.environ.get("DATAFLOW_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dataflow"


def cache_path() -> Path:
    # One file per environment: two venvs sharing a home must not evict each other's catalogue.
    env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return cache_dir() / f"operators-{env}.json"


def signature(entries: dict[str, registry.Entry] | None = None) -> str:
    from dataflow_cli import __version__

    entries = registry.entries() if entries is None else entries
    digest = hashlib.sha256()

    def add(*parts: object) -> None:
        digest.update(repr(parts).encode())

    add(FORMAT, __version__, sys.version)
    versions: dict[str, str] = {}
    packages: set[str] = {"dataflow_cli"}
    for name, entry in entries.items():
        dist = entry.entry_point.dist
        if entry.distribution not in versions:
            versions[entry.distribution] = dist.version if dist is not None else ""
        add(name, entry.entry_point.value, entry.distribution, versions[entry.distribution])
        packages.add(entry.entry_point.value.split(":", 1)[0].split(".", 1)[0])
    for package in sorted(packages):
        add(package, *_source_stamp(package))
    for path in _site_dirs():
        try:
            add(path, os.stat(path).st_mtime_ns)
        except OSError:
            add(path, None)
    return digest.hexdigest()


def _site_dirs() -> list[str]:
    """The directories packages get installed into. Only these: the rest of `sys.path` differs
    between `dataflow`, `python -c` and pytest, which would make them evict each other's cache."""
    import site

    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    dirs += [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    return sorted(set(dirs))


def _source_stamp(package: str) -> list[tuple[str, int, int]]:
    """(file, size, mtime) of a top-level package's source files, found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin and os.path.isfile(spec.origin):
        st = os.stat(spec.origin)
        return [(spec.origin, st.st_size, st.st_mtime_ns)]
    stamp: list[tuple[str, int, int]] = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for file in sorted(files):
                if file.endswith(_SOURCE_SUFFIXES):
                    path = os.path.join(folder, file)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    stamp.append((path, st.st_size, st.st_mtime_ns))
            if len(stamp) > _MAX_FILES_PER_PACKAGE:
                return [(root, -1, -1)]
    return stamp


def build(entries: dict[str, registry.Entry]) -> dict[str, Any]:
    """Import and describe every operator; a plugin that fails to load is listed with its error."""
    from dataflow_cli.catalog.describe import describe_class, domain_of
    from dataflow_cli.catalog.search import build_index
    from dataflow_cli.errors import DataflowError

    def failed(name: str, entry: registry.Entry, error: str) -> dict[str, Any]:
        return {
            "name": name,
            "kind": None,
            "scope": None,
            "domain": domain_of(entry),
            "distribution": entry.distribution,
            "entry_point": entry.entry_point.value,
            "status": "failed",
            "error": error,
            "summary": "",
        }

    operators = []
    for name, entry in entries.items():
        try:
            cls = registry.load(name)
        except DataflowError as exc:
            operators.append(failed(name, entry, exc.reason))
            continue
        try:
            operators.append({**describe_class(cls, entry), "status": "ok", "error": None})
        except Exception as exc:  # e.g. a plugin's Params with no JSON Schema: one row, not the CLI
            if entry.distribution == "dataflow-cli":
                raise  # a built-in that cannot be described is a bug
            operators.append(failed(name, entry, f"cannot be described: {type(exc).__name__}: {exc}"))
    return {"operators": operators, "index": build_index(operators)}


_memo: dict[str, dict[str, Any]] = {}


def load() -> dict[str, Any]:
    """The catalogue of the operators installed now: from the cache when it is current, else
    rebuilt (and stored)."""
    entries = registry.entries()
    stamp = signature(entries)
    if stamp in _memo:
        return _memo[stamp]
    path = cache_path()
    catalogue = _read(path, stamp)
    if catalogue is None:
        catalogue = build(entries)
        _write(path, {"format": FORMAT, "signature": stamp, **catalogue})
    _memo.clear()
    _memo[stamp] = catalogue
    return catalogue


def _read(path: Path, stamp: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or half-written by an older version: rebuild
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("signature") != stamp:
        return None
    return {"operators": data["operators"], "index": data["index"]}


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, ensure_ascii=False, default=repr), encoding="utf-8")
        os.replace(tmp, path)  # concurrent writers each replace the file whole
    except OSError as exc:
        # A read-only home only makes later listings slower; it must not fail the command.
        log.debug("operator catalogue not cached at %s: %s", path, exc)
        if tmp.is_file():
            tmp.unlink()


def describe_all() -> list[dict[str, Any]]:
    """Every registered operator, described (from the cache when current)."""
    return load()["operators"]
