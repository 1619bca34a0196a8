"""Building a spec: a stage's params, bindings and prompt come from its operator alone, and an
input file's own problem is reported at the file, whoever named it."""

from __future__ import annotations

import os

import pytest

from dataflow_cli.spec.build import load_spec
from dataflow_cli.spec.model import SpecErrors
from tests.conftest import FIXTURES, write_jsonl

SPEC = """\
version: 1
name: derived
input: {path: in.jsonl}
output: {path: out/out.jsonl}
stages:
  - name: measure
    op: length_evaluator
    inputs: {text: body}
    outputs: {chars: n_chars}
  - name: bounds
    op: range_filter
    inputs: {value: n_chars}
    params: {min: 3}
"""


def test_stage_reads_params_bindings_and_prompt_from_its_operator(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"body": "hello"}])
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    spec = load_spec(tmp_path / "spec.yaml")
    measure, bounds = spec.stages
    assert measure.inputs is measure.operator.input_columns
    assert measure.inputs == {"text": "body"}
    assert measure.outputs["chars"] == "n_chars"
    assert bounds.params == bounds.operator.params.model_dump(mode="json")
    assert bounds.params["min"] == 3
    # One source of truth: rebinding the operator is what the stage (and so the executor and
    # the fingerprint) sees.
    bounds.operator.input_columns["value"] = "other"
    assert bounds.inputs == {"value": "other"}
    assert bounds.prompt_text is None and bounds.operator.prompt is None


def test_json_object_input_is_blamed_on_the_file_not_on_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    data = FIXTURES / "specs" / "data" / "object.json"
    with pytest.raises(SpecErrors) as err:
        load_spec(tmp_path / "spec.yaml", [f"input.path={data}"])
    [issue] = [i for i in err.value.issues if i.path == "input.path"]
    assert issue.location == f"{os.path.relpath(data)}:1:1"
    assert issue.message.startswith("expected a JSON array of objects, got an object")
    assert "--set" not in issue.render()


def test_missing_input_is_blamed_on_the_spec_value(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    with pytest.raises(SpecErrors) as err:
        load_spec(tmp_path / "spec.yaml")
    [issue] = err.value.issues
    assert issue.location == f"{tmp_path / 'spec.yaml'}:3:15"
    assert "not found" in issue.message


def test_validating_a_valid_spec_imports_neither_jsonschema_nor_rich(tmp_path):
    """Each costs a tenth of `dataflow validate`'s time; a valid spec needs neither."""
    import subprocess
    import sys

    write_jsonl(tmp_path / "in.jsonl", [{"body": "hello"}])
    (tmp_path / "spec.yaml").write_text(SPEC, encoding="utf-8")
    probe = (
        "import sys; from dataflow_cli.cli.app import main; sys.argv = ['dataflow', 'validate', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(sorted(m for m in ('jsonschema', 'rich') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, tmp_path / "spec.yaml"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr
