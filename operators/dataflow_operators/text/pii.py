"""PII detection: a refiner masking emails, phone numbers, IP addresses, credit card numbers and
IBANs, and an evaluator counting them (to drop rows with PII instead of masking it).

Detection is two-stage. A loose RE2 pattern per kind runs vectorised over the whole batch and
finds the rows that may hold that kind; only those rows go through Python, where candidates are
found with stricter regexes and validated (octet ranges, the Luhn checksum, the ISO 7064
mod-97 check, phone-number structure).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Evaluator, Port, Refiner
from dataflow_operators._lib.arrow import text_column

Kind = Literal["email", "phone", "ip", "credit_card", "iban"]


KINDS: tuple[str, ...] = ("email", "phone", "ip", "credit_card", "iban")


# Overlapping candidates: the kind listed first wins.
_PRIORITY = ("email", "iban", "credit_card", "ip", "phone")


# Loose RE2 pre-checks: every row holding a real match of the kind matches these.
PRECHECKS = {
    "email": r"[\pL\pN._%+\-]@[\pL\pN_\-]+\.",
    "phone": r"(?:\d[ ().\-]{0,2}){6}\d",
    "ip": r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|::|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
    "credit_card": r"\d(?:[ \-]?\d){12}",
    "iban": r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
}


_EMAIL = re.compile(r"(?<![\w.%+-])[\w%+-][\w.%+-]*@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")


_IPV4 = re.compile(r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![\w]|\.[0-9])")


_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?"
    r"(?![\w:]|\.[0-9])"
)


def ipv4_valid(candidate: str) -> bool:
    """Four decimal octets 0..255, without leading zeros (which some parsers read as octal)."""
    octets = candidate.split(".")
    return len(octets) == 4 and all(
        o.isdigit() and int(o) <= 255 and (o == "0" or not o.startswith("0")) for o in octets
    )


def ipv6_valid(candidate: str) -> bool:
    """A valid IPv6 address (full, "::"-compressed or with a trailing dotted quad) that is not
    a bare word like "a::b": it must contain a digit or at least three groups."""
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    groups = [g for g in candidate.split(":") if g]
    return any(c.isdigit() for c in candidate) or len(groups) >= 3


_CARD = re.compile(r"(?<![\w-])(?:[0-9][ -]?){12,18}[0-9](?![\w-]|[ -][0-9])")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a digit string is valid."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if i % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_valid(candidate: str) -> bool:
    """13..19 digits, optionally grouped by one kind of separator with a first group of 4,
    starting with a payment-card major industry digit (2..6), passing the Luhn check."""
    digits = re.sub(r"[ -]", "", candidate)
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456":
        return False
    separators = set(re.findall(r"[ -]", candidate))
    if len(separators) > 1 or (separators and len(re.split(r"[ -]", candidate)[0]) != 4):
        return False
    return luhn_valid(digits)


# Length of the IBAN of each country using one (ISO 13616 registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")


def iban_checksum_valid(iban: str) -> bool:
    """ISO 7064 mod 97-10: the country code and check digits moved to the end, letters as
    10..35, the number modulo 97 is 1."""
    rearranged = iban[4:] + iban[:4]
    if not rearranged.isalnum() or not rearranged.isascii():
        return False
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_span(text: str, match: re.Match) -> int | None:
    """End of a valid IBAN starting at `match`, or None: the country's length in letters and
    digits (spaces between them allowed), ending at a word end, with a valid checksum."""
    length = IBAN_LENGTHS.get(match.group(0)[:2])
    if length is None:
        return None
    seen, end = 0, match.start()
    while seen < length and end < len(text):
        char = text[end]
        if char != " ":
            seen += 1
        end += 1
    if seen < length or (end < len(text) and text[end].isalnum()):
        return None
    compact = text[match.start() : end].replace(" ", "")
    if "  " in text[match.start() : end] or not iban_checksum_valid(compact):
        return None
    return end


# Date-like numbers are blanked before phone matching so they can neither be taken for a phone
# number nor join one: 2024-01-02, 02.01.2024, 1/2/24.
_DATE = re.compile(
    r"(?<![0-9.\-/])(?:[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.](?:[0-9]{4}|[0-9]{2}))"
    r"(?![0-9]|[-/.][0-9])"
)


# Groups of digits joined by one separator (space, dot, dash), parentheses around a group
# allowed; never glued to a word, another number, a URL or an amount.
_PHONE = re.compile(
    r"(?<![\w+@/.:,$€£¥₹#-])(?:\+ ?)?\(?[0-9]+(?:(?:[ .\-]\(?|\)[ .\-]?)[0-9]+)*"
    r"(?![\w@/]|[ .\-]\(?[0-9]|\)[ .\-]?[0-9])"
)


_DIGIT_GROUPS = re.compile(r"[0-9]+")


def phone_valid(candidate: str) -> bool:
    """Whether a `_PHONE` candidate is shaped like a phone number (see `PiiRefiner`)."""
    plus = candidate.startswith("+")
    body = candidate[1:].lstrip() if plus else candidate
    opens, closes = body.count("("), body.count(")")
    if opens != closes or opens > 1 or (opens and body.index("(") > body.index(")")):
        return False
    groups = _DIGIT_GROUPS.findall(body)
    if not 7 <= sum(map(len, groups)) <= 15:
        return False
    separators = [s.strip("()") for s in _DIGIT_GROUPS.split(body)[1:-1]]
    paren = opens == 1
    first_local = 1 if plus else 0  # index of the first group after a country code
    for i, group in enumerate(groups):
        if len(group) == 1 and i > first_local and f"({group})" not in body:
            return False  # ISBNs, versions, lists of small numbers
    if "." in separators:
        local = groups[first_local:] if plus else groups
        if not all(2 <= len(g) <= 4 for g in local):
            return False  # versions, decimals
        if len(groups) == 4 and all(int(g) <= 255 for g in groups):
            return False  # an IPv4 address
    if plus or paren:
        return True
    if len(groups) == 1:
        return False  # a bare run of digits: an id, a timestamp, an amount
    if len(groups) == 2:
        first, second = groups
        trunk = first.startswith("0") and 2 <= len(first) <= 5 and len(second) >= 5
        local = len(first) == 3 and len(second) == 4 and separators == ["-"]
        return trunk or local  # "030 1234567", "555-1234"; not "1234-5678" (a range)
    if all(len(g) == 4 and 1000 <= int(g) <= 2999 for g in groups):
        return False  # years
    if sum(len(g) == 4 for g in groups) >= 3:
        return False  # groups of four: card or account numbers, not a phone number
    if (
        len(set(separators)) == 1
        and len(groups[0]) <= 3
        and not groups[0].startswith("0")
        and all(len(g) == 3 for g in groups[1:])
    ):
        return False  # thousands grouping: "1 234 567", "1.234.567"
    return True


def find_pii(text: str, kinds) -> list[tuple[int, int, str]]:
    """Non-overlapping `(start, end, kind)` spans of the PII of `kinds` in `text`, in order."""
    spans: list[tuple[int, int, str]] = []  # sorted, non-overlapping
    for kind in _PRIORITY:
        if kind not in kinds:
            continue
        added: list[tuple[int, int, str]] = []
        taken, last_end = 0, -1
        for start, end in sorted(_candidates(text, kind)):
            if start < last_end:
                continue  # overlaps an earlier item of this kind
            while taken < len(spans) and spans[taken][1] <= start:
                taken += 1
            if taken < len(spans) and spans[taken][0] < end:
                continue  # overlaps an item of a higher-priority kind
            added.append((start, end, kind))
            last_end = end
        spans = sorted(spans + added)  # two sorted runs: a linear merge
    return spans


def _candidates(text: str, kind: str):
    if kind == "email":
        for m in _EMAIL.finditer(text):
            yield m.span()
    elif kind == "ip":  # IPv6 first: "::ffff:192.0.2.1" is one address
        if ":" in text:
            for m in _IPV6.finditer(text):
                if ipv6_valid(m.group(0)):
                    yield m.span()
        for m in _IPV4.finditer(text):
            if ipv4_valid(m.group(0)):
                yield m.span()
    elif kind == "credit_card":
        for m in _CARD.finditer(text):
            if card_valid(m.group(0)):
                yield m.span()
    elif kind == "iban":
        for m in _IBAN.finditer(text):
            end = _iban_span(text, m)
            if end is not None:
                yield m.start(), end
    elif kind == "phone":
        blanked = _DATE.sub(lambda m: "D" * len(m.group(0)), text)
        for m in _PHONE.finditer(blanked):
            candidate, start = m.group(0), m.start()
            if candidate.startswith("(") and candidate.count("(") > candidate.count(")"):
                candidate, start = candidate[1:], start + 1  # "(555-123-4567)": the "(" is prose
            if phone_valid(candidate):
                yield start, m.end()


class _KindsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] = Field(
        list(KINDS),
        min_length=1,
        description="PII kinds to detect: email, phone, ip, credit_card, iban (default: all).",
    )

    @field_validator("kinds")
    @classmethod
    def _unique(cls, kinds: list[str]) -> list[str]:
        return list(dict.fromkeys(kinds))


def _scan(text: pa.Array, kinds: list[str]) -> tuple[np.ndarray, list[list[tuple[int, int, str]]]]:
    """Rows that may hold PII (positions in `text`) and, for each, its spans."""
    may = {
        kind: pc.match_substring_regex(text, PRECHECKS[kind]).fill_null(False).to_numpy(zero_copy_only=False)
        for kind in kinds
    }
    any_kind = np.logical_or.reduce(list(may.values()))
    rows = np.flatnonzero(any_kind)
    if len(rows) == 0:
        return rows, []
    values = pc.take(text, pa.array(rows)).to_pylist()
    spans = [
        find_pii(value, {k for k in kinds if may[k][row]}) for row, value in zip(rows, values, strict=True)
    ]
    return rows, spans


class PiiRefiner(Refiner):
    """Mask personal data: emails, phone numbers, IP addresses, credit card numbers and IBANs.

    Each detected item is replaced by `placeholder` with "{kind}" filled in: <EMAIL>, <PHONE>,
    <IP>, <CREDIT_CARD>, <IBAN>. Detection, per kind:
    email: local@domain.tld (Unicode letters allowed, TLD of 2+ letters);
    ip: IPv4 with every octet 0..255 and no leading zeros (not inside a longer dotted number such as
    a version "1.2.3.4.5"), IPv6 in full, "::"-compressed or IPv4-suffixed form (validated by
    `ipaddress`; a digit-free form needs 3+ groups, so "a::b" is kept);
    credit_card: 13..19 digits, optionally grouped by spaces or dashes (first group of 4), first
    digit 2..6, passing the Luhn checksum;
    iban: country code, 2 check digits and BBAN in capitals, compact or in space-separated
    groups, of exactly the country's IBAN length (80 registry countries), passing the ISO 7064
    mod-97 check;
    phone: 7..15 digits in groups joined by single spaces, dots or dashes, an area code possibly
    in parentheses, optionally after "+" and a country code. Without "+" or parentheses a number
    needs 3+ groups, or two as "0AA BBBBB" (trunk prefix) or "555-1234"; rejected as non-phones
    are bare digit runs (ids, timestamps), dates (2024-01-02, 02.01.2024: never part of a phone
    number), years and year ranges, versions and decimals (dot groups must have 2..4 digits),
    single-digit groups after the first (ISBNs), IPv4-like quads, thousands groupings
    ("1 234 567") and three or more groups of four digits (card or account numbers).
    Overlaps are resolved by priority email > iban > credit_card > ip > phone. Null stays null.

    Inputs:
        text: the text to mask; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        kinds: which kinds to mask (default all: email, phone, ip, credit_card, iban).
        placeholder: replacement text; "{kind}" becomes the upper-case kind (default "<{kind}>").
    """

    name = "pii_refiner"
    cpu_bound = True  # candidates are validated and masked row by row in Python
    inputs = {"text": Port("text whose PII is masked; rewritten in place")}

    class Params(_KindsParams):
        placeholder: str = Field(
            "<{kind}>",
            description="Replacement for each item; '{kind}' becomes EMAIL, PHONE, IP, CREDIT_CARD or IBAN.",
        )

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self._labels = {kind: self.params.placeholder.replace("{kind}", kind.upper()) for kind in KINDS}

    def mask(self, text: str, spans: list[tuple[int, int, str]]) -> str:
        parts, last = [], 0
        for start, end, kind in spans:
            parts.append(text[last:start])
            parts.append(self._labels[kind])
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        rows, spans = _scan(text, self.params.kinds)
        changed = [(row, s) for row, s in zip(rows, spans, strict=True) if s]
        if not changed:
            return {"text": text}
        mask = np.zeros(len(text), bool)
        mask[[row for row, _ in changed]] = True
        values = pc.filter(text, pa.array(mask)).to_pylist()
        masked = [self.mask(v, s) for v, (_, s) in zip(values, changed, strict=True)]
        return {"text": pc.replace_with_mask(text, pa.array(mask), pa.array(masked, text.type))}


class PiiEvaluator(Evaluator):
    """Count the personal data items in a text (emails, phones, IPs, credit cards, IBANs).

    Detection is exactly `pii_refiner`'s (same kinds, validation and overlap rules): `pii_count`
    is the number of items the refiner would mask. Use it with `range_filter` (`max: 0`) to
    drop rows holding PII instead of masking it. A null text gives null outputs.

    Inputs:
        text: the text to scan.
    Outputs:
        pii_count: number of PII items found (int64).
        pii_kinds: the kinds found, comma-joined in the order email,phone,ip,credit_card,iban
            ("" when none).
    Params:
        kinds: which kinds to detect (default all: email, phone, ip, credit_card, iban).
    """

    name = "pii_evaluator"
    cpu_bound = True  # candidates are validated row by row in Python
    inputs = {"text": Port("text to scan for PII")}
    outputs = {
        "pii_count": Port("number of PII items found", "int64"),
        "pii_kinds": Port("kinds of PII found, comma-joined ('' when none)", "string"),
    }
    Params = _KindsParams

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        text = text_column(batch, "text")
        rows, spans = _scan(text, self.params.kinds)
        valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
        counts = np.zeros(len(text), np.int64)
        kinds = np.full(len(text), "", dtype=object)
        for row, found in zip(rows, spans, strict=True):
            if found:
                counts[row] = len(found)
                present = {kind for _, _, kind in found}
                kinds[row] = ",".join(k for k in KINDS if k in present)
        mask = ~valid
        return {
            "pii_count": pa.array(counts, pa.int64(), mask=mask),
            "pii_kinds": pa.array(kinds, pa.string(), mask=mask),
        }
