"""Allocator settings of `engine/memory.py`, checked in fresh processes (they are process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

PROBE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import pyarrow as pa
    from dataflow_cli.engine import memory

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    memory.configure()
    memory.configure()  # a second call changes nothing
    # After this free glibc's default raises its mmap threshold above the sizes below...
    first = np.ones(8 << 20, np.uint8)
    del first
    before = rss_mb()
    # ...so these batch-sized arrays would land in the heap, pinned by the small ones between.
    arrays, small = [], []
    for _ in range(25):
        arrays.append(np.ones(4 << 20, np.uint8))
        small.append(np.ones(1000))
    peak = rss_mb()
    del arrays
    freed = rss_mb()
    memory.release()
    print(json.dumps({"pool": pa.default_memory_pool().backend_name, "before": before,
                      "peak": peak, "freed": freed, "released": rss_mb()}))
    """
)


def _probe(**env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k != "ARROW_DEFAULT_MEMORY_POOL" and not k.startswith("MALLOC_")
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _has_jemalloc() -> bool:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings, read from /proc")
def test_freed_batch_sized_arrays_leave_the_process() -> None:
    result = _probe()
    assert result["peak"] - result["before"] > 90  # the probe really held 100 MB
    assert result["freed"] - result["before"] < 10, result  # and gave it back on free
    if _has_jemalloc():
        assert result["pool"] == "jemalloc"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc settings, read from /proc")
def test_users_own_allocator_settings_are_kept() -> None:
    result = _probe(ARROW_DEFAULT_MEMORY_POOL="system", MALLOC_ARENA_MAX="16")
    assert result["pool"] == "system"
    assert result["freed"] - result["before"] > 90  # glibc left as the user configured it...
    assert result["released"] - result["before"] < 10  # ...but `release()` still trims it
