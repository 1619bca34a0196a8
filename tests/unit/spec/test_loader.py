from __future__ import annotations

import pytest

from dataflow_cli.errors import SpecError
from dataflow_cli.spec.loader import apply_override, format_path, interpolate, parse_document
from tests.conftest import REPO

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
    assert problems == [("s.yaml:4:5", "d", "environment variable `MISSING` is not set", ("d",))]


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


def test_unset_variable_is_located_at_its_dollar_sign():
    text = (
        'a: "${NOPE}"\n'  # quoted: the quote is not the variable
        "b: data/${NOPE}/x\n"
        "c: '$${NOPE} then ${NOPE}'\n"  # the escaped one is text; the second is the variable
        'd: "first ${SET} then\n'
        '  ${NOPE}"\n'  # a string over two lines
    )
    doc = parse_document(text, "s.yaml")
    problems = interpolate(doc, {"SET": "1"})
    assert [p[0] for p in problems] == ["s.yaml:1:5", "s.yaml:2:9", "s.yaml:3:19", "s.yaml:5:3"]


def test_unset_variable_from_set_is_located_at_the_option():
    doc = parse_document('input: {path: "${A}"}\n', "s.yaml")
    apply_override(doc, "input.path=${B}")
    problems = interpolate(doc, {})
    assert [(p[0], p[2]) for p in problems] == [("--set input.path", "environment variable `B` is not set")]


def test_set_forgets_the_locations_of_the_value_it_replaces():
    doc = parse_document("params:\n  a: 1\n  b: 2\n", "s.yaml")
    apply_override(doc, "params={c: 3}")
    assert doc.data == {"params": {"c": 3}}
    assert doc.locate(("params", "a")) == "--set params"


def test_block_collection_is_located_at_its_key():
    doc = parse_document("stages:\n  a: 1\nflow: {a: 1}\nitems:\n  - x: 1\n", "s.yaml")
    assert doc.locate_collection(("stages",)) == "s.yaml:1:1"
    assert doc.locate_collection(("flow",)) == "s.yaml:3:7"  # a flow mapping starts at its brace
    assert doc.locate_collection(("items", 0)) == "s.yaml:5:5"  # list items have no key


def test_aliases_share_settings_and_merge_keys_fill_in_missing_ones():
    text = """\
common: &common {min: 1, max: 9}
extra: &extra {max: 5, step: 2}
stages:
  - name: a
    params: *common
  - name: b
    params:
      <<: [*extra, *common]
      min: 0
"""
    doc = parse_document(text, "s.yaml")
    stages = doc.data["stages"]
    assert stages[0]["params"] == {"min": 1, "max": 9}
    # Keys written out win; among merged mappings the earlier one wins.
    assert stages[1]["params"] == {"min": 0, "max": 5, "step": 2}
    assert doc.locate(("stages", 1, "params", "min")) == "s.yaml:9:12"
    assert doc.locate(("stages", 0, "params")) == "s.yaml:5:13"  # the alias, not the anchor
    assert doc.locate(("stages", 0, "params", "max")) == "s.yaml:1:31"  # inside the anchor


def test_merge_of_a_non_mapping_is_an_error():
    with pytest.raises(SpecError, match="merges only mappings") as err:
        parse_document("x: &x [1]\ny:\n  <<: *x\n", "s.yaml")
    assert err.value.location == "s.yaml:3:7"


def _bomb(levels: int, width: int) -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_expands():
    import tracemalloc

    text = _bomb(levels=40, width=9)  # 9**40 values once expanded
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match="more than 10,000 values") as err:
            parse_document(text, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    assert err.value.location == "bomb.yaml:5:10"  # the first alias that crosses the budget
    assert "`*l3` here repeats 7,381" in err.value.reason


def test_aliases_within_the_budget_load():
    doc = parse_document(_bomb(levels=4, width=9), "ok.yaml")  # 8,289 values through aliases
    assert len(doc.data["l3"]) == 9 and doc.data["l3"][8][8][8] == ["lol"] * 9


def test_recursive_alias_is_an_error_not_a_crash():
    with pytest.raises(SpecError, match="refers to a node that contains it") as err:
        parse_document("a: &a\n  b: *a\n", "r.yaml")
    assert err.value.location == "r.yaml:2:6"


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(SpecError, match="nests too deeply"):
        parse_document("a: " + "[" * 50_000 + "]" * 50_000 + "\n", "deep.yaml")


@pytest.mark.parametrize(
    "text",
    [
        *(p.read_text(encoding="utf-8") for p in sorted(REPO.glob("pipelines/*/pipeline.yaml"))),
        'é: "ü ${X}"\nb: [1, {c: 2}]\n',
    ],
)
def test_libyaml_and_pure_python_parsers_give_the_same_document(text, monkeypatch):
    import yaml

    fast = parse_document(text, "s.yaml")
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    slow = parse_document(text, "s.yaml")
    assert fast.data == slow.data
    assert fast.value_locations == slow.value_locations
    assert fast.key_locations == slow.key_locations
    assert fast.scalar_spans == slow.scalar_spans
