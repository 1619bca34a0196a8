"""Write the sample PDFs of `pipelines/knowledge_qa` from text written for this project.

    python scripts/make_sample_documents.py            # (re)writes the committed PDFs
    python scripts/make_sample_documents.py --out DIR  # writes them into DIR instead

Needs `reportlab` (BSD; in the `dev` extra). Two files:

- `lake_orrin_field_guide.pdf`, five pages: a title, headings, a bulleted and a numbered list
  and a word hyphenated across a line break (page 1), a ruled table (page 2), a page set in two
  columns under a full-width heading (page 3), a page that is one raster image with no text
  layer (page 4), and a closing page (page 5); every text page has a running header and a page
  number in its margins;
- `boathouse_notice_scan.pdf`, one image-only page, like a scanned letter.

The text of every page is kept here as data (`PAGES`): `expected_pages()` gives, per page, the
words a reader should recover in reading order (markers such as bullets and table rules are not
part of it). The extraction tests and `bench/document_extraction.py` measure recall against it.
reportlab's invariant mode makes the output byte-identical across runs of one reportlab version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "pipelines" / "knowledge_qa" / "docs"
GUIDE = "lake_orrin_field_guide.pdf"
SCAN = "boathouse_notice_scan.pdf"

# A block is (kind, payload). Kinds: title, heading, para, bullets, numbered, table, columns,
# image. In a para, "|" marks where a word may be hyphenated at a line end (the reader should
# join it back); it is not part of the text.
PAGES: list[list[tuple[str, object]]] = [
    [
        ("title", "Lake Orrin Field Station: A Visitor Guide"),
        (
            "para",
            "The Lake Orrin Field Station was founded in 1987 by the lim|nol|o|gist Dr. Maren Toft to "
            "monitor the water qual|i|ty of the lake. It sits on the northern shore, 14 kilometres "
            "from the town of Kessel Ford, and hosts about 2,300 visitors each year. The station "
            "keeps a con|tin|u|ous record of water temperature, oxygen and clarity that now spans "
            "more than three decades of measure|ments.",
        ),
        ("heading", "Getting There"),
        (
            "bullets",
            [
                "By bus: line 41 leaves Kessel Ford station every 90 minutes and stops at the station gate.",
                "By bicycle: the Orrin Lakeside Trail is 17 kilometres long and mostly flat.",
                "By car: park at the Birchwood lot; the last 800 metres are on foot.",
            ],
        ),
        ("heading", "Before You Arrive"),
        (
            "numbered",
            [
                "Register online at least 3 days before your visit.",
                "Bring waterproof boots; the boardwalk floods after heavy rain.",
                "Check the boat schedule on page 2 if you plan to join a sampling trip.",
            ],
        ),
        (
            "para",
            "Visitors who arrive without registration may still walk the public trail, but "
            "entry to the lab|o|ra|tory wing and the pier is limited to reg|is|tered groups "
            "ac|com|pa|nied by a staff member. The reception desk opens at 08:30 and closes at "
            "17:00 from Tuesday to Sunday, and the whole station is closed on Mondays for "
            "in|stru|ment calibra|tion and maintenance.",
        ),
    ],
    [
        ("heading", "Seasonal Boat Schedule"),
        (
            "para",
            "The research boat Heron II takes visitors along on sampling trips between April "
            "and October. Each trip lasts about two hours and carries at most 12 passengers.",
        ),
        (
            "table",
            (
                ["Month", "Departures per week", "First boat", "Water temperature"],
                [
                    ["April", "2", "10:00", "6 °C"],
                    ["June", "5", "08:30", "15 °C"],
                    ["August", "6", "08:00", "19 °C"],
                    ["October", "3", "10:30", "11 °C"],
                ],
            ),
        ),
        (
            "para",
            "Trips are cancelled when the wind speed at the pier exceeds 40 kilometres per "
            "hour. Life jackets are provided on board, and children under 10 must be "
            "accompanied by an adult. Tickets cost 18 euros for adults and 9 euros for "
            "students, and they are sold at the reception desk on the morning of the trip.",
        ),
        ("heading", "What We Measure"),
        (
            "para",
            "On every trip the crew lowers a Secchi disk to estimate water clarity and takes "
            "oxygen readings at depths of 1, 5 and 20 metres. The readings go into the "
            "station's long-term record, which the regional water authority in Valdmark uses "
            "to set fishing quotas.",
        ),
    ],
    [
        ("heading", "Wildlife of the Northern Shore"),
        (
            "columns",
            (
                [
                    ("subheading", "Birds"),
                    (
                        "para",
                        "The reed beds west of the pier shelter a breeding colony of great "
                        "crested grebes. In 2019 the station counted 64 nesting pairs, the "
                        "highest number since records began. Ospreys hunt over the open water "
                        "from late April, and a pair has nested on the old radio mast since "
                        "2015.",
                    ),
                    (
                        "para",
                        "Visitors are asked to stay on the boardwalk between March and July, "
                        "when the grebes are on their nests and easily disturbed by people on "
                        "the shore.",
                    ),
                ],
                [
                    ("subheading", "Fish and Amphibians"),
                    (
                        "para",
                        "Lake Orrin holds perch, pike and a small population of Arctic char, a "
                        "cold-water fish that survives in the deep basin where the temperature "
                        "stays below 8 °C all year. The char population is the reason oxygen is "
                        "measured at 20 metres.",
                    ),
                    (
                        "para",
                        "Common toads migrate across the Birchwood road every spring. Since "
                        "2012 volunteers have carried more than 40,000 toads across the road "
                        "in buckets during the migration nights.",
                    ),
                ],
            ),
        ),
    ],
    [
        (
            "image",
            "A hand-drawn map of the northern shore, scanned as a picture: it has no text layer.",
        ),
    ],
    [
        ("heading", "Contact and Safety"),
        (
            "para",
            "In an emergency call the station's duty phone on 0471 552 190; the nearest "
            "hospital is St. Aldric Hospital in Kessel Ford, 25 minutes away by car. The "
            "station manager since 2021 has been Jonas Berglund, who can be reached at the "
            "reception desk during opening hours.",
        ),
        (
            "bullets",
            [
                "Swimming from the pier is not allowed.",
                "Drones may be flown only with written permission from the station manager.",
                "Fires are allowed only in the marked grill area near the Birchwood lot.",
            ],
        ),
    ],
]

RUNNING_HEADER = "Lake Orrin Field Station - Visitor Guide 2024"
SCAN_TEXT = "NOTICE: the boathouse is closed for repairs until 1 May."

PAGE_SIZE = (595.0, 842.0)  # A4 in points
MARGIN = 56.0
BODY = ("Helvetica", 10.5, 14.0)  # font, size, leading
HEADING = ("Helvetica-Bold", 14.0, 20.0)
SUBHEADING = ("Helvetica-Bold", 12.0, 17.0)
TITLE = ("Helvetica-Bold", 20.0, 28.0)


def expected_pages() -> list[str | None]:
    """The words of each page of the field guide in reading order; None for the image-only page."""
    pages = []
    for blocks in PAGES:
        words = _block_words(blocks)
        pages.append(None if blocks[0][0] == "image" else " ".join(words))
    return pages


def char_recall(expected: str, extracted: str) -> float:
    """Share of the characters of `expected` that `extracted` reproduces in order, both with
    whitespace runs collapsed to one space (matched blocks of an alignment; extra characters in
    `extracted`, such as `#` or `|` marks, cost nothing)."""
    from difflib import SequenceMatcher

    expected, extracted = " ".join(expected.split()), " ".join(extracted.split())
    if not expected:
        return 1.0
    matcher = SequenceMatcher(None, expected, extracted, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(expected)


def _block_words(blocks) -> list[str]:
    words: list[str] = []
    for kind, payload in blocks:
        if kind in ("title", "heading", "subheading", "para"):
            words.append(str(payload).replace("|", ""))
        elif kind in ("bullets", "numbered"):
            words.extend(payload)  # type: ignore[arg-type]
        elif kind == "table":
            header, rows = payload  # type: ignore[misc]
            for row in [header, *rows]:
                words.extend(row)
        elif kind == "columns":
            left, right = payload  # type: ignore[misc]
            words.extend(_block_words(left) + _block_words(right))
    return words


# --------------------------------------------------------------------------- drawing


class _Writer:
    def __init__(self, canvas):
        self.canvas = canvas
        self.hyphenated = 0
        self.buffer: list | None = None

    def text_line(self, x: float, y: float, text: str, font: tuple[str, float, float]) -> None:
        if self.buffer is not None:
            self.buffer.append((y, x, text, font))
            return
        self.canvas.setFont(font[0], font[1])
        self.canvas.drawString(x, y, text)

    def wrap(self, text: str, font: tuple[str, float, float], width: float) -> list[str]:
        """Greedy line breaking; a word with "|" marks is hyphenated at one of them when it
        would otherwise move whole to the next line."""
        from reportlab.pdfbase.pdfmetrics import stringWidth

        def fits(line: str) -> bool:
            return stringWidth(line, font[0], font[1]) <= width

        lines: list[str] = []
        line = ""
        for word in text.split():
            candidate = f"{line} {word.replace('|', '')}".strip()
            if fits(candidate):
                line = candidate
                continue
            split = None
            if "|" in word:
                parts = word.split("|")
                for cut in range(len(parts) - 1, 0, -1):
                    head = "".join(parts[:cut]) + "-"
                    if fits(f"{line} {head}".strip()):
                        split = (head, "".join(parts[cut:]))
                        break
            if split:
                lines.append(f"{line} {split[0]}".strip())
                self.hyphenated += 1
                line = split[1]
            else:
                lines.append(line)
                line = word.replace("|", "")
        if line:
            lines.append(line)
        return lines

    def blocks(self, blocks, x: float, y: float, width: float) -> float:
        """Draw blocks top-down from baseline y; return the y below the last one."""
        for kind, payload in blocks:
            if kind in ("title", "heading", "subheading"):
                font = {"title": TITLE, "heading": HEADING, "subheading": SUBHEADING}[kind]
                y -= font[2] * 0.5
                for line in self.wrap(str(payload), font, width):
                    self.text_line(x, y, line, font)
                    y -= font[2]
            elif kind == "para":
                for line in self.wrap(str(payload), BODY, width):
                    self.text_line(x, y, line, BODY)
                    y -= BODY[2]
                y -= BODY[2] * 0.6
            elif kind in ("bullets", "numbered"):
                for number, item in enumerate(payload, start=1):  # type: ignore[arg-type]
                    marker = "\u2022" if kind == "bullets" else f"{number}."
                    self.text_line(x + 6, y, marker, BODY)
                    for line in self.wrap(item, BODY, width - 22):
                        self.text_line(x + 22, y, line, BODY)
                        y -= BODY[2]
                    y -= 2
                y -= BODY[2] * 0.6
            elif kind == "table":
                y = self.table(payload, x, y, width)
            elif kind == "columns":
                left, right = payload  # type: ignore[misc]
                gutter = 24.0
                column = (width - gutter) / 2
                # Drawn line by line across both columns, as many layout engines emit them:
                # content-stream order then interleaves the columns, so a reader that follows
                # it instead of the page geometry gets the reading order wrong.
                self.buffer = []
                y_left = self.blocks(left, x, y, column)
                y_right = self.blocks(right, x + column + gutter, y, column)
                buffered, self.buffer = self.buffer, None
                for line_y, line_x, text, font in sorted(buffered, key=lambda op: (-op[0], op[1])):
                    self.text_line(line_x, line_y, text, font)
                y = min(y_left, y_right)
            else:
                raise ValueError(f"unknown block kind {kind!r}")
        return y

    def table(self, payload, x: float, y: float, width: float) -> float:
        header, rows = payload
        widths = [0.22, 0.30, 0.20, 0.28]
        columns = [x + sum(widths[:i]) * width for i in range(len(widths))]
        row_height = BODY[2] + 6
        top = y + BODY[2] - 2
        c = self.canvas
        c.setLineWidth(0.6)
        for index, row in enumerate([header, *rows]):
            font = ("Helvetica-Bold", BODY[1], BODY[2]) if index == 0 else BODY
            for cell, left in zip(row, columns, strict=True):
                self.text_line(left + 4, y, cell, font)
            c.line(x, y - 5, x + width, y - 5)
            y -= row_height
        c.line(x, top, x + width, top)
        for left in [*columns, x + width]:
            c.line(left, top, left, y + row_height - 5)
        return y - BODY[2] * 0.6

    def image_page(self, caption: str) -> None:
        """A page that is one raster image: shapes and letters as pixels, no text operators."""
        from PIL import Image, ImageDraw
        from reportlab.lib.utils import ImageReader

        image = Image.new("L", (480, 640), 250)
        draw = ImageDraw.Draw(image)
        draw.rectangle((20, 20, 460, 620), outline=30, width=3)
        draw.ellipse((80, 160, 400, 420), outline=60, width=4)  # the lake
        draw.line((40, 560, 440, 470), fill=90, width=6)  # the road
        draw.text((40, 40), caption[:60], fill=0)
        draw.text((40, 60), caption[60:], fill=0)
        width, height = PAGE_SIZE
        self.canvas.drawImage(ImageReader(image), MARGIN, MARGIN, width - 2 * MARGIN, height - 2 * MARGIN)


def write_pdf(path: Path, pages: list[list[tuple[str, object]]]) -> int:
    """Write `pages` to `path`; return how many words were hyphenated at line ends."""
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path), pagesize=PAGE_SIZE, invariant=1, pageCompression=1)
    canvas.setTitle(path.stem.replace("_", " "))
    canvas.setAuthor("dataflow sample documents")
    writer = _Writer(canvas)
    width, height = PAGE_SIZE
    for number, blocks in enumerate(pages, start=1):
        if blocks[0][0] == "image":
            writer.image_page(str(blocks[0][1]))
        else:
            writer.blocks(blocks, MARGIN, height - MARGIN - 10, width - 2 * MARGIN)
            # A running header and a page number in the footer: page furniture a reader keeps
            # out of the text.
            writer.text_line(MARGIN, height - MARGIN / 2, RUNNING_HEADER, ("Helvetica", 8, 10))
            writer.text_line(width / 2 - 3, MARGIN / 2, str(number), ("Helvetica", 8, 10))
        canvas.showPage()
    canvas.save()
    return writer.hyphenated


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder to write into (default {OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    hyphenated = write_pdf(args.out / GUIDE, PAGES)
    if hyphenated < 1:
        raise SystemExit(
            "no word was hyphenated: adjust the '|' marks so the reader's de-hyphenation is exercised"
        )
    write_pdf(args.out / SCAN, [[("image", SCAN_TEXT)]])
    print(f"wrote {args.out / GUIDE} ({hyphenated} hyphenated words) and {args.out / SCAN}")


if __name__ == "__main__":
    main()
