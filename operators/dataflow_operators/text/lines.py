"""Line-level cleaning: boilerplate lines (cookie, login, share ...) and repeated lines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import HORIZONTAL_SPACE, text_column
from dataflow_operators._lib.rewrite import _join_kept_lines, _lines_of, may_match
from dataflow_operators.text.regex import re2_error

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
