"""The fast structure check agrees with jsonschema: it may only skip jsonschema when the spec is
valid, so on every document its verdict must be jsonschema's."""

from __future__ import annotations

import copy
import random

import pytest
import yaml
from jsonschema import Draft202012Validator

from dataflow_cli.errors import SpecError
from dataflow_cli.spec.loader import parse_document
from dataflow_cli.spec.schema import pipeline_schema
from dataflow_cli.spec.structure import Unsupported, conforms, structure_errors
from tests.conftest import FIXTURES, REPO

SPECS = sorted(REPO.glob("pipelines/*/pipeline.yaml")) + sorted(FIXTURES.glob("specs/**/*.yaml"))

# Values that stand for each JSON type, and edge cases jsonschema treats specially
# (a bool is not a number, 1.0 is an integer, 1 equals 1.0).
REPLACEMENTS = [None, True, False, 0, 1, 1.0, 2.5, -1, "", "x", "a b", [], [1], {}, {"name": "x"}]


def _documents():
    for path in SPECS:
        try:
            data = parse_document(path.read_text(encoding="utf-8"), path.name).data
        except SpecError:
            continue  # malformed on purpose (or an alias bomb)
        if isinstance(data, dict):
            yield path.name, data


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def _mutations(data):
    """The document with each value replaced by each replacement, each key removed, and an
    unknown key added to each mapping."""
    for path in _paths(data):
        if not path:
            continue
        for replacement in REPLACEMENTS:
            mutated = copy.deepcopy(data)
            parent = mutated
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = replacement
            yield mutated
        mutated = copy.deepcopy(data)
        parent = mutated
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
        yield mutated
        if isinstance(parent, dict):
            parent["unknown_key"] = 1
            yield mutated


def test_fast_check_agrees_with_jsonschema_on_specs_and_their_mutations():
    schema = pipeline_schema()
    validator = Draft202012Validator(schema)
    documents = [(name, doc) for name, data in _documents() for doc in [data, *_mutations(data)]]
    checked = valid = 0
    # A fixed sample keeps the test fast (jsonschema takes ~1.5 ms a document); the full set of
    # ~14,000 agreed when this was written.
    for name, document in random.Random(7).sample(documents, 2500):
        expected = validator.is_valid(document)
        assert conforms(document, schema, schema) == expected, (name, document)
        checked += 1
        valid += expected
    assert 0 < valid < checked  # both verdicts were exercised


def test_errors_come_from_jsonschema_only_when_invalid():
    schema = pipeline_schema()
    assert list(structure_errors({"version": 1}, schema))  # missing keys
    valid = yaml.safe_load((REPO / "pipelines/text_clean/pipeline.yaml").read_text(encoding="utf-8"))
    assert list(structure_errors(valid, schema)) == []


def test_unknown_keyword_hands_over_to_jsonschema():
    schema = {"type": "object", "propertyNames": {"pattern": "^a"}}
    with pytest.raises(Unsupported):
        conforms({"b": 1}, schema, schema)
    errors = list(structure_errors({"b": 1}, schema))
    assert [e.message for e in errors] == ["'b' does not match '^a'"]


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [
        ({"type": "integer"}, True, False),
        ({"type": "integer"}, 3.0, True),
        ({"const": 1}, True, False),
        ({"const": 1}, 1.0, True),
        ({"enum": ["a", 1]}, "1", False),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1, False),  # both match
        ({"pattern": "b"}, "abc", True),  # search, not match
        ({"minimum": 0}, "x", True),  # applies to numbers only
    ],
)
def test_json_schema_edge_cases(schema, value, expected):
    assert conforms(value, schema, schema) == expected
    assert Draft202012Validator(schema).is_valid(value) == expected
