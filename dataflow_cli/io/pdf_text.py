"""Text of PDF pages in reading order, with headings, lists and tables marked as Markdown.

pypdf (BSD) decodes the text layer; it reports each piece of text with its position, font and
size through `extract_text(visitor_text=...)`. Content-stream order is not reading order (a
two-column page is often drawn line by line across both columns), so the pieces are laid out
again from their geometry:

1. pieces on one baseline that nearly touch become a *segment* (a line, or a table cell, or one
   column's line); page numbers alone at the top or bottom margin are dropped;
2. baselines with two or more segments, some of them short (a quarter of the text width; two
   segments must both be), whose left edges line up over at least two consecutive rows form a
   *table*: each row becomes `cell | cell | cell`;
3. a *gutter* is a vertical strip crossed by few segments with prose on both sides on at least
   three shared baselines; segments then belong to a column or span the page (a title over two
   columns). Walking down the page, runs of column segments are read column by column, and a
   spanning segment or table closes the run, so a full-width heading between two-column
   sections stays in place;
4. consecutive lines of one column form blocks, split at larger vertical gaps, font changes and
   list markers; a block in a font clearly larger than the body text (the size that carries the
   most characters in the document) is a heading, `#` to `###` by size rank; a line starting
   with a bullet or `1.`/`a)` is a list item; a word hyphenated at a line end is joined again
   when the next line starts in lower case.

Lines in the top or bottom margin that repeat on half of the pages or more (running headers
and footers, page numbers ignored) are dropped, as are lone page numbers there.

A page without any text is reported with a reason instead of as empty text.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

NO_TEXT_LAYER = "no text layer (scanned or image-only page)"
BLANK_PAGE = "blank page"
UNDECODABLE = "text layer not decodable (fonts without a Unicode mapping)"

_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\u00a0": " "}
_BULLETS = "•◦▪▫●○■□‣⁃∙·*\u2013\u2014-\uf0b7\uf0a7\u25aa\u25cf\u2043"
_MARKER = re.compile(r"^(?:[" + re.escape(_BULLETS) + r"]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+(?=\S)")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$|^[ivxlc]{1,6}$", re.I)


@dataclass
class Piece:
    """One run of text as pypdf reports it: baseline start (x, y), font size, width, bold."""

    x: float
    y: float
    size: float
    width: float
    bold: bool
    text: str


@dataclass
class Segment:
    x0: float
    x1: float
    y: float
    size: float
    bold: bool
    text: str

    @property
    def top(self) -> float:
        return self.y + self.size


@dataclass
class Table:
    rows: list[list[Segment]]

    @property
    def y(self) -> float:
        return self.rows[0][0].y

    @property
    def top(self) -> float:
        return max(s.top for s in self.rows[0])


@dataclass
class Block:
    kind: str  # para, heading, item, table
    lines: list[Segment] = field(default_factory=list)
    marker: str = ""  # "-" or "1." for list items
    table: Table | None = None


# --------------------------------------------------------------------------- pieces from pypdf


def page_pieces(page: Any) -> list[Piece]:
    """The text pieces of a pypdf page with their positions (empty for a page without text)."""
    pieces: list[Piece] = []
    widths: dict[int, Any] = {}

    def visit(text, cm, tm, font, size):
        if not text or not text.strip():
            return
        # Text space to device space: the text matrix, then the current transformation matrix.
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        scale = math.hypot(tm[0], tm[1]) * math.hypot(cm[0], cm[1]) or 1.0
        effective = abs(size) * scale
        name = str(font.get("/BaseFont", "")) if font else ""
        bold = "bold" in name.lower() or "black" in name.lower() or "heavy" in name.lower()
        for k, line in enumerate(text.split("\n")):
            if line.strip():
                width = _text_width(line, font, widths) * effective
                pieces.append(Piece(x, y - k * effective * 1.2, effective, width, bold, line))

    page.extract_text(visitor_text=visit)
    return pieces


def _text_width(text: str, font: Any, cache: dict[int, Any]) -> float:
    """Width of `text` in em: from the font's metrics when pypdf can read them, else a typical
    average for Latin text (only used to find gaps between segments and columns)."""
    key = id(font)
    if key not in cache:
        cache[key] = None
        if font is not None:
            try:
                from pypdf.generic._font import Font  # metrics incl. the 14 core fonts

                cache[key] = Font.from_font_resource(font)
            except Exception:  # noqa: BLE001 - metrics are optional; estimate instead
                cache[key] = None
    metrics = cache[key]
    if metrics is not None:
        try:
            return float(metrics.get_text_width(text)) / 1000.0
        except Exception:  # noqa: BLE001
            pass
    return 0.5 * len(text)


def has_images(page: Any) -> bool:
    """Whether the page draws any image XObject (a scanned page is one big image)."""
    try:
        return bool(page.images)
    except Exception:  # noqa: BLE001 - a broken image still means "not a text page"
        return True


# --------------------------------------------------------------------------- layout


def clean(text: str) -> str:
    for ligature, plain in _LIGATURES.items():
        text = text.replace(ligature, plain)
    # Control and private-use code points are glyph-encoding debris (bullets, dingbats).
    return "".join(" " if unicodedata.category(c) in ("Cc", "Co") and c not in "\n\t" else c for c in text)


def segments(pieces: list[Piece]) -> list[Segment]:
    """Pieces on one baseline that nearly touch, joined (top of the page first)."""
    pieces = sorted(pieces, key=lambda p: (-p.y, p.x))
    lines: list[list[Piece]] = []
    for piece in pieces:
        if lines and abs(lines[-1][0].y - piece.y) <= 0.35 * min(piece.size, lines[-1][0].size):
            lines[-1].append(piece)
        else:
            lines.append([piece])
    out: list[Segment] = []
    for line in lines:
        line.sort(key=lambda p: p.x)
        current: Segment | None = None
        for piece in line:
            # A lone undecodable glyph drawn on its own is a bullet in practice (dingbat fonts).
            lone = piece.text.strip()
            text = "•" if len(lone) == 1 and unicodedata.category(lone) in ("Cc", "Co") else clean(piece.text)
            if current is not None and piece.x - current.x1 <= 1.4 * max(piece.size, current.size):
                gap = piece.x - current.x1
                joiner = (
                    ""
                    if gap < 0.12 * piece.size or current.text.endswith(" ") or text.startswith(" ")
                    else " "
                )
                current.text += joiner + text
                current.x1 = max(current.x1, piece.x + piece.width)
                current.size = max(current.size, piece.size)
                current.bold = current.bold and piece.bold
            else:
                current = Segment(piece.x, piece.x + piece.width, piece.y, piece.size, piece.bold, text)
                out.append(current)
    for segment in out:
        segment.text = " ".join(segment.text.split())
    return [s for s in out if s.text]


def drop_page_furniture(segs: list[Segment], page_height: float) -> list[Segment]:
    """Lone page numbers in the top or bottom margin are not part of the text."""
    margin = 0.08 * page_height
    return [
        s for s in segs if not (_PAGE_NUMBER.match(s.text) and (s.y < margin or s.y > page_height - margin))
    ]


def _rows(segs: list[Segment]) -> list[list[Segment]]:
    rows: list[list[Segment]] = []
    for seg in sorted(segs, key=lambda s: (-s.y, s.x0)):
        if rows and abs(rows[-1][0].y - seg.y) <= 0.35 * seg.size:
            rows[-1].append(seg)
        else:
            rows.append([seg])
    return rows


def find_tables(segs: list[Segment], content_width: float) -> tuple[list[Table], list[Segment]]:
    """Tables (rows of aligned cells) and the segments that are not in one."""
    rows = _rows(segs)

    def short(segment: Segment) -> bool:
        return segment.x1 - segment.x0 < 0.25 * content_width

    def cellish(row: list[Segment]) -> bool:
        # Three or more columns of prose have only long lines; a table row has short cells.
        if len(row) >= 3:
            return any(short(s) for s in row)
        return len(row) == 2 and all(short(s) for s in row)

    def aligned(a: list[Segment], b: list[Segment]) -> bool:
        starts = [s.x0 for s in b]
        return sum(any(abs(s.x0 - x) <= 3.0 for x in starts) for s in a) >= 2

    tables: list[Table] = []
    in_table: set[int] = set()
    i = 0
    while i < len(rows):
        if not cellish(rows[i]):
            i += 1
            continue
        j = i
        while (
            j + 1 < len(rows)
            and cellish(rows[j + 1])
            and rows[j][0].y - rows[j + 1][0].y <= 3.0 * rows[j][0].size
            and aligned(rows[j], rows[j + 1])
        ):
            j += 1
        if j > i:
            table_rows = [sorted(r, key=lambda s: s.x0) for r in rows[i : j + 1]]
            tables.append(Table(table_rows))
            in_table.update(id(s) for r in table_rows for s in r)
        i = j + 1
    return tables, [s for s in segs if id(s) not in in_table]


def find_gutters(segs: list[Segment], body: float) -> list[tuple[float, float]]:
    """Vertical strips between columns of prose (left to right)."""
    if len(segs) < 6:
        return []
    left, right = min(s.x0 for s in segs), max(s.x1 for s in segs)
    bins = int(right - left) + 1
    if bins < 10:
        return []
    cover = [0] * bins
    for s in segs:
        for b in range(max(0, int(s.x0 - left)), min(bins, int(s.x1 - left) + 1)):
            cover[b] += 1
    allowed = max(1, int(0.15 * len(segs)))
    gutters = []
    b = 0
    while b < bins:
        if cover[b] <= allowed:
            start = b
            while b < bins and cover[b] <= allowed:
                b += 1
            lo, hi = left + start, left + b - 1
            if start > 0 and b < bins and hi - lo >= 0.8 * body and _prose_on_both_sides(segs, lo, hi, body):
                gutters.append((lo, hi))
        b += 1
    return gutters


def _prose_on_both_sides(segs: list[Segment], lo: float, hi: float, body: float) -> bool:
    rows = _rows(segs)
    shared = 0
    widths_left, widths_right = [], []
    for row in rows:
        lefts = [s for s in row if s.x1 <= lo + 1]
        rights = [s for s in row if s.x0 >= hi - 1]
        if lefts and rights:
            shared += 1
            widths_left += [s.x1 - s.x0 for s in lefts]
            widths_right += [s.x1 - s.x0 for s in rights]
    if shared < 3:
        return False
    return _median(widths_left) >= 5 * body and _median(widths_right) >= 5 * body


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else 0.0


def reading_order(items: list[Segment | Table], gutters: list[tuple[float, float]]) -> list[Segment | Table]:
    """Top to bottom; runs of column segments column by column; spanning items stay in place."""

    def column(item: Segment | Table) -> int | None:
        if isinstance(item, Table) or not gutters:
            return None
        index = 0
        for lo, hi in gutters:
            if item.x0 < lo and item.x1 > hi:
                return None  # crosses a gutter: spans the columns
            if item.x0 >= lo:
                index += 1
        return index

    ordered: list[Segment | Table] = []
    run: list[tuple[int, Segment]] = []

    def flush() -> None:
        for _, seg in sorted(run, key=lambda cs: (cs[0], -cs[1].y, cs[1].x0)):
            ordered.append(seg)
        run.clear()

    for item in sorted(items, key=lambda it: (-it.top, it.x0 if isinstance(it, Segment) else 0.0)):
        col = column(item)
        if col is None:
            flush()
            ordered.append(item)
        else:
            assert isinstance(item, Segment)
            run.append((col, item))
    flush()
    return ordered


def blocks(ordered: list[Segment | Table], body: float) -> list[Block]:
    """Consecutive lines grouped into paragraphs, list items and headings; tables as they are."""
    out: list[Block] = []
    previous: Segment | None = None
    for item in ordered:
        if isinstance(item, Table):
            out.append(Block("table", table=item))
            previous = None
            continue
        marker = _MARKER.match(item.text)
        if marker:
            text = item.text[marker.end() :]
            symbol = marker.group(0).strip()
            kind_marker = symbol if symbol[0].isalnum() or symbol[0] == "(" else "-"
            out.append(
                Block("item", [Segment(item.x0, item.x1, item.y, item.size, item.bold, text)], kind_marker)
            )
            previous = item
            continue
        if (
            previous is not None
            and out
            and out[-1].kind in ("para", "item")
            and _continues(previous, item, body)
        ):
            out[-1].lines.append(item)
        else:
            out.append(Block("para", [item]))
        previous = item
    return out


def _continues(previous: Segment, line: Segment, body: float) -> bool:
    if abs(previous.size - line.size) > 0.1 * max(previous.size, line.size) or previous.bold != line.bold:
        return False
    gap = previous.y - line.y
    return 0 < gap <= 1.6 * max(line.size, 0.5 * body) and line.x0 >= previous.x0 - 2 * line.size


def join_lines(lines: list[str]) -> str:
    """Lines of one block as one line; "hyphen-" + "ated" at a line end becomes "hyphenated"."""
    text = ""
    for line in lines:
        if not text:
            text = line
        elif re.search(r"[^\W\d_]-$", text) and line[:1].islower():
            text = text[:-1] + line
        else:
            text += " " + line
    return text


def render(page_blocks: list[Block], heading_levels: dict[float, int], body: float) -> str:
    parts: list[str] = []
    for block in page_blocks:
        if block.kind == "table":
            assert block.table is not None
            rows = [" | ".join(cell.text for cell in row) for row in block.table.rows]
            parts.append("\n".join(rows))
            continue
        text = join_lines([line.text for line in block.lines])
        size = max(line.size for line in block.lines)
        if block.kind == "item":
            line = f"{block.marker} {text}"
            if (
                parts
                and parts[-1].startswith(("- ", *(f"{n}" for n in range(10)), "("))
                and _is_list(parts[-1])
            ):
                parts[-1] += "\n" + line
            else:
                parts.append(line)
        elif _heading_level(size, block, heading_levels, body):
            level = _heading_level(size, block, heading_levels, body)
            parts.append("#" * level + " " + text)
        else:
            parts.append(text)
    return "\n\n".join(parts)


def _is_list(part: str) -> bool:
    return all(_MARKER.match(line) or line.startswith("- ") for line in part.split("\n"))


def _heading_level(size: float, block: Block, levels: dict[float, int], body: float) -> int:
    if len(block.lines) > 3 or sum(len(line.text) for line in block.lines) > 200:
        return 0
    level = levels.get(round(size, 1), 0)
    if level:
        return level
    if (
        all(line.bold for line in block.lines)
        and size >= body * 0.95
        and not block.lines[-1].text.endswith(".")
    ):
        return min(max(levels.values(), default=0) + 1, 6)
    return 0


def body_size(all_pieces: list[list[Piece]]) -> float:
    """The font size that carries the most characters in the document."""
    weight: Counter[float] = Counter()
    for pieces in all_pieces:
        for piece in pieces:
            weight[round(piece.size, 1)] += len(piece.text)
    return weight.most_common(1)[0][0] if weight else 10.0


def heading_sizes(all_pieces: list[list[Piece]], body: float) -> dict[float, int]:
    """Sizes clearly above the body size, largest first, as heading levels 1..3 (then 3)."""
    sizes = sorted(
        {round(p.size, 1) for pieces in all_pieces for p in pieces if p.size >= body * 1.12}, reverse=True
    )
    return {size: min(rank, 3) for rank, size in enumerate(sizes, start=1)}


def running_lines(pages: list[tuple[list[Segment], float]]) -> set[str]:
    """Header and footer lines that repeat on at least half of the pages (three or more), page
    numbers in them ignored: "Lake Orrin Guide - page 3" is the same line on every page."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for segs, height in pages:
        margin = 0.08 * height
        seen.update({_running_key(s.text) for s in segs if s.y < margin or s.y > height - margin})
    return {key for key, count in seen.items() if key and count >= max(3, len(pages) / 2)}


def _running_key(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def layout_page(
    pieces: list[Piece],
    page_width: float,
    page_height: float,
    body: float,
    levels: dict[float, int],
    running: Collection[str] = (),
) -> str:
    """The page's text in reading order, as Markdown-flavoured plain text."""
    segs = drop_page_furniture(segments(pieces), page_height)
    if running:
        margin = 0.08 * page_height
        segs = [
            s
            for s in segs
            if not ((s.y < margin or s.y > page_height - margin) and _running_key(s.text) in running)
        ]
    if not segs:
        return ""
    content_width = max(s.x1 for s in segs) - min(s.x0 for s in segs)
    tables, rest = find_tables(segs, content_width or page_width)
    gutters = find_gutters(rest, body)
    ordered = reading_order([*rest, *tables], gutters)
    return render(blocks(ordered, body), levels, body)


def _undecodable(text: str) -> bool:
    letters = sum(c.isalnum() for c in text)
    return len(text) >= 20 and letters < 0.3 * len(text.replace(" ", "").replace("\n", ""))


def extract_pages(reader: Any) -> list[tuple[str | None, str | None]]:
    """(text, None) or (None, reason) for each page of an open `pypdf.PdfReader`."""
    pages = list(reader.pages)
    all_pieces: list[list[Piece] | Exception] = []
    for page in pages:
        try:
            all_pieces.append(page_pieces(page))
        except Exception as exc:  # noqa: BLE001 - pypdf raises many types on broken content streams
            all_pieces.append(exc)
    good = [p for p in all_pieces if isinstance(p, list)]
    body = body_size(good)
    levels = heading_sizes(good, body)
    running = running_lines(
        [
            (segments(p), float(page.mediabox.height))
            for page, p in zip(pages, all_pieces, strict=True)
            if isinstance(p, list)
        ]
    )
    out: list[tuple[str | None, str | None]] = []
    for page, pieces in zip(pages, all_pieces, strict=True):
        if isinstance(pieces, Exception):
            out.append((None, f"unreadable page content: {type(pieces).__name__}"))
            continue
        box = page.mediabox
        text = layout_page(pieces, float(box.width), float(box.height), body, levels, running).strip()
        if not text:
            out.append((None, NO_TEXT_LAYER if has_images(page) else BLANK_PAGE))
        elif _undecodable(text):
            out.append((None, UNDECODABLE))
        else:
            out.append((text, None))
    return out
