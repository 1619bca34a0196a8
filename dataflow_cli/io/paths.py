"""File formats by suffix, input globs, and where the rejects of an output go.

Nothing here imports pyarrow: `dataflow validate` resolves paths before it reads any data.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from dataflow_cli.errors import InputError, SpecError, did_you_mean

FORMATS = ("parquet", "jsonl", "json", "csv")

_SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}

# Documents (PDF, HTML, Markdown, text) are an input format only: one row per file (io/documents.py).
DOCUMENT_SUFFIXES = (".pdf", ".html", ".htm", ".md", ".markdown", ".txt")
INPUT_FORMATS = (*FORMATS, "documents")

_GLOB_CHARS = re.compile(r"[*?\[]")

# Rejects live in a folder of their own below the output's folder, so that a glob over the
# output folder (`out/*.parquet`, what `datasets.load_dataset` is given) matches the dataset only.
REJECTS_DIR = "rejects"


def format_for(path: Path, *, documents: bool = False) -> str:
    """Return the format name for `path` from its suffix, or raise `SpecError`.

    `documents=True` (inputs) also knows the document suffixes, read as format "documents"."""
    suffix = Path(path).suffix.lower()
    fmt = _SUFFIXES.get(suffix) or ("documents" if documents and suffix in DOCUMENT_SUFFIXES else None)
    if fmt is None:
        supported = ", ".join(
            f"`{suffix}`" for suffix in [*_SUFFIXES, *(DOCUMENT_SUFFIXES if documents else ())]
        )
        raise SpecError(
            f"cannot tell the format of `{path}` from its suffix; supported suffixes are {supported}",
            hint="rename the file so that its suffix says what it contains",
        )
    return fmt


def default_rejects_path(output: Path) -> Path:
    """`out/clean.jsonl` -> `out/rejects/clean.rejects.jsonl` (same format as the output)."""
    output = Path(output)
    return output.parent / REJECTS_DIR / f"{output.stem}.rejects{output.suffix}"


def expand_inputs(pattern: str, base_dir: Path) -> list[Path]:
    """Resolve a path or glob (`*`, `**`, `?`) against `base_dir` into a sorted list of files."""
    given = Path(pattern).expanduser()
    full = given if given.is_absolute() else Path(base_dir) / given
    if _GLOB_CHARS.search(pattern):
        files = _glob_files(str(given), Path(base_dir))
        if not files:
            raise _not_found(pattern, full, Path(base_dir), "no file matches")
    elif full.is_dir() and (files := _documents_in(full)):
        pass  # a folder of documents: every document file below it
    elif full.is_dir():
        raise InputError(
            f"input `{pattern}` is a directory, not a file",
            hint=f"to read the files in it use a glob such as `{pattern.rstrip('/')}/*.jsonl`",
        )
    elif not full.is_file():
        raise _not_found(pattern, full, Path(base_dir), "no such file")
    else:
        files = [full]
    for path in files:
        format_for(path, documents=True)
    return files


def _documents_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in DOCUMENT_SUFFIXES and p.is_file())


def _glob_files(pattern: str, base_dir: Path) -> list[Path]:
    # root_dir keeps glob characters in base_dir itself from being interpreted.
    if Path(pattern).is_absolute():
        matches = [Path(match) for match in glob.glob(pattern, recursive=True)]
    else:
        matches = [base_dir / match for match in glob.glob(pattern, root_dir=base_dir, recursive=True)]
    return sorted(path for path in matches if path.is_file())


def _not_found(pattern: str, full: Path, base_dir: Path, why: str) -> InputError:
    parent = full.parent
    if not _GLOB_CHARS.search(str(parent)) and not parent.is_dir():
        detail = f"directory `{parent}` does not exist"
    else:
        try:
            siblings = [entry.name for entry in parent.iterdir()]
        except OSError:
            siblings = []
        detail = f"{why} in `{parent}`{did_you_mean(full.name, siblings)}"
    hint = detail if Path(pattern).is_absolute() else f"{detail}; relative paths start at `{base_dir}`"
    return InputError(f"input file `{pattern}` not found", hint=hint)
