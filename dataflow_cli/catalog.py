"""Human- and machine-readable descriptions of installed operators."""

from __future__ import annotations

import inspect
from typing import Any

import yaml

from dataflow_cli import registry
from dataflow_cli.errors import DataflowError


def describe_all() -> list[dict[str, Any]]:
    """Every registered operator; one that fails to import is listed with its error."""
    rows = []
    for name, entry in registry.entries().items():
        row: dict[str, Any] = {
            "name": name,
            "distribution": entry.distribution,
            "entry_point": entry.entry_point.value,
        }
        try:
            cls = registry.load(name)
        except DataflowError as exc:
            row.update(status="failed", error=exc.reason, kind=None, scope=None, summary="")
        else:
            row.update(status="ok", kind=cls.kind, scope=cls.scope, summary=cls.summary())
        rows.append(row)
    return rows


def _type_name(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " | ".join(_type_name(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{_type_name(schema.get('items', {}))}]"
    if kind == "object" and "additionalProperties" in schema:
        value = schema["additionalProperties"]
        return f"dict[str, {_type_name(value) if isinstance(value, dict) else 'any'}]"
    return {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "null"}.get(
        kind, kind
    )


def describe(name: str) -> dict[str, Any]:
    cls = registry.load(name)
    entry = registry.entries()[name]
    schema = cls.Params.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for pname, field in cls.Params.model_fields.items():
        prop = schema.get("properties", {}).get(pname, {})
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        params.append(
            {
                "name": pname,
                "type": _type_name(prop),
                "required": pname in required,
                "default": default,
                "description": field.description or "",
            }
        )
    return {
        "name": name,
        "kind": cls.kind,
        "scope": cls.scope,
        "version": cls.version,
        "distribution": entry.distribution,
        "summary": cls.summary(),
        "doc": inspect.cleandoc(cls.__doc__ or ""),
        "inputs": [{"name": k, "description": p.description} for k, p in cls.inputs.items()],
        "outputs": [
            {"name": k, "type": p.type, "description": p.description} for k, p in cls.outputs.items()
        ],
        "params": params,
        "requires": list(cls.requires),
        "default_template": getattr(cls, "default_template", "") or None,
        "params_schema": schema,
    }


def example_stage(info: dict[str, Any]) -> str:
    """A stage snippet to paste into a spec, with required params as placeholders."""
    stage: dict[str, Any] = {"name": info["name"].rsplit("_", 1)[0], "op": info["name"]}
    if info["inputs"]:
        stage["inputs"] = {p["name"]: p["name"] for p in info["inputs"]}
    if info["outputs"]:
        stage["outputs"] = {p["name"]: p["name"] for p in info["outputs"]}
    params = {p["name"]: (f"<{p['type']}>" if p["required"] else p["default"]) for p in info["params"]}
    if params:
        stage["params"] = params
    return yaml.safe_dump([stage], sort_keys=False, allow_unicode=True).rstrip()
