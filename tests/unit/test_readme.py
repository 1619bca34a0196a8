"""The README's "write your own operator" example is real code that works."""

from __future__ import annotations

import re

import pyarrow as pa

from dataflow_cli.engine.delta import apply_delta, make_delta
from dataflow_cli.operator import Batch
from dataflow_cli.spec.model import Stage
from tests.conftest import REPO


def test_readme_operator_example_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Write your own operator", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 16
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    op_class = namespace["MaxDigitsFilter"]
    op = op_class(op_class.Params(max=2))
    table = pa.table({"_id": ["0", "1", "2"], "text": ["no digits", "call 555 1234", "a1b2"]})
    verdict = op.process(Batch(table, op.input_columns))
    stage = Stage(0, "digits", op.name, op, {}, op.input_columns, op.output_columns)
    kept, rejected = apply_delta(stage, table, make_delta(stage, table, verdict))
    assert kept.column("_id").to_pylist() == ["0", "2"]
    assert rejected.column("_reason").to_pylist() == ["more than 2 digits"]
