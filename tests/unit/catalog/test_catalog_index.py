"""The cached catalogue: a listing imports no operator, and the cache follows every change to
what is installed (real processes over real distribution metadata on a PYTHONPATH)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dataflow_cli.catalog import index
from tests.conftest import REPO

PLUGIN = '''
from typing import Callable

from pydantic import BaseModel

from dataflow_cli.operator import Evaluator, Filter, Port


class ShoutFilter(Filter):
    """{summary}

    Inputs:
        text: the text.
    Outputs:
        (none)
    Params:
        (none)
    """

    name = "shout_filter"
    inputs = {{"text": Port("the text")}}

    def filter(self, batch):
        raise AssertionError("listing never runs an operator")


class VowelEvaluator(Evaluator):
    """Count vowels.

    Inputs:
        text: the text.
    Outputs:
        vowels: how many.
    Params:
        (none)
    """

    name = "vowel_evaluator"
    domain = "phonetics"
    outputs = {{"vowels": Port("how many", "int64")}}

    def evaluate(self, batch):
        raise AssertionError("listing never runs an operator")


class OddFilter(ShoutFilter):
    """Have params no JSON Schema can describe."""

    name = "odd_filter"

    class Params(BaseModel):
        hook: Callable = print
'''

# What a listing process imported, to prove a cached listing imports no operator module.
PROBE = (
    "import json, sys; from dataflow_cli.catalog import describe_all; "
    "ops = describe_all(); "
    "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
    "('regtest_catalog', 'dataflow_operators', 'pandas', 'pyarrow', 'pydantic')); "
    "print(json.dumps({'ops': ops, 'imported': heavy}))"
)


def make_plugin(root: Path, summary: str = "Drop shouting.", version: str = "1.0") -> None:
    for old in root.glob("regtest_catalog-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = root / f"regtest_catalog-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: regtest-catalog\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        "[dataflow.operators]\n"
        "shout_filter = regtest_catalog:ShoutFilter\n"
        "vowel_evaluator = regtest_catalog:VowelEvaluator\n"
    )
    (root / "regtest_catalog.py").write_text(textwrap.dedent(PLUGIN.format(summary=summary)))


@pytest.fixture
def env(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    make_plugin(plugins)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugins), str(REPO), str(REPO / "operators")]),
        "DATAFLOW_CACHE_DIR": str(tmp_path / "cache"),
        "DATAFLOW_PLUGINS": "regtest-catalog",  # keeps each rebuild to the two plugin operators
        "_PLUGINS": str(plugins),
    }


def listing(env) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=env["_PLUGINS"]
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def summaries(result) -> dict[str, str]:
    return {op["name"]: op["summary"] for op in result["ops"]}


def test_second_listing_imports_no_operator(env):
    first = listing(env)
    assert "regtest_catalog" in first["imported"]  # built: the plugin was imported
    assert list(Path(env["DATAFLOW_CACHE_DIR"]).glob("operators-*.json"))
    second = listing(env)
    assert second["ops"] == first["ops"]
    assert second["imported"] == []  # neither the plugin nor pandas/pyarrow/pydantic
    by_name = {op["name"]: op for op in second["ops"]}
    assert by_name["vowel_evaluator"]["domain"] == "phonetics"  # class attribute, read from the cache
    assert by_name["shout_filter"]["domain"] == "regtest-catalog"  # else the distribution


def test_edited_docstring_is_seen(env):
    assert summaries(listing(env))["shout_filter"] == "Drop shouting."
    module = Path(env["_PLUGINS"]) / "regtest_catalog.py"
    make_plugin(Path(env["_PLUGINS"]), summary="Drop rows written in capitals.")
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # even within one mtime tick
    assert summaries(listing(env))["shout_filter"] == "Drop rows written in capitals."


def test_new_entry_point_and_version_are_seen(env):
    listing(env)
    plugins = Path(env["_PLUGINS"])
    make_plugin(plugins, version="2.0")
    (plugins / "regtest_catalog-2.0.dist-info" / "entry_points.txt").write_text(
        "[dataflow.operators]\nshout_filter = regtest_catalog:ShoutFilter\n"
    )
    assert set(summaries(listing(env))) == {"shout_filter"}


def test_broken_plugin_is_listed_as_failed_and_cached(env):
    plugins = Path(env["_PLUGINS"])
    (plugins / "regtest_catalog.py").write_text("import regtest_missing_dependency\n")
    first = {op["name"]: op for op in listing(env)["ops"]}
    assert first["shout_filter"]["status"] == "failed"
    assert "regtest_missing_dependency" in first["shout_filter"]["error"]
    assert listing(env)["imported"] == []


def test_corrupt_or_unwritable_cache_only_costs_a_rebuild(env, tmp_path):
    expected = listing(env)["ops"]
    for path in Path(env["DATAFLOW_CACHE_DIR"]).glob("operators-*.json"):
        path.write_text('{"format": 1, "signature": ')
    assert listing(env)["ops"] == expected
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should be")
    assert listing({**env, "DATAFLOW_CACHE_DIR": str(blocked / "cache")})["ops"] == expected


def test_cache_dir_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("DATAFLOW_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert index.cache_dir() == tmp_path / "dataflow"
    assert index.cache_path().parent == tmp_path / "dataflow"
    monkeypatch.setenv("DATAFLOW_CACHE_DIR", str(tmp_path / "own"))
    assert index.cache_dir() == tmp_path / "own"


def test_plugin_that_cannot_be_described_is_one_failed_row(env):
    info = next(Path(env["_PLUGINS"]).glob("*.dist-info"))
    with (info / "entry_points.txt").open("a") as f:
        f.write("odd_filter = regtest_catalog:OddFilter\n")
    ops = {op["name"]: op for op in listing(env)["ops"]}
    assert ops["odd_filter"]["status"] == "failed"
    assert ops["odd_filter"]["error"].startswith("cannot be described: PydanticInvalidForJsonSchema")
    assert ops["shout_filter"]["status"] == "ok"
