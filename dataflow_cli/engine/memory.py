"""Allocator settings that keep a run's resident memory near what it actually uses.

A run allocates and frees batch-sized buffers all the time (Arrow tables in Arrow's memory pool,
numpy arrays through the C library's malloc). Both allocators keep freed memory for reuse by
default, and on the text benchmark (bench/text_filters.py) that retained memory, not live data,
made the difference between a ~500 MB and a ~650-690 MB peak:

- Arrow's default pool (mimalloc in the Linux wheels) returns freed pages with MADV_FREE, which
  the kernel counts as resident until it runs short of memory; its options are read from the
  environment when pyarrow loads, too early for the engine to set. jemalloc's dirty-page decay
  can be set at run time: freed pages go back to the system within `_JEMALLOC_DECAY_MS`.
- glibc raises its mmap threshold (up to 32 MB) each time a large block is freed, so later
  batch-sized numpy arrays come from the heap arenas, which are not shrunk while anything above
  them is in use. A fixed threshold keeps large arrays in their own mappings, unmapped on free.

`configure()` applies both once per process; `release()` hands memory freed by a finished phase
back (called between the executor's passes). A user's own choice wins: with
`ARROW_DEFAULT_MEMORY_POOL` or any `MALLOC_*_` variable set, that allocator is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from functools import cache

import pyarrow as pa

# Freed Arrow pages go back at once. Batches in flight on several threads free and allocate
# tens of MB each; with 20 ms of decay the peak was ~590 MB, with 0 ~500 MB. The price is page
# faults on reuse: ~3 s more CPU on the benchmark's ~18 s (measured, see the helper report).
_JEMALLOC_DECAY_MS = 0
# glibc: blocks from this size on get their own mapping; setting it also stops the dynamic growth.
_MMAP_THRESHOLD = 1 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)

_configured = False


@cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only (musl has no mallopt/malloc_trim)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def configure() -> None:
    """Choose Arrow's pool and glibc's thresholds for low retained memory (once per process)."""
    global _configured
    if _configured:
        return
    _configured = True
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        try:
            pool = pa.jemalloc_memory_pool()
            pa.jemalloc_set_decay_ms(_JEMALLOC_DECAY_MS)
        except NotImplementedError:  # a pyarrow build without jemalloc: keep its default pool
            pass
        else:
            pa.set_memory_pool(pool)
    libc = _libc()
    if libc is not None and not any(name.startswith("MALLOC_") for name in os.environ):
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD)


def release() -> None:
    """Give memory freed so far back to the system (e.g. a finished pass's global state)."""
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


__all__ = ["configure", "release"]
