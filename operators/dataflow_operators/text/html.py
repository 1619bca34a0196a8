"""HTML to plain text: scripts, styles and markup removed, block structure kept as lines."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.rewrite import may_match, rewrite_rows

_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "head", "template", "svg"})


_HEAD_CONTENT = frozenset({"title", "meta", "link", "base", "style", "script", "noscript", "template"})


_PARAGRAPH_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl", "figure",
     "hr", "form", "fieldset", "details", "section", "article", "header", "footer", "nav", "aside",
     "main", "address"}
)  # fmt: skip


_LINE_TAGS = frozenset(
    {"div", "li", "dt", "dd", "tr", "caption", "figcaption", "summary", "legend", "option", "body",
     "html", "center", "thead", "tbody", "tfoot", "menu", "title", "label", "textarea", "select",
     "dialog", "hgroup", "search", "noframes", "frameset", "iframe", "video", "audio", "canvas"}
)  # fmt: skip


_CELL_TAGS = frozenset({"td", "th"})


_LIST_TAGS = frozenset({"ul", "ol", "menu"})


_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


_TAG_LIKE = re.compile(r"<[^>]*>")


_BLANK_LINES = re.compile(r"[ \t]+\n|\n[ \t]+(?=\n)")


_MANY_NEWLINES = re.compile(r"\n{3,}")


class _HtmlText(HTMLParser):
    """Collects the readable text of an HTML document (see `HtmlToTextRefiner`)."""

    def __init__(self, keep_links: bool):
        super().__init__(convert_charrefs=True)
        self.keep_links = keep_links
        self.out: list[str] = []
        self.breaks = 0  # newlines owed before the next text
        self.space = False  # a space owed before the next text
        self.separator = ""  # a table-cell separator owed before the next text
        self.prefix = ""  # a list-item marker owed at the start of the next text
        self.line_start = True
        self.skip: dict[str, int] = {}
        self.lists = 0
        self.pre = 0
        self.row_cells = 0
        self.links: list[tuple[str | None, int]] = []  # (href, len(out) at <a>)

    # Block structure.
    def _break(self, count: int) -> None:
        self.breaks = max(self.breaks, count)
        self.space = False
        self.separator = ""

    def handle_starttag(self, tag, attrs):
        if self.skip.get("head") and tag not in _HEAD_CONTENT:
            self.skip["head"] = 0  # content outside head-only elements closes <head>
        if tag in _SKIPPED_TAGS:
            if tag not in _VOID_TAGS:
                self.skip[tag] = self.skip.get(tag, 0) + 1
            return
        if tag == "body":
            self.skip["head"] = 0
        if self._skipping():
            return
        if tag == "br":
            self.breaks += 1
            self.space = False
            return
        if tag in _LIST_TAGS and self.lists:
            self._break(1)  # a nested list continues its parent's lines
        elif tag in _PARAGRAPH_TAGS:
            self._break(2)
        elif tag in _LINE_TAGS:
            self._break(1)
        if tag in _LIST_TAGS:
            self.lists += 1
        elif tag == "li":
            self.prefix = "  " * max(self.lists - 1, 0) + "- "
        elif tag == "pre":
            self.pre += 1
        elif tag == "tr":
            self.row_cells = 0
        elif tag in _CELL_TAGS:
            if self.row_cells:
                self.separator = " | "
            self.row_cells += 1
        elif tag == "a":
            href = dict(attrs).get("href")
            self.links.append((href, len(self.out)))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in _SKIPPED_TAGS:
            if self.skip.get(tag):
                self.skip[tag] -= 1
            return
        if self._skipping():
            return
        if tag in _LIST_TAGS and self.lists > 1:
            self._break(1)
        elif tag in _PARAGRAPH_TAGS:
            self._break(2)
        elif tag in _LINE_TAGS:
            self._break(1)
        if tag in _LIST_TAGS:
            self.lists = max(self.lists - 1, 0)
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
        elif tag == "li":
            self.prefix = ""
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            shown = "".join(self.out[start:]).strip()
            if self.keep_links and shown and _shown_href(href) and shown != href.strip():
                self.space = True
                self._write(f"({href.strip()})")

    def handle_data(self, data):
        if self._skipping():
            return
        if self.pre:
            lines = data.split("\n")
            for i, line in enumerate(lines):
                if i:
                    self.breaks += 1
                if line:
                    self._write(line)
            return
        collapsed = _HTML_SPACE.sub(" ", data)
        if collapsed.startswith(" "):
            self.space = True
        words = collapsed.strip(" ")
        if words:
            self._write(words)
            if collapsed.endswith(" "):
                self.space = True

    def _skipping(self) -> bool:
        return any(self.skip.values())

    def _write(self, text: str) -> None:
        if self.breaks and self.out:
            self.out.append("\n" * self.breaks)
            self.line_start = True
        elif self.separator and not self.line_start:
            self.out.append(self.separator)
        elif self.space and not self.line_start:
            self.out.append(" ")
        self.breaks = 0
        self.space = False
        self.separator = ""
        if self.line_start and self.prefix:
            self.out.append(self.prefix)
            self.prefix = ""
        self.out.append(text)
        self.line_start = False

    def text(self) -> str:
        return "".join(self.out)


def _shown_href(href: str | None) -> bool:
    if not href or not href.strip():
        return False
    lowered = href.strip().lower()
    return not lowered.startswith(("#", "javascript:", "data:"))


def html_to_text(html: str, keep_links: bool = False) -> str:
    """The readable text of an HTML document (see `HtmlToTextRefiner` for the rules)."""
    if "<" not in html and "&" not in html:
        return html
    parser = _HtmlText(keep_links)
    try:
        parser.feed(html)
        parser.close()
        text = parser.text()
    except (AssertionError, ValueError, IndexError):  # html.parser gives up on some malformed input
        import html as html_module

        text = html_module.unescape(_TAG_LIKE.sub(" ", html))
    text = _BLANK_LINES.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


class HtmlToTextRefiner(Refiner):
    """Convert HTML to readable plain text with the standard library's HTML parser.

    The contents of script, style, noscript, template, svg and head elements are dropped
    (a tag that cannot be in <head> closes it, as in browsers). Whitespace collapses as HTML
    renders it (runs of spaces, tabs and newlines become one space; <pre> keeps its own). Block
    elements start new lines: paragraphs, headings, lists, tables, blockquotes and sectioning
    elements are separated by a blank line, other blocks (div, li, tr, dt/dd, ...) by a line
    break; <br> is a line break. Each <li> becomes a line starting with "- " (indented two
    spaces per nesting level); table cells in a row are joined with " | ". Entities and character
    references are unescaped (&amp; -> &, &nbsp; -> U+00A0). Finally, trailing spaces of lines go,
    runs of blank lines collapse to one and the text is stripped. A text without any "<" or "&"
    is left unchanged; input the parser cannot handle falls back to removing tags. Null stays null.

    Inputs:
        text: HTML to convert; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        keep_links: append " (url)" after the text of each link (default false); links to
            fragments ("#..."), "javascript:" and "data:" URLs are never shown.
    """

    name = "html_to_text_refiner"
    cpu_bound = True  # an HTML parser runs per row in Python
    inputs = {"text": Port("HTML to convert to plain text; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        keep_links: bool = Field(
            False,
            description="Append ' (url)' after each link's text (not for #, javascript: or data: links).",
        )

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        keep_links = self.params.keep_links
        return {"text": rewrite_rows(text, may_match(text, "[<&]"), lambda s: html_to_text(s, keep_links))}
