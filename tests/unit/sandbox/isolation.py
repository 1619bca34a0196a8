"""Which sandbox the tests can use here. `make test` (DATAFLOW_REQUIRE_EXTRAS=1) installs
bubblewrap first, so there a missing bwrap fails the tests instead of skipping them."""

from __future__ import annotations

import os
import shutil

import pytest

from dataflow_cli.sandbox.process import SandboxError, detect_isolation


def require(mechanism: str = "bwrap") -> None:
    """Skip (or, under `make test`, fail) when `mechanism` does not work on this machine."""
    try:
        works = detect_isolation(mechanism).mechanism == mechanism
    except SandboxError:
        works = False
    if works:
        return
    message = f"sandbox mechanism `{mechanism}` unavailable (bwrap: {shutil.which('bwrap')})"
    if os.environ.get("DATAFLOW_REQUIRE_EXTRAS") == "1" and mechanism == "bwrap":
        pytest.fail(message + "; `make test` installs bubblewrap")
    pytest.skip(message)
