"""Golden error messages: each invalid spec beside the exact text users see.

Regenerate after an intentional wording change with DATAFLOW_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INVALID = Path(__file__).resolve().parents[2] / "fixtures" / "specs" / "invalid"
CASES = sorted(p.stem for p in INVALID.glob("*.yaml"))


@pytest.mark.parametrize("case", CASES)
def test_invalid_spec_message(case, cli, monkeypatch):
    monkeypatch.chdir(INVALID)
    monkeypatch.delenv("DATAFLOW_TEST_SURELY_UNSET", raising=False)
    result = cli("validate", f"{case}.yaml", expect=2)
    assert result.stdout == ""  # errors are for people: stderr only
    expected_file = INVALID / f"{case}.expected.txt"
    if os.environ.get("DATAFLOW_UPDATE_GOLDEN"):
        expected_file.write_text(result.stderr, encoding="utf-8")
    assert result.stderr == expected_file.read_text(encoding="utf-8")
    assert "Traceback" not in result.stderr


def test_every_case_has_expected_text():
    missing = [c for c in CASES if not (INVALID / f"{c}.expected.txt").exists()]
    assert not missing, f"golden files missing for {missing}"
