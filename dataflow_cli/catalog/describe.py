"""One operator class described as plain data: the shape `operators show`, the docs, the search
index and `--json` all share."""

from __future__ import annotations

import inspect
import re
from functools import cache
from typing import TYPE_CHECKING, Any

from dataflow_cli import registry

if TYPE_CHECKING:
    from dataflow_cli.operator import Operator

BUILTIN_PACKAGE = "dataflow_operators"
_HEADER = re.compile(r"^(Inputs|Outputs|Params):\s*(.*)$")
# "name: text", or several names sharing one text ("template, system, seed: see LLM params").
# A pseudo port is written `<property>`.
_NAME = r"`?<?[A-Za-z_]\w*>?`?"
_ENTRY = re.compile(rf"^({_NAME}(?:\s*,\s*{_NAME})*)\s*:\s+(.*)$")


def domain_of(entry: registry.Entry, cls: type[Operator] | None = None) -> str:
    """The built-ins' package (`dataflow_operators.text.minhash_dedup` -> `text`); for a plugin
    its class's `domain` attribute, else its distribution's name."""
    module = entry.entry_point.value.split(":", 1)[0]
    parts = module.split(".")
    if parts[0] == BUILTIN_PACKAGE and len(parts) > 2:
        return parts[1]
    declared = getattr(cls, "domain", "") if cls is not None else ""
    return declared or entry.distribution


def split_doc(doc: str) -> tuple[str, dict[str, list[tuple[str | None, str]]]]:
    """A docstring as (prose, sections): the text outside `Inputs:`/`Outputs:`/`Params:` and,
    per section, its entries as (name or names, text); (None, text) for lines such as
    "(none: rows are kept or dropped)". Continuation lines are joined to their entry."""
    prose: list[str] = []
    sections: dict[str, list[tuple[str | None, str]]] = {}
    current: list[str] | None = None
    blocks: dict[str, list[str]] = {}
    for line in inspect.cleandoc(doc).splitlines():
        header = _HEADER.match(line)
        if header:
            current = blocks.setdefault(header.group(1), [])
            if header.group(2):
                current.append(header.group(2))
        elif current is not None and (not line.strip() or line[:1].isspace()):
            current.append(line)
        else:  # an unindented line after a section is prose again
            current = None
            prose.append(line)
    for name, lines in blocks.items():
        body = [ln for ln in lines if ln.strip()]
        indent = min((len(ln) - len(ln.lstrip()) for ln in body), default=0)
        entries: list[tuple[str | None, str]] = []
        for ln in body:
            text = ln.strip()
            if len(ln) - len(ln.lstrip()) > indent and entries:
                key, previous = entries[-1]
                entries[-1] = (key, f"{previous} {text}")
                continue
            match = _ENTRY.match(text)
            entries.append((match.group(1).replace("`", ""), match.group(2)) if match else (None, text))
        sections[name] = entries
    return "\n".join(prose).strip(), sections


def _section_docs(entries: list[tuple[str | None, str]], names: set[str]) -> tuple[dict[str, str], list[str]]:
    """Per-name texts of a docstring section, and the notes that belong to no single name.
    An entry naming several names that all exist is covered by their own descriptions."""
    per_name: dict[str, str] = {}
    notes: list[str] = []
    for key, text in entries:
        if key is not None and key in names:
            per_name[key] = text
        elif key is not None and "," in key and {k.strip() for k in key.split(",")} <= names:
            continue
        else:
            notes.append(text if key is None else f"{key}: {text}")
    return per_name, notes


def type_name(schema: dict[str, Any]) -> str:
    """A JSON Schema as a short Python-like type: `float | int | null`, `list[str]`."""
    if "anyOf" in schema:
        return " | ".join(type_name(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{type_name(schema.get('items', {}))}]"
    if kind == "object" and "additionalProperties" in schema:
        value = schema["additionalProperties"]
        return f"dict[str, {type_name(value) if isinstance(value, dict) else 'any'}]"
    return {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "null"}.get(
        kind, kind
    )


_PAREN = re.compile(r"\s*\(([^()]*)\)")


def param_text(param: dict[str, Any]) -> str:
    """A param's description for a table that has a default column: the docstring's entry (else
    the field's description) without a parenthetical that only restates the default, so
    "fewest words (default 5)." reads "fewest words." beside `5`."""
    text = param.get("details") or param.get("description") or ""
    if param.get("required"):
        return text

    def strip(match: re.Match) -> str:
        first, *rest = match.group(1).split(";")
        value = re.sub(r"^default\b\s*[:=]?\s*", "", first.strip())
        if not _same_value(value, param.get("default")):
            return match.group(0)
        return f" ({';'.join(rest).strip()})" if rest else ""

    return _PAREN.sub(strip, text)


def _same_value(text: str, value: Any) -> bool:
    import json

    if text in (str(value), json.dumps(value, ensure_ascii=False)):
        return True
    if isinstance(value, bool) or value is None:
        return text.lower() == json.dumps(value)
    if isinstance(value, (int, float)):
        try:
            return float(text) == value
        except ValueError:
            return False
    return False


def describe(name: str) -> dict[str, Any]:
    """Import the operator registered as `name` and describe it (a clear error if it is unknown
    or broken)."""
    return describe_class(registry.load(name), registry.entries()[name])


def describe_class(cls: type[Operator], entry: registry.Entry) -> dict[str, Any]:
    from pydantic_core import to_jsonable_python

    schema = cls.Params.model_json_schema()
    required = set(schema.get("required", []))
    prose, sections = split_doc(cls.__doc__ or "")
    param_docs, param_notes = _section_docs(sections.get("Params", []), set(cls.Params.model_fields))
    input_docs, input_notes = _section_docs(sections.get("Inputs", []), set(cls.inputs))
    output_docs, output_notes = _section_docs(sections.get("Outputs", []), set(cls.outputs))
    params = []
    for pname, field in cls.Params.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        params.append(
            {
                "name": pname,
                "type": type_name(schema.get("properties", {}).get(pname, {})),
                "required": pname in required,
                "default": to_jsonable_python(default, fallback=repr),
                "description": field.description or "",
                "details": param_docs.get(pname, ""),
                "examples": to_jsonable_python(list(field.examples or []), fallback=repr),
            }
        )
    info: dict[str, Any] = {
        "name": entry.name,
        "kind": cls.kind,
        "scope": cls.scope,
        "domain": domain_of(entry, cls),
        "version": cls.version,
        "distribution": entry.distribution,
        "entry_point": entry.entry_point.value,
        "summary": cls.summary(),
        "description": prose,
        "doc": inspect.cleandoc(cls.__doc__ or ""),
        "inputs": [
            {"name": k, "description": p.description, "details": input_docs.get(k, "")}
            for k, p in cls.inputs.items()
        ],
        "outputs": [
            {"name": k, "type": p.type, "description": p.description, "details": output_docs.get(k, "")}
            for k, p in cls.outputs.items()
        ],
        "params": params,
        "notes": {"inputs": input_notes, "outputs": output_notes, "params": param_notes},
        "requires": list(cls.requires),
        "uses_llm": bool(getattr(cls, "uses_llm", False)),
        "default_template": getattr(cls, "default_template", "") or None,
        "params_schema": schema,
    }
    info["example"] = _example(cls, info)
    return info


def _example(cls: type[Operator], info: dict[str, Any]) -> dict[str, Any]:
    """A minimal stage a user would write: required params (from the field's `examples`, else
    from a shipped pipeline that uses the operator, else a `<type>` placeholder) and optional
    params that declare examples. When that is not a valid configuration (e.g. "at least one of
    min and max"), the params of the smallest shipped use that is."""
    usages = [u for u in shipped_usages().get(info["name"], []) if isinstance(u.get("params"), dict)]
    params: dict[str, Any] = {}
    for p in info["params"]:
        if p["examples"]:
            params[p["name"]] = p["examples"][0]
        elif p["required"]:
            used = next((u["params"][p["name"]] for u in usages if p["name"] in u["params"]), None)
            params[p["name"]] = used if used is not None else _placeholder(_property(info, p["name"]))
    if not _valid(cls, params):
        shipped = [dict(u["params"]) for u in usages if _valid(cls, u["params"])]
        params = min(shipped, key=len) if shipped else _one_more(cls, info, params)
    stage: dict[str, Any] = {"name": info["name"].rsplit("_", 1)[0], "op": info["name"]}
    if info["uses_llm"]:
        stage["backend"] = "default"
    # Bind each logical port to a column of the same name, to show where a user's names go
    # (a pseudo port such as json_generator's `<property>` has no name to show).
    for section in ("inputs", "outputs"):
        ports = [p["name"] for p in info[section] if p["name"].isidentifier()]
        if ports:
            stage[section] = {name: name for name in ports}
    if params:
        stage["params"] = params
    return stage


_SAMPLES = (1, 0.5, "x", True, ["x"])


def _property(info: dict[str, Any], name: str) -> dict[str, Any]:
    return info["params_schema"].get("properties", {}).get(name, {})


def _placeholder(schema: dict[str, Any]) -> Any:
    """A value to fill in, shaped like the param: `<int>`, `[<str>]`, `{<str>: <str>}` (null is
    never what a user fills in)."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"] or [schema]
    if len(options) == 1:
        option = options[0]
        if option.get("type") == "array" and isinstance(option.get("items"), dict):
            return [_placeholder(option["items"])]
        if option.get("type") == "object" and isinstance(option.get("additionalProperties"), dict):
            return {"<str>": _placeholder(option["additionalProperties"])}
    return f"<{' | '.join(type_name(o) for o in options)}>"


def _one_more(cls: type[Operator], info: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """For "give at least one of ..." rules: the first unset optional param that makes the
    configuration valid, as a `<type>` placeholder (its value is the user's to choose)."""
    for p in info["params"]:
        if p["name"] in params or p["required"]:
            continue
        if any(_valid(cls, {**params, p["name"]: sample}) for sample in _SAMPLES):
            return {**params, p["name"]: _placeholder(_property(info, p["name"]))}
    return params


def _valid(cls: type[Operator], params: dict[str, Any]) -> bool:
    from pydantic import ValidationError

    try:
        cls.Params(**params)
    except (ValidationError, TypeError, ValueError):
        return False
    return True


@cache
def shipped_usages() -> dict[str, list[dict[str, Any]]]:
    """Stages of the ready pipelines, by operator: real, tested uses to draw examples from."""
    import yaml

    from dataflow_cli.resources import pipelines_dir

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
    found: dict[str, list[dict[str, Any]]] = {}
    for spec in sorted(pipelines_dir().glob("*/pipeline.yaml")):
        try:
            stages = (yaml.load(spec.read_text(encoding="utf-8"), Loader=loader) or {}).get("stages") or []
        except (OSError, yaml.YAMLError):  # a broken shipped spec is test_pipelines' to report
            continue
        for stage in stages:
            if isinstance(stage, dict) and isinstance(stage.get("op"), str):
                found.setdefault(stage["op"], []).append(stage)
    return found


def example_stage(info: dict[str, Any]) -> str:
    """The example stage as YAML to paste under `stages:`, laid out as a person writes one: the
    stage's keys one per line, short maps and lists inline (`inputs: {text: text}`), multi-line
    text (a template) as a literal block."""
    import yaml

    class Stage(dict):
        pass

    class Dumper(yaml.SafeDumper):
        pass

    def inline(value: Any) -> bool:
        leaves = value.values() if isinstance(value, dict) else value
        return (
            all(
                isinstance(v, (int, float, bool, type(None))) or (isinstance(v, str) and "\n" not in v)
                for v in leaves
            )
            and len(str(value)) <= 80
        )

    def mapping(dumper: Dumper, data: dict) -> yaml.Node:
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=inline(data))

    def sequence(dumper: Dumper, data: list) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline(data))

    def text(dumper: Dumper, data: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)

    Dumper.add_representer(dict, mapping)
    Dumper.add_representer(list, sequence)
    Dumper.add_representer(str, text)
    Dumper.add_representer(
        Stage, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=False)
    )
    return yaml.dump(
        [Stage(info["example"])], Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100
    ).rstrip()
