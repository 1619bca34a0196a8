"""A shipped or scaffolded spec points its editor at a schema that exists, knows every operator's
params, and accepts the spec; the committed schema of the built-ins is current."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from dataflow_cli.spec.schema import (
    BUILTIN_SCHEMA_FILE,
    PROJECT_SCHEMA_FILE,
    REGENERATE,
    modeline_target,
    point_modeline,
)
from tests.conftest import REPO

PIPELINES = sorted(REPO.glob("pipelines/*/pipeline.yaml"))
COMMITTED = REPO / "schemas" / BUILTIN_SCHEMA_FILE


def referenced_schema(spec: Path) -> tuple[Path, dict]:
    """The schema the spec's modeline names, resolved from the spec's folder as editors do."""
    target = modeline_target(spec.read_text(encoding="utf-8"))
    assert target, f"{spec} has no `# yaml-language-server: $schema=...` line"
    path = (spec.parent / target).resolve()
    assert path.is_file(), f"{spec} points its editor at `{target}`, which does not exist"
    return path, json.loads(path.read_text(encoding="utf-8"))


def errors(schema: dict, spec_data: dict) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator_class(schema).iter_errors(spec_data)
    ]


@pytest.mark.parametrize("spec", PIPELINES, ids=lambda p: p.parent.name)
def test_shipped_pipeline_points_at_the_committed_full_schema_and_passes_it(spec):
    path, schema = referenced_schema(spec)
    assert path == COMMITTED.resolve()
    assert errors(schema, yaml.safe_load(spec.read_text(encoding="utf-8"))) == []


def test_committed_schema_is_current():
    env = {k: v for k, v in os.environ.items() if k != "DATAFLOW_PLUGINS"}
    fresh = subprocess.run(
        [sys.executable, "-m", "dataflow_cli", "schema", "--distribution", "dataflow-cli"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    assert "failed to load" not in fresh.stderr, fresh.stderr
    assert COMMITTED.read_text(encoding="utf-8") == fresh.stdout, (
        f"schemas/{BUILTIN_SCHEMA_FILE} is stale (an operator's params or summary changed, or one "
        f"was added): regenerate it with `make docs` (or `{REGENERATE}`)"
    )


def test_full_schema_checks_operator_names_params_and_backend_settings():
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    spec = {
        "version": 1,
        "name": "x",
        "input": {"path": "in.jsonl"},
        "output": {"path": "out.jsonl"},
        "backends": {"default": {"provider": "fake", "replies": ["ok"], "max_concurency": 2}},
        "stages": [
            {"name": "a", "op": "range_filter", "params": {"min": "low", "colour": 1}},
            {"name": "b", "op": "no_such_filter"},
        ],
    }
    found = errors(schema, spec)
    assert any(e.startswith("backends/default:") and "max_concurency" in e for e in found)
    assert any(e.startswith("stages/0/params/min:") for e in found)
    assert any(e.startswith("stages/0/params:") and "colour" in e for e in found)
    assert any(e.startswith("stages/1/op:") for e in found)
    assert len(found) == 4, found


@pytest.mark.parametrize("template", [p.parent.name for p in PIPELINES])
def test_init_writes_a_schema_beside_the_spec_and_points_at_it(cli, tmp_path, template):
    project = tmp_path / "proj"
    cli("init", project, "--template", template)
    spec = project / "pipeline.yaml"
    path, schema = referenced_schema(spec)
    assert path == (project / PROJECT_SCHEMA_FILE).resolve()
    assert modeline_target(spec.read_text(encoding="utf-8")) == PROJECT_SCHEMA_FILE  # no `..`
    ops = schema["definitions"]["stage"]["properties"]["op"]["enum"]
    assert "range_filter" in ops and "prompted_evaluator" in ops
    assert errors(schema, yaml.safe_load(spec.read_text(encoding="utf-8"))) == []
    cli("validate", spec)


def test_init_refuses_to_overwrite_an_existing_schema(cli, tmp_path):
    (tmp_path / PROJECT_SCHEMA_FILE).write_text("{}", encoding="utf-8")
    result = cli("init", tmp_path, expect=1)
    assert PROJECT_SCHEMA_FILE in result.stderr
    assert (tmp_path / PROJECT_SCHEMA_FILE).read_text(encoding="utf-8") == "{}"


def test_point_modeline_replaces_or_adds_the_schema_comment():
    assert point_modeline("# yaml-language-server: $schema=a.json\nversion: 1\n", "b.json") == (
        "# yaml-language-server: $schema=b.json\nversion: 1\n"
    )
    assert point_modeline("version: 1\n", "b.json") == "# yaml-language-server: $schema=b.json\nversion: 1\n"
