"""Fixtures of the io tests."""

from __future__ import annotations

import pytest

from dataflow_cli.io import _shared


@pytest.fixture
def small_blocks(monkeypatch):
    """Make JSONL/CSV blocks tiny so that multi-block behaviour shows on small files."""
    monkeypatch.setattr(_shared, "BLOCK_BYTES", 64)
