"""Reading inputs and writing outputs: Parquet, JSON Lines, JSON and CSV.

`readers` streams input files as equally sized Arrow tables with one schema; `writers` writes
tables atomically. The names are re-exported here lazily so that importing this package does
not load pyarrow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FORMATS": "readers",
    "format_for": "readers",
    "expand_inputs": "readers",
    "read_schema": "readers",
    "iter_batches": "readers",
    "TableWriter": "writers",
    "atomic_write_bytes": "writers",
    "atomic_write_text": "writers",
    "remove_stale_temp_files": "writers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
