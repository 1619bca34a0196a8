"""Truncation by characters, words or tokens at a word boundary."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.rewrite import rewrite_rows

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
            None,
            ge=1,
            description="Most code points kept, the suffix included; null: no limit.",
            examples=[4000],
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
