"""Text refiners for web and document text: HTML to text, URL/emoji removal, mojibake repair,
punctuation normalization, boilerplate and repeated-line removal, and truncation.

Every refiner rewrites its `text` input in place, keeps nulls null, and does as much as it can
with vectorised Arrow kernels (RE2 regexes): rows that cannot change are found with one RE2 scan
and left untouched, so only the rows that need it go through Python.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.operator import Batch, Port, Refiner
from operators._arrow import HORIZONTAL_SPACE, normalize_unicode, text_column
from operators.text import re2_error

_TEXT_PORT = "text to clean; rewritten in place"

# --- shared helpers ---


def rewrite_rows(text: pa.Array, mask: pa.Array | None, fn: Callable[[str], str]) -> pa.Array:
    """`text` with `fn` applied in Python to the non-null rows where `mask` is true (all non-null
    rows if `mask` is None); other rows are returned untouched."""
    if mask is None:
        mask = pc.is_valid(text)
    else:
        mask = pc.and_(pc.fill_null(mask, False), pc.is_valid(text))
    count = pc.sum(mask).as_py() or 0
    if count == 0:
        return text
    new = pa.array([fn(s) for s in pc.filter(text, mask).to_pylist()], text.type)
    if count == len(text):
        return new
    return pc.replace_with_mask(text, mask, new)


def may_match(text: pa.Array, pattern: str) -> pa.Array:
    """Per row: does RE2 `pattern` match somewhere (false for nulls)."""
    return pc.match_substring_regex(text, pattern).fill_null(False)


def _escape_replacement(text: str) -> str:
    """`text` as a literal RE2 rewrite string (backslash escapes and \\1 groups disabled)."""
    return text.replace("\\", "\\\\")


# Unicode noncharacters, one of which marks removed tokens while spacing is mended.
_MARKERS = [chr(c) for c in range(0xFDD0, 0xFDF0)]


def remove_tokens(text: pa.Array, token: str, replacement: str = "", brackets: bool = False) -> pa.Array:
    """Replace every match of RE2 `token` by `replacement`; when removing (replacement ""),
    also mend the spacing around what was removed.

    When removing: with `brackets`, a token wrapped in (), [] or <> goes with its brackets.
    Consecutive tokens separated only by spaces/tabs count as one run. A run with spaces on both
    sides leaves one space; a run alone on its line removes the line; at a line start or end,
    or before closing punctuation, the run takes its adjacent spaces with it. Tokens are first
    turned into a noncharacter marker absent from the text (one pass of the possibly costly
    token pattern), and the spacing passes then look for that one character.
    """
    mask = may_match(text, token)
    if not pc.any(mask).as_py():
        return text
    part = pc.filter(text, mask)
    if replacement:
        part = pc.replace_substring_regex(part, token, _escape_replacement(replacement))
        return pc.replace_with_mask(text, mask, part)
    marker = next((m for m in _MARKERS if not pc.any(pc.match_substring(part, m)).as_py()), None)
    if marker is None:  # every marker occurs in the text: match the token itself each time
        mark = f"(?:{_bracketed(token)})" if brackets else f"(?:{token})"
    else:
        part = pc.replace_substring_regex(part, token, marker)
        if brackets:
            part = pc.replace_substring(part, f"({marker})", marker)
            part = pc.replace_substring(part, f"[{marker}]", marker)
            part = pc.replace_substring(part, f"<{marker}>", marker)
        mark = f"\\x{{{ord(marker):X}}}"
    run = f"{mark}(?:[ \\t]*{mark})*"
    for pattern, rewrite in (
        (f"\\n[ \\t]*{run}[ \\t]*(\\n|$)", r"\1"),  # a line holding only tokens goes
        (f"^[ \\t]*{run}[ \\t]*(?:\\n|$)", ""),
        (f"[ \\t]+{run}[ \\t]+", " "),
        (f"(^|\\n)[ \\t]*{run}[ \\t]*", r"\1"),
        (f"[ \\t]*{run}[ \\t]*(\\n|$)", r"\1"),
        (f"[ \\t]*{run}([.,;:!?)\\]}}])", r"\1"),
        (run, ""),
    ):
        part = pc.replace_substring_regex(part, pattern, rewrite)
    return pc.replace_with_mask(text, mask, part.cast(text.type))


def _lines_of(text: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """`text` split on "\\n": the list array, its flattened lines and the list offsets."""
    split = pc.split_pattern(text, "\n")
    offsets = split.offsets.to_numpy().astype(np.int64)
    return split, split.flatten(), offsets - offsets[0]


def _join_kept_lines(text: pa.Array, lines: pa.Array, offsets: np.ndarray, keep: np.ndarray) -> pa.Array:
    """Rows of `text` rebuilt from their lines where `keep` is true, joined with "\\n"."""
    kept_before = np.zeros(len(keep) + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    rebuilt = pa.LargeListArray.from_arrays(
        pa.array(kept_before[offsets]), pc.filter(lines, pa.array(keep)), mask=text.is_null()
    )
    return pc.binary_join(rebuilt, pa.scalar("\n", lines.type)).cast(text.type)


# --- html_to_text_refiner ---

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


# --- url_removal_refiner ---

# Characters a URL may hold (RE2 class bodies): not whitespace, quotes or brackets; a URL may
# not end with punctuation, and may hold balanced parentheses ("/wiki/Foo_(bar)").
_URL_CHAR = r"[^\s<>\"'`(){}\[\]\x{AB}\x{BB}\x{2018}\x{2019}\x{201C}\x{201D}]"
_URL_LAST = r"[^\s<>\"'`(){}\[\]\x{AB}\x{BB}\x{2018}\x{2019}\x{201C}\x{201D}.,;:!?\x{2026}]"
_URL_PARENS = r"\(" + _URL_CHAR + r"*\)"
URL_RE2 = (
    r"(?:\b(?i:https?|ftp)://|\b(?i:www)\d{0,3}\.)"
    f"(?:{_URL_CHAR}|{_URL_PARENS})*(?:{_URL_LAST}|{_URL_PARENS})"
)
EMAIL_RE2 = r"(?i:mailto:)?[\pL\pN._%+\-]+@[\pL\pN\-]+(?:\.[\pL\pN\-]+)*\.\pL{2,}"


def _bracketed(token: str) -> str:
    """`token`, alone or wrapped in (), [] or <> (the brackets go with it)."""
    return f"\\((?:{token})\\)|\\[(?:{token})\\]|<(?:{token})>|(?:{token})"


class UrlRemovalRefiner(Refiner):
    """Remove URLs (and optionally email addresses) from text, mending the spaces around them.

    A URL starts with http://, https://, ftp:// or www. (any case) at a word boundary and runs
    to the next whitespace, quote or bracket; trailing punctuation (. , ; : ! ? …) is not part of
    it, balanced parentheses inside it are. With `remove_emails`, addresses like
    "name@example.org" (optionally after "mailto:") go too. With the default empty
    `replacement` a URL wrapped in (), [] or <> goes with its brackets, and spacing is mended: a
    URL between two spaces leaves one space, one alone on its line removes the line, one at a
    line end or before punctuation takes the space before it. A non-empty `replacement` (e.g.
    "<URL>") is inserted literally in place of each URL. Null stays null.

    Inputs:
        text: the text to clean; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        remove_emails: also remove email addresses (default false).
        replacement: text put in place of each URL/email (default "": remove).
    """

    name = "url_removal_refiner"
    inputs = {"text": Port(_TEXT_PORT)}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        remove_emails: bool = Field(False, description="Also remove email addresses (name@example.org).")
        replacement: str = Field(
            "", description="Literal text put in place of each URL or email; empty removes them."
        )

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        token = f"{EMAIL_RE2}|{URL_RE2}" if self.params.remove_emails else URL_RE2
        return {"text": remove_tokens(text, token, self.params.replacement, brackets=True)}


# --- unicode_fix_refiner ---


def _sloppy_bytes() -> dict[str, int]:
    """Each character a byte decodes to under cp1252 or latin-1, mapped back to the byte."""
    table = {chr(b): b for b in range(256)}  # latin-1, including the C1 controls
    for b in range(0x80, 0xA0):
        try:
            table[bytes([b]).decode("cp1252")] = b
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in cp1252
            pass
    return table


_SLOPPY = _sloppy_bytes()
_CONT_CHARS = "".join(sorted(c for c, b in _SLOPPY.items() if 0x80 <= b <= 0xBF))
_CONT = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in _CONT_CHARS) + "]"  # RE2 class
_CONT_PY = "[" + re.escape(_CONT_CHARS) + "]"
# A character sequence that is the UTF-8 encoding of one character decoded as cp1252/latin-1.
_MOJIBAKE_SEQ = re.compile(f"[\xc2-\xdf]{_CONT_PY}|[\xe0-\xef]{_CONT_PY}{{2}}|[\xf0-\xf4]{_CONT_PY}{{3}}")
_MOJIBAKE_RUN = re.compile(f"(?:{_MOJIBAKE_SEQ.pattern})+")
_MOJIBAKE_RE2 = f"[\\x{{C2}}-\\x{{F4}}]{_CONT}"
_CONTROL_RE2 = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{FEFF}]"
_BAD_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})


def _fix_run(match: re.Match) -> str:
    run = match.group(0)
    sequences = _MOJIBAKE_SEQ.findall(run)
    fixed = []
    for seq in sequences:
        try:
            char = bytes(_SLOPPY[c] for c in seq).decode("utf-8")
        except UnicodeDecodeError:
            fixed.append(seq)
            continue
        # A lone two-character sequence is only trusted with the lead bytes of Latin-1
        # letters and symbols (Ã, Â): "ß“" in German text is not mojibake.
        trusted = len(sequences) > 1 or len(seq) > 2 or seq[0] in "\xc2\xc3"
        fixed.append(char if trusted and unicodedata.category(char) not in _BAD_CATEGORIES else seq)
    return "".join(fixed)


def fix_mojibake(text: str) -> str:
    """`text` with UTF-8 that was decoded as cp1252/latin-1 decoded again (up to three layers)."""
    for _ in range(3):
        before = len(_MOJIBAKE_SEQ.findall(text))
        if not before:
            break
        fixed = _MOJIBAKE_RUN.sub(_fix_run, text)
        if fixed == text or len(_MOJIBAKE_SEQ.findall(fixed)) >= before:
            break
        text = fixed
    return text


class UnicodeFixRefiner(Refiner):
    """Repair mojibake, normalize Unicode and remove control characters.

    Mojibake: text that was UTF-8 but got decoded as Windows-1252 or Latin-1 shows typical
    sequences ("cafÃ©" for "café", "â€™" for "’", "Ð¿Ñ€Ð¸" for "при"). Each run of such
    sequences is re-encoded to bytes (cp1252, falling back to latin-1 for bytes cp1252 leaves
    undefined) and decoded as UTF-8; the result is kept only if it decodes cleanly, yields no
    control/unassigned characters and leaves fewer mojibake sequences than before. A lone
    two-character sequence is fixed only if it starts with "Â" or "Ã" (so "Fuß“" stays).
    Doubly encoded text is repaired in up to three rounds. Then the text is normalized
    (`form`), and finally control characters are removed (`remove_control`): "\\r\\n" and "\\r"
    become "\\n", every other C0/C1 control character except "\\n" and "\\t" is removed, as is
    the byte-order mark U+FEFF. Null stays null.

    Inputs:
        text: the text to repair; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        fix_mojibake: repair UTF-8 mis-decoded as cp1252/latin-1 (default true).
        form: Unicode normalization form applied after the repair (default NFC; null for none).
        remove_control: remove control characters as described (default true).
    """

    name = "unicode_fix_refiner"
    inputs = {"text": Port("text to repair; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        fix_mojibake: bool = Field(
            True, description="Repair UTF-8 text that was mis-decoded as cp1252/latin-1."
        )
        form: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field(
            "NFC", description="Unicode normalization applied after the repair; null to skip."
        )
        remove_control: bool = Field(
            True,
            description="Turn CR/CRLF into LF and remove other control characters (except \\n and "
            "\\t) and U+FEFF.",
        )

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        params = self.params
        text = text_column(batch, "text")
        if params.fix_mojibake:
            text = rewrite_rows(text, may_match(text, _MOJIBAKE_RE2), fix_mojibake)
        if params.form is not None:
            text = normalize_unicode(text, params.form)
        if params.remove_control:
            mask = may_match(text, _CONTROL_RE2)
            if pc.any(mask).as_py():
                part = pc.replace_substring_regex(pc.filter(text, mask), r"\r\n?", "\n")
                part = pc.replace_substring_regex(part, _CONTROL_RE2, "")
                text = pc.replace_with_mask(text, mask, part)
        return {"text": text}


# --- punctuation_normalize_refiner ---

_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'"} | dict.fromkeys(
    "\u201c\u201d\u201e\u201f", '"'
)
_DASHES = dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63", "-")
_ELLIPSIS = {"\u2026": "..."}
_FULLWIDTH = {
    chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if not chr(c - 0xFEE0).isalnum()
}  # fullwidth ASCII punctuation and symbols (letters and digits are left to NFKC)
_PUNCT_RUN_RE2 = r"[\pP$+<=>^`|~]"


def _re2_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in sorted(chars)) + "]"


class PunctuationNormalizeRefiner(Refiner):
    """Normalize punctuation: straight quotes, ASCII dashes, no fullwidth marks or long runs.

    Mappings (each can be turned off): curly single quotes ‘ ’ ‚ ‛ -> ' and double quotes “ ” „ ‟
    -> " (`quotes`; guillemets and primes are kept); hyphens and dashes ‐ ‑ ‒ – — ― ⸺ ⸻, the minus
    sign − and small dashes -> - (`dashes`); the ellipsis character … -> ... (`ellipsis`);
    fullwidth punctuation and symbols U+FF01..U+FF5E (！ ， （ ） ： ？ ...) -> their ASCII
    counterparts (`fullwidth`; fullwidth letters and digits are left to NFKC normalization).
    Then a run of the same punctuation character (Unicode category P*, or an ASCII symbol)
    longer than `max_repeat` is cut to `max_repeat` ("!!!!!!" -> "!!!"); this runs after the
    mappings, so "……" counts as six dots. Null stays null.

    Inputs:
        text: the text to normalize; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        quotes: curly quotes to straight ones (default true).
        dashes: Unicode dashes and minus to "-" (default true).
        ellipsis: "…" to "..." (default true).
        fullwidth: fullwidth punctuation to ASCII (default true).
        max_repeat: longest run of one repeated punctuation character kept (default 3; null for
            no limit).
    """

    name = "punctuation_normalize_refiner"
    inputs = {"text": Port("text to normalize; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        quotes: bool = Field(True, description="Map curly quotes ‘ ’ ‚ ‛ “ ” „ ‟ to ' and \".")
        dashes: bool = Field(True, description="Map Unicode hyphens, dashes and the minus sign to '-'.")
        ellipsis: bool = Field(True, description="Map the ellipsis character '…' to '...'.")
        fullwidth: bool = Field(True, description="Map fullwidth punctuation (！，：？ ...) to ASCII.")
        max_repeat: int | None = Field(
            3,
            ge=1,
            description="Cut runs of one repeated punctuation character to this length; null: no limit.",
        )

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        params = self.params
        mapping: dict[str, str] = {}
        for enabled, table in (
            (params.quotes, _QUOTES),
            (params.dashes, _DASHES),
            (params.ellipsis, _ELLIPSIS),
            (params.fullwidth, _FULLWIDTH),
        ):
            if enabled:
                mapping.update(table)
        self._table = str.maketrans(mapping)
        checks = [_re2_class("".join(mapping))] if mapping else []
        if params.max_repeat is not None:
            checks.append(f"{_PUNCT_RUN_RE2}{{{params.max_repeat + 1},}}")
            self._repeat = re.compile(f"([^\\w\\s])\\1{{{params.max_repeat},}}")
        else:
            self._repeat = None
        self._check = "|".join(checks)

    def _normalize(self, text: str) -> str:
        text = text.translate(self._table)
        if self._repeat is not None:
            limit = self.params.max_repeat
            text = self._repeat.sub(lambda m: _cut_run(m, limit), text)
        return text

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        if not self._check:
            return {"text": text}
        return {"text": rewrite_rows(text, may_match(text, self._check), self._normalize)}


def _cut_run(match: re.Match, limit: int) -> str:
    char = match.group(1)
    if char.isascii() or unicodedata.category(char).startswith("P"):
        return char * limit
    return match.group(0)


# --- emoji_removal_refiner ---

# Extended_Pictographic code points (Unicode emoji data) that are removed wherever they appear:
# default-emoji BMP characters, the Miscellaneous Symbols and Dingbats pictographs, and the
# pictographic blocks of plane 1 (with skin-tone modifiers and regional indicators).
_PICTOGRAPHIC = [
    (0x231A, 0x231B), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x25FD, 0x25FE),
    (0x2600, 0x2605), (0x2607, 0x2612), (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712),
    (0x2714, 0x2714), (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728),
    (0x2733, 0x2734), (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C), (0x274E, 0x274E),
    (0x2753, 0x2755), (0x2757, 0x2757), (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1),
    (0x27B0, 0x27B0), (0x27BF, 0x27BF), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55),
    (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1FF),
    (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F), (0x1F249, 0x1F53D), (0x1F546, 0x1F64F), (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F), (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F), (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF), (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945), (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD),
]  # fmt: skip
# Extended_Pictographic characters whose default presentation is text and which are common in
# ordinary writing (© ® ™ ‼ arrows, ▶ ◀ ...): removed only as emoji, i.e. followed by U+FE0F.
_TEXT_PICTOGRAPHIC = [
    (0xA9, 0xA9), (0xAE, 0xAE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x2328, 0x2328), (0x2388, 0x2388),
    (0x23CF, 0x23CF), (0x24C2, 0x24C2), (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0),
    (0x25FB, 0x25FC), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x3030, 0x3030), (0x303D, 0x303D),
    (0x3297, 0x3297), (0x3299, 0x3299),
]  # fmt: skip


def _ranges_class(ranges: list[tuple[int, int]]) -> str:
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


_PIC = _ranges_class(_PICTOGRAPHIC)
_TEXT_PIC = _ranges_class(_TEXT_PICTOGRAPHIC)
# Variation selectors 15/16, skin-tone modifiers, tag characters (subdivision flags).
_EMOJI_TAIL = r"[\x{FE0E}\x{FE0F}\x{1F3FB}-\x{1F3FF}\x{E0020}-\x{E007F}]"
_EMOJI_ELEMENT = f"(?:{_PIC}|{_TEXT_PIC}\\x{{FE0F}}){_EMOJI_TAIL}*"
EMOJI_RE2 = (
    f"[0-9#*]\\x{{FE0F}}?\\x{{20E3}}"  # keycaps
    f"|{_EMOJI_ELEMENT}(?:\\x{{200D}}(?:{_EMOJI_ELEMENT}|{_TEXT_PIC}{_EMOJI_TAIL}*))*\\x{{200D}}?"
    f"|[\\x{{FE0E}}\\x{{FE0F}}\\x{{20E3}}\\x{{E0020}}-\\x{{E007F}}]"  # leftover selectors and tags
)


class EmojiRemovalRefiner(Refiner):
    """Remove emoji, including ZWJ sequences, skin tones, flags and keycaps.

    Removed: Extended_Pictographic characters (Unicode emoji data) of the Miscellaneous Symbols
    and Dingbats blocks, default-emoji BMP characters (⌚ ⏩ ⬛ ⭐ ...) and the pictographic blocks of
    plane 1 (😀 🚀 🃏 ...), each with any variation selector, skin-tone modifier (U+1F3FB..1F3FF)
    or tag characters that follow; whole zero-width-joiner sequences (👨‍👩‍👧, 🏳️‍🌈); regional-indicator
    flags (🇫🇷); keycaps (1️⃣ #️⃣); and leftover variation selectors U+FE0E/U+FE0F and U+20E3.
    Pictographs that are ordinary text by default (© ® ™ ‼ ⁉ ℹ ↔ ▶ ◀ ⬅ 〰 ...) are removed only
    when U+FE0F asks for emoji presentation; a zero-width joiner not inside an emoji sequence
    (Indic scripts) is kept. Spacing is mended as by `url_removal_refiner`: "a 😀 b" -> "a b",
    "Great job 👍" -> "Great job", a line holding only emoji is removed. Null stays null.

    Inputs:
        text: the text to clean; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        (none)
    """

    name = "emoji_removal_refiner"
    inputs = {"text": Port(_TEXT_PORT)}

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        return {"text": remove_tokens(text_column(batch, "text"), EMOJI_RE2)}


# --- boilerplate_line_refiner ---

_LOGIN = r"(?:log\s*-?\s*in|log\s*-?\s*out|sign\s*-?\s*in|sign\s*-?\s*up|register|create\s+(?:an\s+)?account|my\s+account)"
BOILERPLATE_PATTERNS: tuple[str, ...] = (
    # cookie and consent banners
    r"\bcookies?\b.*\b(?:use|uses|using|accept|consent|agree|policy|settings|preferences|experience)\b",
    r"\b(?:we|this\s+(?:web)?site|our\s+(?:web)?site)\s+uses?\s+cookies\b",
    r"\b(?:accept|allow|reject|manage)\s+(?:all\s+)?cookies\b",
    r"\bwe\s+(?:value\s+)?your\s+privacy\b",
    r"\ball\s+rights\s+reserved\b",
    r"^\W*(?:copyright|©|\(c\))\s*(?:©\s*)?(?:\d{4}\s*(?:[-–]\s*\d{4})?)",
    r"\b(?:subscribe|sign\s*up)\s+(?:to|for)\s+(?:our|the)\s+(?:\w+\s+)?newsletter\b",
    r"\bshare\s+(?:this\s+(?:\w+\s+)?)?(?:on|via)\s+(?:facebook|twitter|x|linkedin|pinterest|whatsapp|reddit|email)\b",
    r"^\W*share\s*(?:this|on|via)?\s*:?\W*$",
    r"\bfollow\s+us\s+on\b",
    r"\bclick\s+here\b",
    r"\bterms\s+(?:of\s+(?:use|service)|and\s+conditions|&\s+conditions)\b",
    r"\bprivacy\s+(?:policy|notice|statement|settings)\b",
    r"\bskip\s+to\s+(?:the\s+)?(?:main\s+)?(?:content|navigation)\b",
    rf"^\W*{_LOGIN}(?:\s*(?:/|\||or|and|,)\s*{_LOGIN})*\W*$",
    r"\bjavascript\b.*\b(?:enabled?|disabled|required|turned\s+off|supported)\b",
    r"\b(?:enable|turn\s+on|activate)\s+javascript\b",
    r"^\W*(?:back\s+to\s+top|read\s+more|load\s+more|show\s+more|see\s+more)\W*$",
)


class BoilerplateLineRefiner(Refiner):
    """Drop boilerplate lines: cookie banners, copyright notices, share buttons, login links.

    The text is split on "\\n" and every line up to `max_line_chars` code points that matches
    one of the patterns (RE2, case-insensitive, searched anywhere in the line; ^ and $ anchor at
    the line's ends) is dropped; all other lines are kept exactly as they were. The default
    patterns catch cookie/consent notices, "all rights reserved" and copyright lines, newsletter
    invitations, "share on facebook/twitter/..." and "follow us on", "click here", "terms of
    use/service" and "privacy policy", "skip to content", lines made only of "log in / sign up /
    register" links, "JavaScript must be enabled" notices and "read more"/"back to top" links.
    Long lines are never dropped, so an article that discusses privacy policies survives. Null
    stays null; a text that loses every line becomes "".

    Inputs:
        text: the text whose boilerplate lines are dropped; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        patterns: extra RE2 patterns marking boilerplate lines (matched case-insensitively).
        replace_defaults: use only `patterns`, not the default ones (default false).
        max_line_chars: only lines up to this many code points can be dropped (default 200; null
            for any length).
    """

    name = "boilerplate_line_refiner"
    inputs = {"text": Port("text whose boilerplate lines are dropped; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        patterns: list[str] = Field(
            [], description="Extra RE2 patterns marking a boilerplate line (case-insensitive)."
        )
        replace_defaults: bool = Field(
            False, description="Use only `patterns` instead of adding them to the default patterns."
        )
        max_line_chars: int | None = Field(
            200, ge=1, description="Only lines up to this many code points are dropped; null: any length."
        )

        @field_validator("patterns")
        @classmethod
        def _compile(cls, patterns: list[str]) -> list[str]:
            for pattern in patterns:
                if not pattern:
                    raise ValueError("a pattern is empty")
                error = re2_error(pattern)
                if error is not None:
                    raise ValueError(f"invalid regular expression /{pattern}/: {error} (RE2 syntax)")
            return patterns

        @model_validator(mode="after")
        def _some_pattern(self):
            if self.replace_defaults and not self.patterns:
                raise ValueError("`replace_defaults: true` needs at least one pattern in `patterns`")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        patterns = list(self.params.patterns)
        if not self.params.replace_defaults:
            patterns = [*BOILERPLATE_PATTERNS, *patterns]
        self._pattern = "(?i)" + "|".join(f"(?:{p})" for p in patterns)
        self._text_pattern = "(?im)" + "|".join(f"(?:{p})" for p in patterns)

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        mask = may_match(text, self._text_pattern)
        if not pc.any(mask).as_py():
            return {"text": text}
        part = pc.filter(text, mask)
        _, lines, offsets = _lines_of(part)
        drop = pc.match_substring_regex(lines, self._pattern)
        if self.params.max_line_chars is not None:
            drop = pc.and_(drop, pc.less_equal(pc.utf8_length(lines), self.params.max_line_chars))
        keep = ~drop.to_numpy(zero_copy_only=False)
        return {"text": pc.replace_with_mask(text, mask, _join_kept_lines(part, lines, offsets, keep))}


# --- repeated_line_refiner ---


class RepeatedLineRefiner(Refiner):
    """Remove lines that repeat an earlier line of the same document (the first one stays).

    The text is split on "\\n"; lines are compared with surrounding whitespace stripped (and,
    with `normalize`, lowercased with inner whitespace runs collapsed to one space). A line
    whose stripped form has fewer than `min_chars` code points is never removed, so blank lines,
    "---" separators and short repeated lines like "Yes." stay. Kept lines are unchanged. Only
    lines within one document are compared. Null stays null.

    Inputs:
        text: the text whose repeated lines are removed; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        min_chars: lines shorter than this (stripped, in code points) are always kept (default 10).
        normalize: compare lines case- and whitespace-insensitively (default false).
    """

    name = "repeated_line_refiner"
    inputs = {"text": Port("text whose repeated lines are removed; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        min_chars: int = Field(
            10, ge=0, description="Lines shorter than this (stripped, in code points) are never removed."
        )
        normalize: bool = Field(
            False, description="Compare lines ignoring case and collapsing inner whitespace runs."
        )

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        multi_line = may_match(text, r"\n")
        if not pc.any(multi_line).as_py():
            return {"text": text}
        part = pc.filter(text, multi_line)
        _, lines, offsets = _lines_of(part)
        keys = pc.utf8_trim_whitespace(lines)
        if self.params.normalize:
            keys = pc.replace_substring_regex(pc.utf8_lower(keys), f"[{HORIZONTAL_SPACE}]+", " ")
        short = pc.less(pc.utf8_length(keys), self.params.min_chars).to_numpy(zero_copy_only=False)
        codes = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False).astype(np.int64)
        rows = np.repeat(np.arange(len(part), dtype=np.int64), np.diff(offsets))
        combined = rows * (int(codes.max(initial=0)) + 1) + codes
        first = np.unique(combined, return_index=True)[1]
        keep = short.copy()
        keep[first] = True
        if keep.all():
            return {"text": text}
        rebuilt = _join_kept_lines(part, lines, offsets, keep)
        return {"text": pc.replace_with_mask(text, multi_line, rebuilt)}


# --- truncate_refiner ---

_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003134f"
)
# Approximate tokens: one CJK character, a run of other letters/digits, or one other
# non-space character.
TOKEN_PATTERN = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])\\w)+|[^\\w\\s]")
_WORD = re.compile(r"\S+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_BACKOFF = 1000  # how far back a cut may move to reach a word boundary


def _nth_end(pattern: re.Pattern, text: str, n: int) -> int | None:
    """End of the n-th match of `pattern` in `text`, or None if there are at most n matches."""
    end = None
    for count, match in enumerate(pattern.finditer(text), 1):
        if count == n:
            end = match.end()
        elif count > n:
            return end
    return None


_CLOSING = frozenset(".,;:!?)]}\u2026")


def _boundary(text: str, cut: int) -> int:
    """The last word boundary at or before `cut` (> 0): a position next to whitespace or a CJK
    character, or between a letter/digit and closing punctuation (. , ; : ! ? ) ] } …). Without
    one within `_BACKOFF` characters, `cut` itself (a hard cut)."""
    for pos in range(cut, max(cut - _BACKOFF, 0), -1):
        before, after = text[pos - 1], text[pos]
        if (
            after.isspace()
            or before.isspace()
            or (after in _CLOSING and before.isalnum())
            or _CJK_CHAR.match(before)
            or _CJK_CHAR.match(after)
        ):
            return pos
    return cut


class TruncateRefiner(Refiner):
    """Truncate text to a number of characters, words or approximate tokens.

    Limits: `max_chars` code points (the `suffix` counts, so no output is longer), `max_words`
    whitespace-separated words, `max_tokens` approximate tokens (the suffix does not count for
    these two). Tokens are counted with a regex tokenizer: each CJK character (Han, kana, Hangul)
    is a token, so is each run of other letters/digits and each other non-space character
    ("don't" is 3 tokens, "日本語" 3) — roughly a subword tokenizer's count on English prose,
    an overestimate for code. With several limits the shortest result wins. The cut moves back
    to a word boundary (next to whitespace or a CJK character, or before closing punctuation; a
    word longer than 1000 characters is cut inside), trailing whitespace is removed and `suffix` appended. A text within every
    limit is unchanged. Null stays null.

    Inputs:
        text: the text to truncate; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        max_chars: most code points kept, suffix included (null: no limit).
        max_words: most whitespace-separated words kept (null: no limit).
        max_tokens: most approximate tokens kept (null: no limit); at least one limit is required.
        suffix: appended to truncated texts only (default "", e.g. " [...]").
    """

    name = "truncate_refiner"
    inputs = {"text": Port("text to truncate; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        max_chars: int | None = Field(
            None, ge=1, description="Most code points kept, the suffix included; null: no limit."
        )
        max_words: int | None = Field(
            None, ge=1, description="Most whitespace-separated words kept; null: no limit."
        )
        max_tokens: int | None = Field(
            None,
            ge=1,
            description="Most approximate (regex word/punctuation/CJK) tokens kept; null: no limit.",
        )
        suffix: str = Field("", description="Text appended to truncated texts only, e.g. ' [...]'.")

        @model_validator(mode="after")
        def _limits(self):
            if self.max_chars is None and self.max_words is None and self.max_tokens is None:
                raise ValueError("give at least one of `max_chars`, `max_words` and `max_tokens`")
            if self.max_chars is not None and len(self.suffix) >= self.max_chars:
                raise ValueError(f"`suffix` ({len(self.suffix)} chars) must be shorter than `max_chars`")
            return self

    def _truncate(self, text: str) -> str:
        params = self.params
        cuts = []
        if params.max_chars is not None and len(text) > params.max_chars:
            cuts.append(_boundary(text, params.max_chars - len(params.suffix)))
        if params.max_words is not None:
            end = _nth_end(_WORD, text, params.max_words)
            if end is not None:
                cuts.append(end)
        if params.max_tokens is not None and len(text) > params.max_tokens:
            end = _nth_end(TOKEN_PATTERN, text, params.max_tokens)
            if end is not None:
                cuts.append(_boundary(text, end))
        if not cuts:
            return text
        return text[: min(cuts)].rstrip() + params.suffix

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        params = self.params
        text = text_column(batch, "text")
        lengths = pc.utf8_length(text)
        shortest = min(v for v in (params.max_chars, params.max_words, params.max_tokens) if v is not None)
        # A text of at most `shortest` code points has at most that many words and tokens.
        return {"text": rewrite_rows(text, pc.greater(lengths, shortest), self._truncate)}
