"""Repair of mojibake (UTF-8 decoded as Latin-1/cp1252) and bad code points."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import normalize_unicode, text_column
from dataflow_operators._lib.rewrite import may_match, rewrite_rows


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
