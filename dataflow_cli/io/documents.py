"""Documents as input: `.pdf`, `.html`/`.htm`, `.md`/`.markdown` and `.txt` files, one row each.

`input: {path: docs/*}` (or any glob or file with these suffixes) reads every file as one row:

| column          | type                                   | what                                          |
|-----------------|----------------------------------------|-----------------------------------------------|
| `path`          | string                                 | the file, as the input pattern resolved it    |
| `name`          | string                                 | its file name                                 |
| `type`          | string                                 | `pdf`, `html`, `markdown` or `text`           |
| `size`          | int64                                  | bytes                                         |
| `text`          | string                                 | the extracted text (null when it failed)      |
| `pages`         | list<struct<page, start, end>>         | PDF: where each page's text is in `text`      |
| `page_count`    | int32                                  | PDF: pages in the file                        |
| `skipped_pages` | list<struct<page, reason>>             | PDF: pages without usable text, and why       |
| `extract_error` | string                                 | why no text was extracted ("reason: detail")  |

The text is Markdown-flavoured plain text whatever the format: headings as `#` lines, list
items as `- ` / `1. ` lines, table rows as `cell | cell`, blocks separated by a blank line.
PDF pages are laid out again from their geometry (`pdf_text`); HTML keeps its main content
(`<main>`/`<article>` when present, without navigation, headers, footers, sidebars, forms and
boilerplate lines) through the text library's `html_to_text` and boilerplate patterns;
Markdown and text are kept as they are.

A document whose text cannot be extracted is still a row: `text` is null and `extract_error`
says why (`no text layer (scanned or image-only PDF)`, `encrypted PDF: ...`, `not a readable
PDF: ...`, `not valid UTF-8: ...`, `empty document`, `extraction timed out: ...`), so that a
filter (`document_text_filter`) can reject it with that reason and every file stays accounted
for. A file that cannot be opened at all is an `InputError` located at the file, as for the
other formats. Pages of a PDF without text (an image-only page in a text PDF) are left out of
`text` and listed in `skipped_pages`.

PDFs are untrusted: each is parsed in a worker process (`_pdf_worker`) with capped memory and
killed at its time limit; files are read by `DATAFLOW_DOCUMENT_WORKERS` workers in parallel
(default: 2, at most the CPU count). Limits: `DATAFLOW_DOCUMENT_TIMEOUT` seconds per PDF
(default 120), `DATAFLOW_PDF_MEMORY_MB` (default 2048), and text formats up to
`DATAFLOW_DOCUMENT_MAX_MB` (default 64).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import selectors
import time
from collections import deque
from collections.abc import Iterator
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataflow_cli.errors import InputError
from dataflow_cli.io._shared import UTF8_BOM, conform
from dataflow_cli.sandbox.workers import JsonLineWorker

SUFFIXES = {
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}

PAGE_SPAN = pa.struct([("page", pa.int32()), ("start", pa.int64()), ("end", pa.int64())])
SKIPPED_PAGE = pa.struct([("page", pa.int32()), ("reason", pa.string())])
SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("name", pa.string()),
        ("type", pa.string()),
        ("size", pa.int64()),
        ("text", pa.string()),
        ("pages", pa.list_(PAGE_SPAN)),
        ("page_count", pa.int32()),
        ("skipped_pages", pa.list_(SKIPPED_PAGE)),
        ("extract_error", pa.string()),
    ]
)

NO_TEXT_PDF = "no text layer (scanned or image-only PDF)"
EMPTY = "empty document"
PAGE_SEPARATOR = "\n\n"
_FILES_PER_ROUND = 16  # documents read (in parallel) before their rows are handed on


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise InputError(f"`{name}` must be a number, got `{value}`") from None


# --------------------------------------------------------------------------- the reader interface


def head_schema(path: Path) -> pa.Schema:
    """Every document has the same columns; nothing is read."""
    return SCHEMA


def peek_columns(path: Path) -> dict[str, str]:
    return {field.name: str(field.type) for field in SCHEMA}


def locate_column(path: Path, name: str, other: pa.DataType) -> str:
    return str(path)


def iter_tables(path: Path, schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    yield from iter_tables_many([path], schema, batch_size)


def iter_tables_many(paths: list[Path], schema: pa.Schema, batch_size: int) -> Iterator[pa.Table]:
    """Rows of `paths`, in order, read a round of files at a time (PDFs in parallel workers)."""
    round_size = max(1, min(batch_size, _FILES_PER_ROUND))
    for start in range(0, len(paths), round_size):
        rows = read_documents(paths[start : start + round_size])
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        yield conform(table, schema, _at(str(paths[start])))


def _at(location: str):
    def locate(name: str, type_: pa.DataType | None) -> str:
        return location

    return locate


def read_documents(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per file (see the module docstring)."""
    rows: list[dict[str, Any] | None] = [None] * len(paths)
    pdfs: list[int] = []
    for i, path in enumerate(paths):
        size = _size(path)
        kind = SUFFIXES.get(path.suffix.lower(), "text")
        if size == 0:
            rows[i] = _row(path, kind, size, error=EMPTY)
        elif kind == "pdf":
            pdfs.append(i)
        else:
            rows[i] = _text_row(path, kind, size)
    if pdfs:
        answers = _pool().run([str(paths[i]) for i in pdfs])
        for i, answer in zip(pdfs, answers, strict=True):
            rows[i] = _pdf_row(paths[i], _size(paths[i]), answer)
    return rows  # type: ignore[return-value]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror or exc}", location=str(path)) from None


def _row(
    path: Path,
    kind: str,
    size: int,
    text: str | None = None,
    error: str | None = None,
    pages: list[dict] | None = None,
    page_count: int | None = None,
    skipped: list[dict] | None = None,
) -> dict[str, Any]:
    return {
        "path": str(path),
        "name": path.name,
        "type": kind,
        "size": size,
        "text": text if error is None else None,
        "pages": pages,
        "page_count": page_count,
        "skipped_pages": skipped,
        "extract_error": error,
    }


# --------------------------------------------------------------------------- PDF


def pdf_row_from_pages(path: Path, size: int, pages: list[tuple[str | None, str | None]]) -> dict[str, Any]:
    """The row of a PDF from its pages' (text, reason): text pages joined, the rest listed."""
    parts: list[str] = []
    spans: list[dict] = []
    skipped: list[dict] = []
    offset = 0
    for number, (text, reason) in enumerate(pages, start=1):
        if text is None:
            skipped.append({"page": number, "reason": reason})
            continue
        if parts:
            offset += len(PAGE_SEPARATOR)
        spans.append({"page": number, "start": offset, "end": offset + len(text)})
        parts.append(text)
        offset += len(text)
    if not parts:
        reasons = {s["reason"] for s in skipped}
        from dataflow_cli.io.pdf_text import NO_TEXT_LAYER, UNDECODABLE

        if NO_TEXT_LAYER in reasons:
            error = NO_TEXT_PDF
        elif UNDECODABLE in reasons:
            error = UNDECODABLE
        else:
            error = EMPTY if not pages else f"{EMPTY}: no page has text"
        return _row(path, "pdf", size, error=error, page_count=len(pages), skipped=skipped)
    return _row(
        path, "pdf", size, PAGE_SEPARATOR.join(parts), pages=spans, page_count=len(pages), skipped=skipped
    )


def _pdf_row(path: Path, size: int, answer: dict[str, Any]) -> dict[str, Any]:
    if "error" in answer:
        return _row(path, "pdf", size, error=answer["error"])
    return pdf_row_from_pages(path, size, [(page[0], page[1]) for page in answer["pages"]])


# --------------------------------------------------------------------------- HTML, Markdown, text


def _text_row(path: Path, kind: str, size: int) -> dict[str, Any]:
    limit = _env_number("DATAFLOW_DOCUMENT_MAX_MB", 64)
    if size > limit * (1 << 20):
        return _row(path, kind, size, error=f"document too large: {size >> 20} MB (limit {limit:g} MB)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror or exc}", location=str(path)) from None
    decoded = _decode(data, kind)
    if isinstance(decoded, Exception):
        return _row(path, kind, size, error=str(decoded))
    text = html_main_text(decoded) if kind == "html" else _plain(decoded)
    if not text.strip():
        return _row(path, kind, size, error=EMPTY)
    return _row(path, kind, size, text)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


def _decode(data: bytes, kind: str) -> str | ValueError:
    data = data.removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf8_failure = exc
    if kind == "html":  # an HTML page may declare a legacy encoding
        declared = _META_CHARSET.search(data[:4096])
        if declared:
            try:
                return data.decode(declared.group(1).decode("ascii"))
            except (LookupError, UnicodeDecodeError):
                pass
    line = data.count(b"\n", 0, utf8_failure.start) + 1
    return ValueError(
        f"not valid UTF-8: byte 0x{data[utf8_failure.start]:02x} on line {line} (re-encode the file as UTF-8)"
    )


def _plain(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


def html_main_text(html: str) -> str:
    """The main content of an HTML page as text, headings marked `#`..`######`."""
    from dataflow_operators.text.html import html_to_text

    main = _MainContent.extract(html)
    text = html_to_text(main) if main.strip() else ""
    if not text.strip():  # nothing recognisable as main content: keep the whole page's text
        text = html_to_text(html)
    return _drop_boilerplate_lines(text)


def _drop_boilerplate_lines(text: str) -> str:
    """Cookie notices, share buttons, copyright lines...: the text library's boilerplate refiner."""
    from dataflow_operators.text.lines import BoilerplateLineRefiner

    from dataflow_cli.operator import Batch

    refined = BoilerplateLineRefiner().refine(Batch(pa.table({"text": [text]})))["text"]
    return re.sub(r"\n{3,}", "\n\n", refined[0].as_py() or "").strip()


_SKIP_TAGS = frozenset({"nav", "header", "footer", "aside", "form", "button", "noscript", "dialog", "menu"})
_SKIP_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "menu"})
_BOILERPLATE_NAME = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|sidebar|footer|header|masthead|cookies?|"
    r"consent|banner|share|sharing|social|comments?|advert|ads|promo|related|subscribe|newsletter|skip)"
    r"(?:$|[\s_-])",
    re.I,
)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _MainContent(HTMLParser):
    """Re-emits the markup of a page's main content: inside `<main>`/`<article>`/role=main when the
    page has one, without navigation, header, footer, aside, form and boilerplate-named elements;
    headings get `#` marks so that their level survives the conversion to text."""

    def __init__(self, has_main: bool):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0  # depth inside boilerplate elements
        self.inside = 0 if has_main else 1  # depth inside main content
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, boilerplate, main)

    @classmethod
    def extract(cls, html: str) -> str:
        has_main = re.search(r"<(?:main|article)\b|role\s*=\s*[\"']?main", html, re.I) is not None
        parser = cls(has_main)
        try:
            parser.feed(html)
            parser.close()
        except (AssertionError, ValueError, IndexError):
            return html
        return "".join(parser.out)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        role = attributes.get("role", "").lower()
        is_main = tag in ("main", "article") or role == "main"
        boiler = not is_main and bool(
            tag in _SKIP_TAGS
            or role in _SKIP_ROLES
            or _BOILERPLATE_NAME.search(f"{attributes.get('id', '')} {attributes.get('class', '')}")
            or attributes.get("aria-hidden", "").lower() == "true"
        )
        if tag not in _VOID:
            self.stack.append((tag, boiler, is_main))
            self.skip += boiler
            self.inside += is_main
        if self.skip or not self.inside:
            return
        self.out.append(self.get_starttag_text() or f"<{tag}>")
        if tag in _HEADINGS:
            self.out.append("#" * _HEADINGS[tag] + " ")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if not any(entry[0] == tag for entry in self.stack):
            return  # a stray end tag
        while self.stack:  # unclosed elements inside this one close with it
            name, boiler, is_main = self.stack.pop()
            visible = not self.skip and self.inside
            self.skip -= boiler
            self.inside -= is_main
            if visible:
                self.out.append(f"</{name}>")
            if name == tag:
                break

    def handle_data(self, data):
        if not self.skip and self.inside:
            self.out.append(escape(data, quote=False))


# --------------------------------------------------------------------------- PDF worker pool


STARTUP_SECONDS = 60.0


def _worker(memory_mb: int) -> JsonLineWorker:
    package_root = str(Path(__file__).resolve().parents[2])
    env = {"DATAFLOW_PDF_MEMORY_MB": str(memory_mb)}
    return JsonLineWorker("dataflow_cli.io._pdf_worker", package_root, env)


class PdfPool:
    """`run(paths)` -> one answer per PDF, in order; each file killed at its time limit."""

    def __init__(self, workers: int, time_limit: float, memory_mb: int):
        self.size = max(1, workers)
        self.time_limit = time_limit
        self.memory_mb = memory_mb
        self.workers: list[JsonLineWorker] = []

    def run(self, paths: list[str]) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(paths)
        queue = deque(range(len(paths)))
        self.workers = [w for w in self.workers if w.proc.poll() is None]
        while len(self.workers) < min(self.size, len(paths)):
            self.workers.append(_worker(self.memory_mb))
        selector = selectors.DefaultSelector()
        try:
            for worker in self.workers:
                selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)  # type: ignore[arg-type]
            while queue or any(w.task is not None for w in self.workers):
                for worker in self.workers:
                    if worker.ready and worker.task is None and queue:
                        index = queue.popleft()
                        worker.send(index, {"path": paths[index]}, self.time_limit)
                now = time.monotonic()
                waits = [w.deadline - now for w in self.workers if w.task is not None]
                waits += [w.started + STARTUP_SECONDS - now for w in self.workers if not w.ready]
                for key, _ in selector.select(max(0.0, min(waits)) if waits else None):
                    worker = key.data
                    line = worker.proc.stdout.readline()
                    if not line:
                        self._replace(worker, selector, results, "PDF too large: the extraction worker died")
                        continue
                    message = json.loads(line)
                    if message.get("ready"):
                        worker.ready = True
                    elif worker.task is not None:
                        results[worker.task] = message
                        worker.task = None
                now = time.monotonic()
                for worker in list(self.workers):
                    if worker.task is not None and now >= worker.deadline:
                        reason = f"extraction timed out: more than {self.time_limit:g} s"
                        self._replace(worker, selector, results, reason)
                    elif not worker.ready and now >= worker.started + STARTUP_SECONDS:
                        worker.kill()
                        raise InputError("the PDF extraction worker did not start")
        finally:
            selector.close()
        return results  # type: ignore[return-value]

    def _replace(
        self, worker: JsonLineWorker, selector: selectors.BaseSelector, results: list, reason: str
    ) -> None:
        if worker.task is None and not worker.ready:
            worker.kill()
            raise InputError(
                "the PDF extraction worker exited at start",
                hint="is pypdf installed? pip install 'dataflow-cli[documents]'",
            )
        if worker.task is not None:
            results[worker.task] = {"error": reason}
        selector.unregister(worker.proc.stdout)  # type: ignore[arg-type]
        worker.kill()
        fresh = _worker(self.memory_mb)
        self.workers[self.workers.index(worker)] = fresh
        selector.register(fresh.proc.stdout, selectors.EVENT_READ, fresh)  # type: ignore[arg-type]

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.workers = []


_pools: dict[tuple[int, float, int], PdfPool] = {}


def _pool() -> PdfPool:
    import importlib.util

    if importlib.util.find_spec("pypdf") is None:
        raise InputError("reading PDF files needs `pypdf`", hint="pip install 'dataflow-cli[documents]'")
    workers = int(_env_number("DATAFLOW_DOCUMENT_WORKERS", min(2, os.cpu_count() or 1)))
    key = (
        workers,
        _env_number("DATAFLOW_DOCUMENT_TIMEOUT", 120.0),
        int(_env_number("DATAFLOW_PDF_MEMORY_MB", 2048)),
    )
    if key not in _pools:
        _pools[key] = PdfPool(*key)
    return _pools[key]


@atexit.register
def _close_pools() -> None:
    for pool in _pools.values():
        pool.close()
