"""Rewriting text columns row by row or line by line, shared by the text refiners."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_TEXT_PORT = "text to clean; rewritten in place"


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


def _bracketed(token: str) -> str:
    """`token`, alone or wrapped in (), [] or <> (the brackets go with it)."""
    return f"\\((?:{token})\\)|\\[(?:{token})\\]|<(?:{token})>|(?:{token})"
