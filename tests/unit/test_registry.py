"""Registry discovery against real distribution metadata (dist-info folders on sys.path)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from dataflow_cli import registry
from dataflow_cli.errors import DataflowError, SpecError


def make_dist(
    root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str] | None = None
) -> None:
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[dataflow.operators]\n{lines}\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def extra_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.entries.cache_clear()
    registry.load.cache_clear()
    yield tmp_path
    registry.entries.cache_clear()
    registry.load.cache_clear()
    for name in [m for m in sys.modules if m.startswith("regtest_")]:
        del sys.modules[name]


def test_builtins_are_listed_without_import():
    names = registry.entries()
    assert {"range_filter", "length_evaluator", "exact_dedup_filter"} <= set(names)
    assert names["range_filter"].distribution == "dataflow-cli"


def test_duplicate_names_across_distributions_name_both(extra_path):
    make_dist(extra_path, "rogue-plugin", {"range_filter": "regtest_rogue:Thing"})
    with pytest.raises(DataflowError) as err:
        registry.entries()
    message = err.value.reason
    assert "`range_filter`" in message and "`dataflow-cli`" in message and "`rogue-plugin`" in message


def test_dataflow_plugins_restricts_distributions(extra_path, monkeypatch):
    make_dist(extra_path, "rogue-plugin", {"range_filter": "regtest_rogue:Thing"})
    monkeypatch.setenv("DATAFLOW_PLUGINS", "dataflow-cli")
    assert registry.entries()["range_filter"].distribution == "dataflow-cli"
    monkeypatch.setenv("DATAFLOW_PLUGINS", "rogue_plugin")
    registry.entries.cache_clear()
    assert list(registry.entries()) == ["range_filter"]
    assert registry.entries()["range_filter"].distribution == "rogue-plugin"


def test_broken_plugin_reports_reason(extra_path):
    make_dist(
        extra_path,
        "broken-plugin",
        {"broken_filter": "regtest_broken:BrokenFilter"},
        {"regtest_broken": "import nope_not_here\n"},
    )
    with pytest.raises(DataflowError) as err:
        registry.load("broken_filter")
    assert "failed to load" in err.value.reason
    assert "ModuleNotFoundError" in err.value.reason and "nope_not_here" in err.value.reason


def test_non_operator_entry_point_is_rejected(extra_path):
    make_dist(
        extra_path,
        "odd-plugin",
        {"odd_filter": "regtest_odd:NotAnOperator"},
        {"regtest_odd": "class NotAnOperator: pass\n"},
    )
    with pytest.raises(DataflowError, match="is not a dataflow"):
        registry.load("odd_filter")


def test_unknown_operator_suggests():
    with pytest.raises(SpecError, match="did you mean `range_filter`"):
        registry.load("range_filtr")
