"""The pipeline JSON Schema, alone (the structure `validate` checks first) or with every operator's
params and every backend's settings (the editor schema: `dataflow schema`, the file
`dataflow init` writes beside a new spec, and `schemas/pipeline.full.schema.json`, which the
shipped pipelines point at).

The editor schema is written in JSON Schema draft-07, the dialect the YAML language server
(VS Code's YAML extension and others built on it) implements; the keywords it uses mean the same
in 2020-12, so jsonschema checks a spec against it exactly as an editor does.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path
from typing import Any

from dataflow_cli.resources import schemas_dir

# The editor schema of the built-in operators, committed and shipped; a test keeps it current.
BUILTIN_SCHEMA_FILE = "pipeline.full.schema.json"
BUILTIN_DISTRIBUTION = "dataflow-cli"
REGENERATE = f"dataflow schema --distribution {BUILTIN_DISTRIBUTION} --output schemas/{BUILTIN_SCHEMA_FILE}"
# What `dataflow init` writes beside the spec it creates.
PROJECT_SCHEMA_FILE = "pipeline.schema.json"

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
MODELINE = "# yaml-language-server: $schema="


@lru_cache(maxsize=1)
def pipeline_schema() -> dict[str, Any]:
    return json.loads((schemas_dir() / "pipeline.schema.json").read_text(encoding="utf-8"))


def full_schema(distributions: Collection[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The editor schema: the pipeline schema where each stage's `params` is checked against its
    operator's params (an if/then per installed operator) and each backend's settings against its
    provider's. Only operators of `distributions` when given. Returns the schema and the names
    of operators that failed to load (left out)."""
    from dataflow_cli import registry
    from dataflow_cli.llm.registry import backend_class, providers

    schema = copy.deepcopy(pipeline_schema())
    defs = schema["$defs"]
    stage = defs["stage"]
    branches = []
    failed = []
    names = [
        name
        for name, entry in registry.entries().items()
        if distributions is None or entry.distribution in distributions
    ]
    for name in names:
        try:
            cls = registry.load(name)
        except Exception:  # a broken plugin is listed as failed, not fatal here
            failed.append(name)
            continue
        params = _embed(cls.Params.model_json_schema(), name, defs)
        params["description"] = cls.summary()
        branches.append({"if": _when("op", name), "then": {"properties": {"params": params}}})
    stage["properties"]["op"]["enum"] = names
    if branches:
        stage["allOf"] = branches

    backend = schema["properties"]["backends"]["additionalProperties"]
    backend_branches = []
    for provider in providers():
        try:
            config = backend_class(provider).Config
        except Exception:  # as above: a broken backend plugin only loses its completions
            continue
        settings = _embed(config.model_json_schema(), f"backend_{provider}", defs)
        settings.pop("required", None)  # `provider` is the only required key, checked above
        backend_branches.append({"if": _when("provider", provider), "then": settings})
    backend["properties"]["provider"]["enum"] = providers()
    if backend_branches:
        backend["allOf"] = backend_branches
    return _as_draft_07(schema), failed


def _when(key: str, value: str) -> dict[str, Any]:
    return {"properties": {key: {"const": value}}, "required": [key]}


def _embed(model_schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """A pydantic model's schema with its own `$defs` moved into the document's, renamed
    `<prefix>__<name>` so that two models' definitions cannot collide."""
    own = model_schema.pop("$defs", {})
    renamed = {f"#/$defs/{name}": f"#/$defs/{prefix}__{name}" for name in own}

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: renamed.get(v, v) if k == "$ref" else rename(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rename(item) for item in node]
        return node

    for name, definition in own.items():
        defs[f"{prefix}__{name}"] = rename(definition)
    return rename(model_schema)


def _as_draft_07(schema: dict[str, Any]) -> dict[str, Any]:
    """Say the same in draft-07: `$defs` become `definitions`, `prefixItems` (a tuple) an
    `items` list."""

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/definitions/" + value.removeprefix("#/$defs/")
            elif key in ("properties", "$defs"):
                out["definitions" if key == "$defs" else key] = {k: convert(v) for k, v in value.items()}
            elif key == "prefixItems":
                out["items"] = convert(value)
                out["additionalItems"] = convert(node.get("items", True))
            elif key == "items" and "prefixItems" in node:
                continue
            elif key in ("const", "enum", "default", "examples"):
                out[key] = value  # values, not schemas
            else:
                out[key] = convert(value)
        return out

    converted = convert(schema)
    converted.pop("$id", None)  # the structure schema's id; this document is a different one
    converted["$schema"] = DRAFT_07
    return converted


def schema_text(schema: dict[str, Any]) -> str:
    """How schema files are written (stable, so a regenerated file diffs cleanly)."""
    return json.dumps(schema, indent=1, ensure_ascii=False) + "\n"


def modeline_target(spec_text: str) -> str | None:
    """The schema a spec's `# yaml-language-server: $schema=...` comment points at, if any."""
    for line in spec_text.splitlines():
        stripped = line.strip()
        if stripped.startswith(MODELINE):
            return stripped.removeprefix(MODELINE).strip()
    return None


def point_modeline(spec_text: str, target: str) -> str:
    """`spec_text` with its schema comment pointing at `target` (added as the first line if
    there is none)."""
    lines = spec_text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip().startswith(MODELINE):
            lines[i] = f"{MODELINE}{target}\n"
            return "".join(lines)
    return f"{MODELINE}{target}\n{spec_text}"


def builtin_schema_path() -> Path:
    return schemas_dir() / BUILTIN_SCHEMA_FILE
