"""CLI commands other than run: operators, schema, init, validate."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import yaml

from tests.conftest import REPO


def test_operators_list_json_is_clean_data(cli):
    rows = cli.json("operators", "list")
    by_name = {r["name"]: r for r in rows}
    assert by_name["range_filter"]["kind"] == "filter"
    assert by_name["exact_dedup_filter"]["scope"] == "global"
    assert all(r["status"] == "ok" and r["summary"] for r in rows if r["distribution"] == "dataflow-cli")


def test_operators_list_by_kind_and_table(cli):
    rows = cli.json("operators", "list", "--kind", "evaluate")
    assert {r["kind"] for r in rows} == {"evaluate"}
    table = cli("operators", "list").stdout
    assert "length_evaluator" in table and "template_generator" in table


def test_operators_list_unknown_kind(cli):
    result = cli("operators", "list", "--kind", "filtr", expect=2)
    assert "did you mean `filter`" in result.stderr


def test_operators_show(cli):
    out = cli("operators", "show", "range_filter").stdout
    assert "range_filter" in out and "Params" in out and "inclusive" in out and "Example stage" in out
    info = cli.json("operators", "show", "range_filter")
    params = {p["name"]: p for p in info["params"]}
    assert params["inclusive"]["default"] is True
    assert info["inputs"][0]["name"] == "value"


def test_operators_show_unknown(cli):
    result = cli("operators", "show", "rang_filter", expect=2)
    assert "did you mean `range_filter`" in result.stderr


def test_example_stage_snippet_is_valid_yaml(cli):
    out = cli("operators", "show", "length_evaluator").stdout
    snippet = out.split("Example stage", 1)[1]
    stage = yaml.safe_load(snippet)[0]
    assert stage["op"] == "length_evaluator" and stage["outputs"]["chars"] == "chars"


def test_schema_validates_ready_pipelines_and_operator_params(cli):
    schema = json.loads(cli("schema").stdout)
    validator = jsonschema.validators.validator_for(schema)(schema)  # draft-07, what editors read
    for spec in (REPO / "pipelines").glob("*/pipeline.yaml"):
        validator.validate(yaml.safe_load(spec.read_text()))
    bad = yaml.safe_load((REPO / "pipelines" / "text_clean" / "pipeline.yaml").read_text())
    bad["stages"][2]["params"]["min"] = "five"
    errors = list(validator.iter_errors(bad))
    assert errors and any("five" in e.message for e in errors)


def test_init_lists_templates(cli):
    assert "text_clean" in cli("init", "--list-templates").stdout
    names = [t["name"] for t in cli.json("init", "--list-templates")]
    assert "text_clean" in names


def test_init_refuses_to_overwrite_then_force(cli, tmp_path):
    cli("init", tmp_path / "p")
    spec = tmp_path / "p" / "pipeline.yaml"
    spec.write_text(spec.read_text() + "# edited\n")
    result = cli("init", tmp_path / "p", expect=1)
    assert "already exist" in result.stderr and "--force" in result.stderr
    assert spec.read_text().endswith("# edited\n")
    cli("init", tmp_path / "p", "--force")
    assert not spec.read_text().endswith("# edited\n")


def test_init_unknown_template(cli, tmp_path):
    result = cli("init", tmp_path, "--template", "text_clen", expect=2)
    assert "did you mean `text_clean`" in result.stderr
    assert not list(tmp_path.iterdir())


def test_validate_json(cli, tmp_path):
    cli("init", tmp_path / "p")
    ok = cli.json("validate", tmp_path / "p" / "pipeline.yaml")
    assert ok["valid"] is True and len(ok["stages"]) == 7
    bad = cli.json(
        "validate", tmp_path / "p" / "pipeline.yaml", "--set", "stages.measure.op=length_evaluatr", expect=2
    )
    assert bad["valid"] is False
    assert bad["errors"][0]["location"] == "--set stages.measure.op"
    assert "did you mean `length_evaluator`" in bad["errors"][0]["message"]


def test_missing_spec_file(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.yaml", expect=2)
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from dataflow_cli.cli.app import app; "
        "heavy = [m for m in ('pandas', 'pyarrow', 'numpy', 'litellm', 'vllm', 'torch', 'jsonschema') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
    help_text = subprocess.run(
        [sys.executable, "-m", "dataflow_cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "run" in help_text and "validate" in help_text


def test_operators_show_renders_the_default_prompt(cli):
    out = cli("operators", "show", "prompted_evaluator").stdout
    assert "Default prompt template" in out and "{{ text }}" in out
    assert cli.json("operators", "show", "prompted_evaluator")["default_template"].startswith(
        "Rate the quality"
    )
