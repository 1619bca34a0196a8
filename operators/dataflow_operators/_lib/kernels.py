"""Compiled loops for the text operators' hottest steps (a helper module: nothing registers it).

With the optional `fast` extra (`pip install 'dataflow-cli[fast]'`, which brings numba), a few
per-row loops that numpy can only express as several passes over the data (or with a hash table
per chunk) run as compiled loops instead: MinHash signatures, repeated character n-grams,
character classes, word and line counts. Each kernel computes exactly what its numpy fallback in
the calling module computes (the tests compare both paths), so results do not depend on whether
the extra is installed; only speed does.

The kernels are compiled on first use and cached on disk next to this file (numba's `cache=True`;
where that folder is read-only numba falls back to its user cache directory). They release the
GIL (`nogil=True`), so the engine's threads run them on every core at once.

`DATAFLOW_NO_KERNELS=1` turns them off (the numpy paths then run), for comparisons and tests.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_compiled: dict[str, Any] | None = None
_tried = False


def kernels() -> dict[str, Any] | None:
    """name -> compiled function, or None when numba is missing or the kernels are turned off."""
    global _compiled, _tried
    if _tried:
        return _compiled
    with _lock:
        if not _tried:
            if os.environ.get("DATAFLOW_NO_KERNELS", "") not in ("", "0"):
                _compiled = None
            else:
                try:
                    _compiled = _build()
                except ImportError:
                    _compiled = None
            _tried = True
    return _compiled


KERNELS = (
    "minhash_signatures",
    "word_token_hashes",
    "shingle_hashes",
    "repeated_windows_utf8",
    "utf8_class_counts",
    "words_and_lines",
    "blake2b_keys",
    "band_hashes",
    "band_pairs",
    "first_occurrences",
)


def _build() -> dict[str, Any]:
    from dataflow_operators._lib import _numba_kernels as compiled

    return {name: getattr(compiled, name) for name in KERNELS}
