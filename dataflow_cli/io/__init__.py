"""Reading inputs and writing outputs: Parquet, JSON Lines, JSON and CSV.

`inputs` streams input files as equally sized Arrow tables with one schema, through one module
per format (`parquet`, `jsonl`, `json`, `csv`); `paths` resolves globs and output paths;
`writers` writes tables atomically; `lock` keeps two runs from writing one output. The names
are re-exported here lazily so that importing this package does not load pyarrow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FORMATS": "paths",
    "format_for": "paths",
    "expand_inputs": "paths",
    "default_rejects_path": "paths",
    "read_schema": "inputs",
    "iter_batches": "inputs",
    "TableWriter": "writers",
    "atomic_write_bytes": "writers",
    "atomic_write_text": "writers",
    "remove_stale_temp_files": "writers",
    "OutputLock": "lock",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
