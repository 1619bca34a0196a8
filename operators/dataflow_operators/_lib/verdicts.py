"""Building a filter's Verdict from named conditions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataflow_cli.operator import Verdict
from dataflow_operators._lib.arrow import reasons


def verdict_of(conditions: list[tuple[np.ndarray, str]], n: int) -> Verdict:
    """Drop rows where any condition holds, with the reason of the first one that does."""
    dropped = np.zeros(n, bool)
    for condition, _ in conditions:
        dropped |= condition
    arrays = [(pa.array(condition, pa.bool_()), reason) for condition, reason in conditions]
    return Verdict(keep=~dropped, reason=reasons(arrays, n))
