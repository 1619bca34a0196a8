"""Unicode and whitespace normalization (vectorised Arrow kernels)."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import (
    HORIZONTAL_SPACE,
    OTHER_HORIZONTAL_SPACE,
    normalize_unicode,
    text_column,
)

# A line break (CRLF, CR, NEL, LINE/PARAGRAPH SEPARATOR) that is not already "\n".
_OTHER_LINE_BREAK = r"\r\n?|[\x{85}\x{2028}\x{2029}]"


# A run of horizontal whitespace that is not already exactly one ASCII space.
_HSPACE_TO_COLLAPSE = f"[{HORIZONTAL_SPACE}]{{2,}}|[{OTHER_HORIZONTAL_SPACE}]"


# After horizontal collapsing, what still needs rewriting: a run of 2+ newlines (blank lines may
# hold one space) becomes "\n\n", a space before a newline goes, a space ending the text goes.
# Plain "\n" does not match, so the common case costs no replacement.
_NEWLINE_RUN = r" ?(\n) ?(\n)(?: ?\n)*| (\n)| $"


class TextNormalizeRefiner(Refiner):
    """Normalize text in place: Unicode form, whitespace, trimming and optional lowercasing.

    Steps, in order: Unicode normalization (`form`); lowercasing (`lowercase`); whitespace
    collapsing (`collapse_whitespace`): CRLF, CR, U+0085, U+2028 and U+2029 become "\\n", every run
    of horizontal whitespace (tabs, form feeds, NBSP, ideographic and other Unicode spaces) becomes
    one space (indentation too), trailing spaces of every line are removed and runs of 3+ newlines
    become 2 (one blank line at most); finally leading/trailing whitespace of the whole text is
    stripped (`strip`). Null stays null; an empty string stays empty.

    Inputs:
        text: the text to normalize; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        form: Unicode normalization form, NFKC by default (folds fullwidth letters, ligatures, NBSP).
        collapse_whitespace: collapse whitespace as described above (default true).
        strip: strip leading and trailing whitespace (default true).
        lowercase: lowercase the text (Unicode lowercase mapping, default false).
    """

    name = "text_normalize_refiner"
    inputs = {"text": Port("text to normalize; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        form: Literal["NFC", "NFKC", "NFD", "NFKD"] = Field(
            "NFKC",
            description="Unicode normalization form. NFKC folds compatibility characters "
            "(fullwidth letters, ligatures like 'ﬁ', NBSP); NFC only composes accents.",
        )
        collapse_whitespace: bool = Field(
            True,
            description="Turn CR/CRLF/Unicode line separators into '\\n', collapse each run of "
            "horizontal whitespace (incl. tabs and Unicode spaces) to one space, drop trailing "
            "spaces of each line and collapse 3+ newlines to 2.",
        )
        strip: bool = Field(True, description="Strip leading and trailing whitespace of the whole text.")
        lowercase: bool = Field(False, description="Lowercase the text (after normalization).")

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        params = self.params
        text = text_column(batch, "text")
        text = normalize_unicode(text, params.form)
        if params.lowercase:
            text = pc.utf8_lower(text)
        if params.collapse_whitespace:
            text = pc.replace_substring_regex(text, _OTHER_LINE_BREAK, "\n")
            text = pc.replace_substring_regex(text, _HSPACE_TO_COLLAPSE, " ")
            text = pc.replace_substring_regex(text, _NEWLINE_RUN, r"\1\2\3")
        if params.strip:
            text = pc.utf8_trim_whitespace(text)
        return {"text": text}
