"""Emoji removal."""

from __future__ import annotations

import pyarrow as pa

from dataflow_cli.operator import Batch, Port, Refiner
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.rewrite import _TEXT_PORT, remove_tokens

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
