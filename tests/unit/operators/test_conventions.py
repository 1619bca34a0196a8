"""Every built-in operator follows the registry, docstring and params conventions."""

import json

import pytest

from dataflow_cli import registry
from dataflow_cli.operator import Operator

# Every operator this distribution registers, so a new built-in is checked automatically.
BUILTINS = {name for name, entry in registry.entries().items() if entry.distribution == "dataflow-cli"}
SUFFIX = {"generate": "generator", "evaluate": "evaluator", "filter": "filter", "refine": "refiner"}


def test_builtins_are_registered():
    assert {"range_filter", "minhash_dedup_filter", "prompted_generator", "language_filter"} <= BUILTINS


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_conventions(name):
    cls = registry.load(name)
    assert issubclass(cls, Operator)
    assert cls.name == name
    assert name.endswith("_" + SUFFIX[cls.kind])
    assert cls.__name__ == "".join(part.capitalize() for part in name.split("_"))
    doc = cls.__doc__ or ""
    summary = cls.summary()
    assert summary and summary[0].isupper() and summary.endswith(".")
    assert doc.index("Inputs:") < doc.index("Outputs:") < doc.index("Params:")
    assert cls.Params.model_config.get("extra") == "forbid"
    for field_name, field in cls.Params.model_fields.items():
        assert field.description, f"{name}.{field_name} has no description"
        assert field_name in doc.split("Params:")[1], f"{name}.{field_name} is not in the docstring"
    documented_outputs = doc.split("Outputs:")[1].split("Params:")[0]
    for output in cls.outputs:
        assert output in documented_outputs, f"{name}: output {output} is not in the docstring"
    json.dumps(cls.Params.model_json_schema())
    for port in {**cls.inputs, **cls.outputs}.values():
        assert port.description
