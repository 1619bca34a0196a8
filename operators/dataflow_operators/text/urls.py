"""URL and e-mail removal."""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.rewrite import _TEXT_PORT, remove_tokens

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
