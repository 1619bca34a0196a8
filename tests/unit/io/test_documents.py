"""Documents as input (dataflow_cli/io/documents.py, pdf_text.py): the sample PDFs of
pipelines/knowledge_qa (written by scripts/make_sample_documents.py from known text), HTML main
content, Markdown and text as they are, and every way a document can fail to give text."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from dataflow_cli.errors import InputError, SpecError
from dataflow_cli.io.documents import NO_TEXT_PDF, SCHEMA, html_main_text, read_documents
from dataflow_cli.io.inputs import iter_batches, read_schema
from dataflow_cli.io.paths import expand_inputs, format_for
from dataflow_cli.io.pdf_text import NO_TEXT_LAYER
from scripts.make_sample_documents import GUIDE, RUNNING_HEADER, SCAN, char_recall, expected_pages
from tests.conftest import REPO

pytest.importorskip("pypdf", reason="the `documents` extra (installed by `make test`)")

DOCS = REPO / "pipelines" / "knowledge_qa" / "docs"


@pytest.fixture(scope="module")
def guide() -> dict:
    return read_documents([DOCS / GUIDE])[0]


def page_text(row: dict, number: int) -> str:
    span = next(s for s in row["pages"] if s["page"] == number)
    return row["text"][span["start"] : span["end"]]


# --------------------------------------------------------------------------- PDF


def test_every_text_page_recalls_its_source_text(guide):
    assert guide["extract_error"] is None and guide["type"] == "pdf" and guide["page_count"] == 5
    for number, expected in enumerate(expected_pages(), start=1):
        if expected is None:
            continue
        assert char_recall(expected, page_text(guide, number)) >= 0.98, number


def test_the_image_only_page_is_left_out_with_its_reason(guide):
    assert [s["page"] for s in guide["pages"]] == [1, 2, 3, 5]
    assert guide["skipped_pages"] == [{"page": 4, "reason": NO_TEXT_LAYER}]
    assert "map of the northern shore" not in guide["text"]


def test_two_columns_read_column_by_column(guide):
    text = page_text(guide, 3)
    marks = [
        "Wildlife of the Northern Shore",
        "The reed beds west of the pier shelter a breeding colony of great crested grebes.",
        "nested on the old radio mast since 2015.",
        "Visitors are asked to stay on the boardwalk between March and July",
        "Lake Orrin holds perch, pike and a small population of Arctic char",
        "in buckets during the migration nights.",
    ]
    positions = [text.find(mark) for mark in marks]
    assert -1 not in positions, [m for m, p in zip(marks, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    # The stream draws the columns line by line across the page; naive order interleaves them.
    from pypdf import PdfReader

    naive = PdfReader(DOCS / GUIDE).pages[2].extract_text()
    assert "breeding\nLake Orrin holds" in naive


def test_headings_lists_tables_and_hyphenation_survive(guide):
    text = guide["text"]
    assert text.startswith("# Lake Orrin Field Station: A Visitor Guide\n\n")
    assert "\n## Getting There\n" in text and "\n### Birds\n" in text
    assert "- By bus: line 41 leaves Kessel Ford station every 90 minutes" in text
    assert "1. Register online at least 3 days before your visit.\n2. Bring waterproof boots" in text
    assert "Month | Departures per week | First boat | Water temperature\nApril | 2 | 10:00 | 6 °C" in text
    assert "three decades of measurements." in text and "for instrument calibration" in text
    # Page numbers in the footer and the running header are not text.
    assert not re.search(r"\n\d\n", text) and RUNNING_HEADER not in text


def test_a_scanned_pdf_is_a_row_with_its_reason_and_no_text():
    [row] = read_documents([DOCS / SCAN])
    assert row["text"] is None and row["extract_error"] == NO_TEXT_PDF
    assert row["page_count"] == 1 and row["skipped_pages"] == [{"page": 1, "reason": NO_TEXT_LAYER}]


def test_broken_encrypted_and_empty_pdfs_are_rows_with_reasons(tmp_path):
    from pypdf import PdfReader, PdfWriter

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not a PDF body\n")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    locked = tmp_path / "locked.pdf"
    writer = PdfWriter(clone_from=PdfReader(DOCS / GUIDE))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    writer.write(locked)
    rows = read_documents([broken, empty, locked])
    assert [r["text"] for r in rows] == [None, None, None]
    assert rows[0]["extract_error"].startswith("not a readable PDF: ")
    assert rows[1]["extract_error"] == "empty document"
    assert rows[2]["extract_error"] == "encrypted PDF: a password is needed"


def test_a_pdf_past_its_time_limit_is_killed_and_the_row_says_so(monkeypatch):
    monkeypatch.setenv("DATAFLOW_DOCUMENT_TIMEOUT", "0.001")
    [row] = read_documents([DOCS / GUIDE])
    assert row["text"] is None and row["extract_error"] == "extraction timed out: more than 0.001 s"


# --------------------------------------------------------------------------- HTML, Markdown, text


def test_html_keeps_the_main_content_with_headings():
    [row] = read_documents([DOCS / "ferry_crossing.html"])
    text = row["text"]
    assert row["type"] == "html" and text.startswith("# The Kessel Ford Ferry\n\nThe ferry Marta Lind")
    assert "\n## Timetable\n" in text and "Car with driver | 22 euros" in text
    assert "- Dogs travel free of charge on a leash." in text
    for boilerplate in ("Log in", "cookies", "Related pages", "All rights reserved", "Privacy", "analytics"):
        assert boilerplate not in text


def test_html_without_a_main_element_drops_navigation_and_boilerplate_lines():
    html = (
        "<html><body><div id='top-nav'><a href='/'>Home</a> <a href='/a'>About</a></div>"
        "<h2>Opening hours</h2><p>Open daily from 9 to 5.</p>"
        "<p>We use cookies to improve your experience.</p><footer>Contact us</footer></body></html>"
    )
    assert html_main_text(html) == "## Opening hours\n\nOpen daily from 9 to 5."


def test_markdown_and_text_are_kept_as_they_are(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("# Title\r\n\r\nSome *text* here.\r\n\r\n## Part\r\n- one\r\n", encoding="utf-8")
    txt = tmp_path / "plain.txt"
    txt.write_bytes(b"\xef\xbb\xbfLine one.\n\nLine two.\n")
    rows = read_documents([md, txt])
    assert rows[0]["text"] == "# Title\n\nSome *text* here.\n\n## Part\n- one"
    assert rows[0]["type"] == "markdown" and rows[0]["pages"] is None and rows[0]["page_count"] is None
    assert rows[1]["text"] == "Line one.\n\nLine two." and rows[1]["type"] == "text"
    assert rows[1]["size"] == txt.stat().st_size and rows[1]["name"] == "plain.txt"


def test_undecodable_and_empty_text_files_are_rows_with_reasons(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"first line\ncaf\xe9\n")
    blank = tmp_path / "blank.md"
    blank.write_text("\n\n  \n", encoding="utf-8")
    rows = read_documents([latin, blank])
    assert rows[0]["extract_error"] == "not valid UTF-8: byte 0xe9 on line 2 (re-encode the file as UTF-8)"
    assert rows[1]["extract_error"] == "empty document"


def test_a_file_that_cannot_be_opened_is_an_input_error_at_the_file(tmp_path):
    missing = tmp_path / "gone.md"
    with pytest.raises(InputError) as caught:
        read_documents([missing])
    assert caught.value.location == str(missing)


# --------------------------------------------------------------------------- paths and streaming


def test_document_suffixes_are_inputs_only():
    for name in ("a.pdf", "a.HTML", "a.htm", "a.md", "a.markdown", "a.txt"):
        assert format_for(Path(name), documents=True) == "documents"
    with pytest.raises(SpecError):
        format_for(Path("out.md"))  # not an output format


def test_a_folder_reads_every_document_below_it(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.md", "a.txt", "sub/c.html", "image.png", "data.jsonl"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert [p.relative_to(tmp_path).as_posix() for p in expand_inputs(".", tmp_path)] == [
        "a.txt",
        "b.md",
        "sub/c.html",
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        expand_inputs("empty", tmp_path)


def test_documents_stream_in_batches_with_one_schema(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.md").write_text(f"# Doc {i}\n\nBody {i}.", encoding="utf-8")
    (tmp_path / "5.md").write_text("", encoding="utf-8")  # an empty document is still a row
    paths = expand_inputs("*.md", tmp_path)
    tables = list(iter_batches(paths, batch_size=2))
    assert [t.num_rows for t in tables] == [2, 2, 2]
    assert all(t.schema.equals(SCHEMA) for t in tables)
    rows = pa.concat_tables(tables).to_pylist()
    assert [r["name"] for r in rows] == [f"{i}.md" for i in range(6)]
    assert rows[5]["extract_error"] == "empty document"
    assert read_schema(paths)["text"] == "string"


def test_the_committed_pdfs_are_what_the_script_writes(tmp_path):
    from scripts.make_sample_documents import main

    main(["--out", str(tmp_path)])
    for name in (GUIDE, SCAN):
        rebuilt, committed = read_documents([tmp_path / name, DOCS / name])
        for column in ("text", "pages", "page_count", "skipped_pages", "extract_error"):
            assert rebuilt[column] == committed[column], (name, column)


# --------------------------------------------------------------------------- layout rules on pieces


def piece(x, y, text, size=10.0, bold=False):
    from dataflow_cli.io.pdf_text import Piece

    return Piece(x, y, size, 0.5 * size * len(text), bold, text)


def test_layout_of_three_columns_a_bold_heading_and_a_running_footer():
    from dataflow_cli.io.pdf_text import layout_page, running_lines, segments

    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    pieces = [piece(50, 760, "Survey Results", bold=True)]
    for column, x in enumerate((50, 230, 410)):
        for line in range(4):  # three columns of prose, drawn row by row across the page
            text = " ".join(f"{w}{column}{line}" for w in words[:4])
            pieces.append(piece(x, 730 - 14 * line, text))
    pieces.append(piece(50, 20, "Field notes, page 7"))
    running = running_lines([(segments(pieces), 842.0)] * 3)
    text = layout_page(pieces, 595, 842, 10.0, {}, running)
    lines = text.split("\n\n")
    assert lines[0] == "# Survey Results"  # bold, alone, at body size: a heading
    order = [int(token[-2:-1]) for token in text.split() if token.startswith("alpha")]
    assert order == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]  # column by column
    assert len(lines) == 4  # a column is a block of its own
    assert "Field notes" not in text


def test_layout_of_a_two_column_table_of_short_cells():
    from dataflow_cli.io.pdf_text import layout_page

    pieces = [piece(50, 700 - 16 * i, left) for i, left in enumerate(("Name", "Heron II", "Marta Lind"))]
    pieces += [piece(300, 700 - 16 * i, right) for i, right in enumerate(("Built", "1998", "1964"))]
    assert layout_page(pieces, 595, 842, 10.0, {}) == "Name | Built\nHeron II | 1998\nMarta Lind | 1964"
