"""The pipeline JSON Schema, alone (for validation) or with every operator's params
(`dataflow schema`, for editor autocompletion)."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from dataflow_cli.resources import schemas_dir


@lru_cache(maxsize=1)
def pipeline_schema() -> dict[str, Any]:
    return json.loads((schemas_dir() / "pipeline.schema.json").read_text(encoding="utf-8"))


def full_schema() -> tuple[dict[str, Any], list[str]]:
    """The pipeline schema where each stage's `params` is checked against its operator's
    params schema (an if/then per installed operator). Returns the schema and the names of
    operators that failed to load (left out)."""
    from dataflow_cli import registry

    schema = copy.deepcopy(pipeline_schema())
    stage = schema["$defs"]["stage"]
    branches = []
    failed = []
    for name in registry.entries():
        try:
            cls = registry.load(name)
        except Exception:  # a broken plugin is listed as failed, not fatal here
            failed.append(name)
            continue
        params = cls.Params.model_json_schema()
        defs = params.pop("$defs", {})
        for def_name, definition in defs.items():
            schema["$defs"][f"{name}__{def_name}"] = definition
        params = json.loads(json.dumps(params).replace("#/$defs/", f"#/$defs/{name}__"))
        params.setdefault("description", cls.summary())
        branches.append(
            {"if": {"properties": {"op": {"const": name}}}, "then": {"properties": {"params": params}}}
        )
    stage["properties"]["op"]["enum"] = list(registry.entries())
    if branches:
        stage["allOf"] = branches
    return schema, failed
