"""Registry discovery against real distribution metadata (dist-info folders on sys.path)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from dataflow_cli import registry
from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.llm import registry as backends


def make_dist(
    root: Path,
    name: str,
    entry_points: dict[str, str],
    modules: dict[str, str] | None = None,
    group: str = "dataflow.operators",
) -> None:
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def extra_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    caches = (registry.entries, registry.load, backends._entries, backends.backend_class)
    for cached in caches:
        cached.cache_clear()
    yield tmp_path
    for cached in caches:
        cached.cache_clear()
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


# --- backends: the same discovery rules as operators ---


def test_duplicate_backend_names_across_distributions_name_both(extra_path):
    make_dist(extra_path, "rogue-backend", {"openai": "regtest_rogue:Backend"}, group="dataflow.backends")
    with pytest.raises(DataflowError) as err:
        backends.providers()
    message = err.value.reason
    assert message.startswith("backend `openai` is registered by two distributions")
    assert "`dataflow-cli`" in message and "`rogue-backend`" in message


def test_dataflow_plugins_restricts_backend_distributions(extra_path, monkeypatch):
    make_dist(extra_path, "rogue-backend", {"openai": "regtest_rogue:Backend"}, group="dataflow.backends")
    monkeypatch.setenv("DATAFLOW_PLUGINS", "dataflow-cli")
    assert backends._entries()["openai"].distribution == "dataflow-cli"
    assert "fake" in backends.providers()
    monkeypatch.setenv("DATAFLOW_PLUGINS", "rogue_backend")
    backends._entries.cache_clear()
    assert backends.providers() == ["openai"]
    with pytest.raises(DataflowError, match="backend `openai` from `rogue-backend` failed to load"):
        backends.backend_class("openai")


# --- an operator that does not implement its kind's method is reported when loaded ---

HOLLOW = """
from dataflow_cli.llm.operator import LLMOperator
from dataflow_cli.operator import Evaluator, Filter, Port


class HollowFilter(Filter):
    \"\"\"Forget to write `filter`.\"\"\"

    name = "hollow_filter"


class NoParseEvaluator(LLMOperator, Evaluator):
    \"\"\"Rely on the LLM base class but forget `parse`.\"\"\"

    name = "no_parse_evaluator"
    outputs = {"score": Port("a score", "float64")}
    default_template = "Rate {{ text }}"


class SwappedEvaluator(Evaluator, LLMOperator):
    \"\"\"Write `parse`, but list the kind before LLMOperator, so its stub wins.\"\"\"

    name = "swapped_evaluator"
    outputs = {"score": Port("a score", "float64")}
    default_template = "Rate {{ text }}"

    def parse(self, text, row):
        return {"score": float(text)}


class FineEvaluator(LLMOperator, Evaluator):
    \"\"\"Write `parse` only: the base class supplies `evaluate`.\"\"\"

    name = "fine_evaluator"
    outputs = {"score": Port("a score", "float64")}
    default_template = "Rate {{ text }}"

    def parse(self, text, row):
        return {"score": float(text)}
"""

HOLLOW_OPS = {
    "hollow_filter": "regtest_hollow:HollowFilter",
    "no_parse_evaluator": "regtest_hollow:NoParseEvaluator",
    "swapped_evaluator": "regtest_hollow:SwappedEvaluator",
    "fine_evaluator": "regtest_hollow:FineEvaluator",
}


@pytest.fixture
def hollow(extra_path):
    make_dist(extra_path, "hollow-plugin", HOLLOW_OPS, {"regtest_hollow": HOLLOW})
    return extra_path


@pytest.mark.parametrize(
    ("name", "missing", "cls"),
    [
        ("hollow_filter", "filter", "HollowFilter"),
        ("no_parse_evaluator", "parse", "NoParseEvaluator"),
        ("swapped_evaluator", "evaluate", "SwappedEvaluator"),
    ],
)
def test_operator_missing_its_kind_method_fails_to_load(hollow, name, missing, cls):
    with pytest.raises(registry.PluginLoadError) as err:
        registry.load(name)
    assert err.value.reason == (
        f"operator `{name}` from `hollow-plugin` (regtest_hollow:{cls}) does not implement "
        f"`{missing}` (needed to {'filter' if name == 'hollow_filter' else 'evaluate'} rows)"
    )
    assert f"class `{cls}`" in err.value.hint


def test_llm_operator_with_parse_only_loads(hollow):
    assert registry.load("fine_evaluator").__name__ == "FineEvaluator"


def test_every_builtin_implements_its_kind():
    for name, entry in registry.entries().items():
        if entry.distribution == "dataflow-cli":
            assert registry.unimplemented(registry.load(name)) is None, name


def test_operators_list_shows_an_unimplemented_operator_as_failed(hollow, cli):
    rows = {r["name"]: r for r in cli.json("operators", "list")}
    assert rows["fine_evaluator"]["status"] == "ok"
    for name in ("hollow_filter", "no_parse_evaluator", "swapped_evaluator"):
        assert rows[name]["status"] == "failed"
        assert "does not implement" in rows[name]["error"]
    human = cli("operators", "list")
    assert "does not implement `parse`" in " ".join(human.stdout.split())
    assert "3 operator(s) failed to load" in human.stderr


def test_validate_fails_naming_the_plugin_and_class_instead_of_a_runtime_traceback(hollow, cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: hollow\ninput: {path: in.jsonl}\n"
        "output: {path: out.jsonl}\n"
        "backends: {default: {provider: fake, replies: ['7']}}\n"
        "stages:\n"
        "  - {name: judge, op: no_parse_evaluator}\n"
    )
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n')
    result = cli("validate", spec, expect=2)
    message = " ".join(result.stderr.split())
    assert "spec.yaml:7:23: stages[0].op: operator" in message and "1 error in" in message
    assert "`no_parse_evaluator` from `hollow-plugin` (regtest_hollow:NoParseEvaluator)" in message
    assert "does not implement `parse`" in message
    assert "Traceback" not in result.stderr + result.stdout
    run = cli("run", spec, "--run-dir", tmp_path / "run", expect=2)
    assert "does not implement `parse`" in " ".join(run.stderr.split())
    assert "NotImplementedError" not in run.stderr + run.stdout
