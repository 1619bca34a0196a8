"""Global dedup stages computed on the cluster (see `for_operator`)."""

from __future__ import annotations

from typing import Any


def for_operator(operator: Any):
    """The distributed implementation of a global operator, or None (then the driver runs it)."""
    return None
