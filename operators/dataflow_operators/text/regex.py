"""Keep or drop rows by an RE2 regular expression."""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import (
    reasons,
    shorten,
    text_column,
)


def re2_error(pattern: str) -> str | None:
    """Why RE2 (Arrow's regex engine) rejects `pattern`, or None if it compiles."""
    try:
        pc.match_substring_regex(pa.nulls(1, pa.string()), pattern)  # pa.array would import pandas
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
