from __future__ import annotations

import pytest

from dataflow_cli.errors import SpecError
from dataflow_cli.spec.loader import apply_override, format_path, interpolate, parse_document

SPEC = """\
version: 1
name: demo
input: {path: data.jsonl}
stages:
  - name: first
    op: length_evaluator
    params:
      min: 3
  - name: second
    op: range_filter
"""


def test_locations_of_values_and_keys():
    doc = parse_document(SPEC, "spec.yaml")
    assert doc.data["stages"][0]["params"] == {"min": 3}
    assert doc.locate(("stages", 0, "params", "min")) == "spec.yaml:8:12"
    assert doc.locate(("stages", 0, "params", "min"), key=True) == "spec.yaml:8:7"
    assert doc.locate(("stages", 1, "op")) == "spec.yaml:10:9"
    # An absent path falls back to its nearest located ancestor.
    assert doc.locate(("stages", 1, "params", "max")) == "spec.yaml:9:5"


def test_format_path():
    assert format_path(("stages", 2, "params", "min")) == "stages[2].params.min"
    assert format_path(()) == "(root)"


def test_yaml_syntax_error_has_location():
    with pytest.raises(SpecError) as err:
        parse_document("a: [1, 2\nb: 3\n", "bad.yaml")
    assert err.value.location.startswith("bad.yaml:")
    assert "invalid YAML" in err.value.reason


def test_duplicate_key_is_an_error():
    with pytest.raises(SpecError) as err:
        parse_document("a: 1\nb: 2\na: 3\n", "dup.yaml")
    assert err.value.location == "dup.yaml:3:1"
    assert "duplicate key `a`" in err.value.reason
    assert "dup.yaml:1:1" in err.value.hint


def test_empty_document():
    with pytest.raises(SpecError, match="empty"):
        parse_document("# nothing\n", "e.yaml")


def test_interpolation_defaults_escapes_and_missing():
    doc = parse_document(
        'a: "${HOME_DIR}/x"\nb: "${NOPE:-fallback}"\nc: "$${LITERAL}"\nd: "${MISSING}"\n', "s.yaml"
    )
    problems = interpolate(doc, {"HOME_DIR": "/home/me"})
    assert doc.data == {"a": "/home/me/x", "b": "fallback", "c": "${LITERAL}", "d": "${MISSING}"}
    assert problems == [("s.yaml:4:4", "d", "environment variable `MISSING` is not set", ("d",))]


def test_override_by_stage_name_is_yaml_typed():
    doc = parse_document(SPEC, "spec.yaml")
    apply_override(doc, "stages.first.params.min=42")
    apply_override(doc, "stages.second.params.max=1.5")
    apply_override(doc, "input.limit=10")
    assert doc.data["stages"][0]["params"]["min"] == 42
    assert doc.data["stages"][1]["params"] == {"max": 1.5}
    assert doc.data["input"]["limit"] == 10
    assert doc.locate(("stages", 0, "params", "min")) == "--set stages.first.params.min"


def test_override_unknown_stage_suggests():
    doc = parse_document(SPEC, "spec.yaml")
    with pytest.raises(SpecError, match="did you mean `second`"):
        apply_override(doc, "stages.secnd.params.x=1")


def test_override_needs_equals():
    doc = parse_document(SPEC, "spec.yaml")
    with pytest.raises(SpecError, match="path=value"):
        apply_override(doc, "stages.first")
