"""ISO 639-3 macrolanguages (data only; nothing registers it).

An individual language code -> the code of the macrolanguage ISO 639-3 places it in (SIL's
macrolanguage mappings, `iso-639-3-macrolanguages.tab`), written with the ISO 639-1 code where
the macrolanguage has one (zh, ar, fa, ms, no, ...), else its ISO 639-3 code (kok, bik, hbs).
Individual languages are keyed by their ISO 639-1 code where they have one (nn, id, bs), else by
their ISO 639-3 code, as language identifiers label them. Listed: every member the bundled
py3langid model can output, plus the most common other members of the same macrolanguages.
"""

from __future__ import annotations

_MEMBERS: dict[str, tuple[str, ...]] = {
    "zh": ("cmn", "yue", "wuu", "nan", "hak", "gan", "hsn", "cdo", "cjy", "cpx", "czh", "czo", "mnp", "lzh"),
    "ar": ("arb", "ary", "arz", "apc", "ajp", "acm", "aeb", "ayl", "arq", "afb", "ars", "acw", "apd", "shu"),
    "fa": ("pes", "prs"),
    "ms": ("zsm", "id", "zlm", "min", "bjn", "mfa", "jax", "meo", "kxd"),
    "no": ("nb", "nn"),
    "sw": ("swh", "swc"),
    "et": ("ekk", "vro"),
    "lv": ("lvs", "ltg"),
    "mn": ("khk", "mvf"),
    "mg": ("plt", "xmv", "msh", "bhr", "tdx", "txy", "skg"),
    "ne": ("npi", "dty"),
    "or": ("ory", "spv"),
    "ps": ("pbt", "pbu", "pst"),
    "sq": ("als", "aln", "aae", "aat"),
    "az": ("azj", "azb"),
    "uz": ("uzn", "uzs"),
    "ku": ("kmr", "ckb", "sdh", "lki"),
    "om": ("gaz", "hae", "orc", "gax"),
    "yi": ("ydd", "yih"),
    "ak": ("tw", "fat"),
    "gn": ("gug", "gui", "gun", "gnw", "nhd"),
    "ff": ("fuv", "fuc", "fuf", "ffm", "fuh", "fub", "fue", "fui", "fuq"),
    "qu": ("quz", "quy", "qug", "qxu", "qvi", "qub"),
    "kok": ("gom", "knn"),
    "bik": ("bcl", "bto", "cts", "fbl", "lbl", "rbl", "ubl"),
    "hbs": ("bs", "hr", "sr", "cnr"),
}


MACROLANGUAGE: dict[str, str] = {member: macro for macro, members in _MEMBERS.items() for member in members}


def macrolanguage_members(macro: str) -> tuple[str, ...]:
    """The individual languages listed for a macrolanguage code (empty if it is not one)."""
    return _MEMBERS.get(macro, ())
