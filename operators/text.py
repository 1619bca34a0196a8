"""Text operators: Unicode/whitespace normalization, length statistics and regex filtering.

Everything runs as vectorised Arrow compute kernels (RE2 regexes, utf8proc normalization), which
release the GIL so the engine can process batches on threads.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Evaluator, Filter, Port, Refiner, Verdict
from operators._arrow import (
    HORIZONTAL_SPACE,
    OTHER_HORIZONTAL_SPACE,
    normalize_unicode,
    reasons,
    shorten,
    text_column,
    word_and_line_counts,
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


class LengthEvaluator(Evaluator):
    """Count the characters, words and lines of a text.

    `chars` counts Unicode code points (an emoji built with joiners counts each code point; run
    `text_normalize_refiner` first for a canonical form). `words` counts maximal runs of
    non-whitespace (Unicode whitespace, as Python's `str.split()`), so unsegmented CJK text counts as
    one word per run. `lines` is 0 for an empty string, else the number of "\\n" plus one, where a
    trailing "\\n" does not start a new line ("a\\n" has 1 line, "a\\n\\nb" has 3). A null text gives
    null counts (a range filter then drops the row as "`chars` is null").

    Inputs:
        text: the text to measure.
    Outputs:
        chars: number of Unicode code points (int64).
        words: number of whitespace-separated tokens (int64).
        lines: number of lines (int64).
    Params:
        (none)
    """

    name = "length_evaluator"
    inputs = {"text": Port("text to measure")}
    outputs = {
        "chars": Port("number of Unicode code points", "int64"),
        "words": Port("number of whitespace-separated tokens", "int64"),
        "lines": Port("number of lines; 0 for an empty text, a trailing newline adds none", "int64"),
    }

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        chars = pc.utf8_length(text).cast(pa.int64())
        words, lines = word_and_line_counts(text)
        return {"chars": chars, "words": words, "lines": lines}


def re2_error(pattern: str) -> str | None:
    """Why RE2 (Arrow's regex engine) rejects `pattern`, or None if it compiles."""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return str(exc).removeprefix("Invalid regular expression: ")
    return None


class RegexFilter(Filter):
    """Keep (or drop) rows whose text matches a regular expression (RE2 syntax).

    A null text never matches: it is dropped when keeping matches (reason "`text` is null") and
    kept when dropping matches. RE2 has no lookaround and no backreferences; matching is linear.

    Inputs:
        text: the text to match.
    Outputs:
        (none: rows are kept or dropped; reasons like "does not match /^Q:/" or "matches /lorem/i")
    Params:
        pattern: the regular expression (RE2 syntax).
        mode: keep_matching (default) or drop_matching.
        ignore_case: match case-insensitively (default false).
        full_match: the whole text must match, not a substring (default false).
    """

    name = "regex_filter"
    inputs = {"text": Port("text to match")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        pattern: str = Field(
            min_length=1,
            description="Regular expression in RE2 syntax (no lookaround or backreferences); "
            "searched anywhere in the text unless full_match is set.",
        )
        mode: Literal["keep_matching", "drop_matching"] = Field(
            "keep_matching",
            description="keep_matching keeps rows that match; drop_matching drops them.",
        )
        ignore_case: bool = Field(False, description="Match case-insensitively.")
        full_match: bool = Field(False, description="Require the whole text to match, not just a substring.")

        @field_validator("pattern")
        @classmethod
        def _compiles(cls, pattern: str) -> str:
            error = re2_error(pattern)
            if error is not None:
                raise ValueError(
                    f"invalid regular expression /{pattern}/: {error} "
                    "(RE2 syntax: no lookaround or backreferences)"
                )
            return pattern

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        pattern = self.params.pattern
        self._regex = rf"\A(?:{pattern})\z" if self.params.full_match else pattern
        shown = f"/{shorten(pattern)}/{'i' if self.params.ignore_case else ''}"
        fully = "fully " if self.params.full_match else ""
        self._matches_reason = f"{fully}matches {shown}"
        self._no_match_reason = f"does not {fully}match {shown}"
        self._null_reason = f"`{self.input_columns['text']}` is null"

    def filter(self, batch: Batch) -> Verdict:
        text = text_column(batch, "text")
        matched = pc.match_substring_regex(text, self._regex, ignore_case=self.params.ignore_case)
        matched = matched.fill_null(False)
        if self.params.mode == "keep_matching":
            keep = matched
            reason = reasons(
                [(pc.is_null(text), self._null_reason), (pc.invert(matched), self._no_match_reason)],
                len(text),
            )
        else:
            keep = pc.invert(matched)
            reason = reasons([(matched, self._matches_reason)], len(text))
        return Verdict(keep=keep, reason=reason)
