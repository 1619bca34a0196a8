"""A non-editable install into a fresh venv works from outside the repo, and a third-party
plugin package installed beside it is discovered, listed and run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def sh(*args, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=900
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the dataflow wheel and the example plugin wheel, and a work dir."""
    root = tmp_path_factory.mktemp("packaging")
    wheels = root / "wheels"
    for project in (REPO, REPO / "tests" / "plugins" / "dataflow-example-plugin"):
        sh(
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            wheels,
            project,
            cwd=root,
        )
    venv = root / "venv"
    sh(sys.executable, "-m", "venv", venv, cwd=root)
    pip = venv / "bin" / "pip"
    core = next(wheels.glob("dataflow_cli-*.whl"))
    sh(pip, "install", "--quiet", "--disable-pip-version-check", core, cwd=root)
    work = root / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DATAFLOW_PLUGINS")}
    return {"venv": venv, "wheels": wheels, "work": work, "env": env, "pip": pip}


def dataflow(installed, *args, check=True):
    return sh(
        installed["venv"] / "bin" / "dataflow",
        *args,
        cwd=installed["work"],
        env=installed["env"],
        check=check,
    )


def test_wheel_works_outside_the_repo(installed):
    work = installed["work"]
    # The installed package, not the checkout, is what runs.
    where = sh(
        installed["venv"] / "bin" / "python",
        "-c",
        "import dataflow_cli; print(dataflow_cli.__file__)",
        cwd=work,
        env=installed["env"],
    ).stdout
    assert str(REPO) not in where
    dataflow(installed, "init", "proj")
    assert (work / "proj" / "pipeline.yaml").exists()
    names = [r["name"] for r in json.loads(dataflow(installed, "operators", "list", "--json").stdout)]
    assert "range_filter" in names
    dataflow(installed, "validate", "proj/pipeline.yaml")
    stats = json.loads(dataflow(installed, "run", "proj/pipeline.yaml", "--json").stdout)
    assert stats["rows_read"] == 40 and stats["rows_written"] + stats["rows_rejected"] == 40
    schema = json.loads(dataflow(installed, "schema").stdout)
    assert "range_filter" in schema["definitions"]["stage"]["properties"]["op"]["enum"]


def test_plugin_is_discovered_listed_and_run(installed):
    plugin = next(installed["wheels"].glob("dataflow_example_plugin-*.whl"))
    sh(installed["pip"], "install", "--quiet", "--no-deps", plugin, cwd=installed["work"])
    rows = {r["name"]: r for r in json.loads(dataflow(installed, "operators", "list", "--json").stdout)}
    assert rows["shout_refiner"]["status"] == "ok"
    assert rows["shout_refiner"]["distribution"] == "dataflow-example-plugin"
    assert rows["broken_filter"]["status"] == "failed"
    assert "dataflow_example_plugin_missing_dependency" in rows["broken_filter"]["error"]
    listing = dataflow(installed, "operators", "list").stdout
    assert "failed to load" in listing

    work = installed["work"]
    (work / "in.jsonl").write_text('{"text": "hello plugin"}\n{"text": "aeiou"}\n')
    (work / "plugin.yaml").write_text(
        "version: 1\nname: plugin\ninput: {path: in.jsonl}\noutput: {path: out/plugin.jsonl}\nstages:\n"
        "  - name: vowels\n    op: vowel_count_evaluator\n"
        "  - name: shout\n    op: shout_refiner\n    params: {suffix: '!!'}\n"
    )
    dataflow(installed, "run", "plugin.yaml")
    out = [json.loads(line) for line in (work / "out" / "plugin.jsonl").read_text().splitlines()]
    assert [(r["text"], r["vowels"]) for r in out] == [("HELLO PLUGIN!!", 4), ("AEIOU!!", 5)]

    (work / "broken.yaml").write_text(
        "version: 1\nname: broken\ninput: {path: in.jsonl}\noutput: {path: out/b.jsonl}\nstages:\n"
        "  - name: b\n    op: broken_filter\n"
    )
    failed = dataflow(installed, "run", "broken.yaml", check=False)
    assert failed.returncode == 2
    assert "broken.yaml:7:9" in failed.stderr and "failed to load" in failed.stderr
    assert "Traceback" not in failed.stderr

    only_core = dict(installed["env"], DATAFLOW_PLUGINS="dataflow-cli")
    names = [
        r["name"]
        for r in json.loads(
            sh(
                installed["venv"] / "bin" / "dataflow", "operators", "list", "--json", cwd=work, env=only_core
            ).stdout
        )
    ]
    assert "shout_refiner" not in names and "range_filter" in names


def test_editor_schemas_resolve_inside_the_wheel_and_a_new_project(installed):
    """The ready pipelines inside the wheel and a spec made by `init` point their editors at a
    schema that exists there and accepts them."""
    import jsonschema
    import yaml

    from dataflow_cli.spec.schema import PROJECT_SCHEMA_FILE, modeline_target

    package = sh(
        installed["venv"] / "bin" / "python",
        "-c",
        "import dataflow_cli, pathlib; print(pathlib.Path(dataflow_cli.__file__).parent)",
        cwd=installed["work"],
        env=installed["env"],
    ).stdout.strip()
    specs = sorted(Path(package).glob("_bundled/pipelines/*/pipeline.yaml"))
    dataflow(installed, "init", "editor_proj")
    specs.append(installed["work"] / "editor_proj" / "pipeline.yaml")
    assert len(specs) > 1
    for spec in specs:
        text = spec.read_text(encoding="utf-8")
        schema_path = spec.parent / modeline_target(text)
        assert schema_path.is_file(), f"{spec} points at a missing schema"
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        jsonschema.validators.validator_for(schema)(schema).validate(yaml.safe_load(text))
    assert schema_path.name == PROJECT_SCHEMA_FILE and schema_path.parent == spec.parent
