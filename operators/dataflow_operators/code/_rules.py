"""Row rules for the pre-training code filters: a check per value, a reason per dropped row."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from dataflow_cli.operator import Verdict

Check = Callable[[str], "tuple[str, str | None] | None"]


def rule_verdict(values: list, check: Check, name: str = "text") -> Verdict:
    """Keep rows whose value passes `check` (None); a failing check gives (reason, detail)."""
    keep, reason, detail = [], [], []
    for value in values:
        failed = (f"null `{name}`", None) if value is None else check(value)
        keep.append(failed is None)
        reason.append(failed[0] if failed else None)
        detail.append(failed[1] if failed else None)
    return Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))


def line_lengths(text: str) -> list[int]:
    return [len(line) for line in text.splitlines()] or [0]


def alnum_fraction(text: str) -> float:
    return sum(c.isalnum() for c in text) / len(text) if text else 0.0
