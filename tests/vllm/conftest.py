"""The real-vLLM tests run only when asked: `make test-vllm` (scripts/setup_vllm_cpu.sh) sets
DATAFLOW_TEST_VLLM=1. Otherwise this directory is not even collected, so a plain `pytest`
needs neither vLLM nor torch."""

from __future__ import annotations

import os

if os.environ.get("DATAFLOW_TEST_VLLM") != "1":
    collect_ignore_glob = ["test_*.py"]
