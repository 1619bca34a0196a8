"""Punctuation normalization: typographic quotes, dashes, ellipses, full-width forms, runs."""

from __future__ import annotations

import re
import unicodedata

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.rewrite import may_match, rewrite_rows

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
