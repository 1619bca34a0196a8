"""Check a spec before any data is read or any model is called.

Every problem is collected on a `Collector` and reported at once, sorted by location. Checks, in
the order `spec.build.load_spec` runs them: structure (JSON Schema), backends, stage names,
operator/backend/prompt references, ports and params (`check_stages`, which returns each stage
ready to build), the input files and output paths, and, once the operators are built, the column
flow (each stage's columns exist in the input header or come from an earlier stage; no stage
silently overwrites a column).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dataflow_cli.engine.gates import check_expectations
from dataflow_cli.errors import DataflowError, SpecError, did_you_mean
from dataflow_cli.operator import RESERVED_PREFIX, Operator
from dataflow_cli.spec.loader import Document, PathKey, format_path
from dataflow_cli.spec.model import Issue, Stage
from dataflow_cli.spec.schema import pipeline_schema


class Collector:
    """The problems found so far, each located in the spec (or in the file it names)."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.issues: list[Issue] = []
        self.unresolved: set[PathKey] = set()  # paths whose ${VAR} could not be interpolated

    def add(self, path: PathKey, message: str, *, key: bool = False) -> None:
        self.issues.append(Issue(self.doc.locate(path, key=key), format_path(path), message))


@dataclass
class CheckedStage:
    """A stage whose operator, references, ports and params passed: what `spec.build` needs to
    construct its operator."""

    index: int
    raw: dict[str, Any]  # the stage as written (after --set and ${VAR})
    cls: type[Operator]
    params: BaseModel
    inputs: dict[str, str]
    outputs: dict[str, str]
    backend_name: str | None
    backend: tuple[type, Any] | None  # (backend class, its validated config)
    prompt_text: str | None


def check_structure(data: dict, out: Collector) -> None:
    from dataflow_cli.spec.structure import structure_errors

    for error in structure_errors(data, pipeline_schema()):
        _report_schema_error(error, out)


_TYPE_NAMES = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def _describe(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", int: "an integer", float: "a number"}
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return f"the string `{value}`"
    return (
        f"{kind.get(type(value), type(value).__name__)} (`{value}`)"
        if not isinstance(value, (dict, list))
        else kind[type(value)]
    )


def _report_schema_error(error, out: Collector) -> None:
    path = tuple(error.absolute_path)
    validator = error.validator
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                out.add(path + (key,), f"unknown key `{key}`{did_you_mean(key, allowed)}", key=True)
        return
    if validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        for key in missing:
            out.add(path, f"missing required key `{key}`")
        return
    if validator == "type":
        expected = error.validator_value
        names = [_TYPE_NAMES.get(t, str(t)) for t in (expected if isinstance(expected, list) else [expected])]
        message = f"expected {' or '.join(names)}, got {_describe(error.instance)}"
        if isinstance(error.instance, (dict, list)):
            out.issues.append(Issue(out.doc.locate_collection(path), format_path(path), message))
        else:
            out.add(path, message)
        return
    if validator == "oneOf" and path == ("executor",):
        _report_executor(error.instance, path, out)
        return
    if validator == "oneOf" and path[:1] == ("prompts",):
        out.add(path, "a prompt needs exactly one of `file` or `template`")
        return
    if validator == "const":
        out.add(path, f"must be `{error.validator_value}`, got {_describe(error.instance)}")
        return
    if validator == "pattern" and path[-1:] == ("processes",):
        out.add(path, f"must be `auto` or a number of processes (1 or more), got {_describe(error.instance)}")
        return
    if validator == "pattern":
        out.add(
            path,
            f"`{error.instance}` may use only letters, digits, `_`, `.` and `-`, starting with a letter or digit",
        )
        return
    if validator in ("minimum", "exclusiveMinimum"):
        sign = ">" if validator == "exclusiveMinimum" else ">="
        out.add(path, f"must be {sign} {error.validator_value}, got {_describe(error.instance)}")
        return
    if validator == "minItems":
        out.add(
            path, f"needs at least {error.validator_value} item{'s' if error.validator_value != 1 else ''}"
        )
        return
    out.add(path, error.message)


def _report_executor(value: Any, path: PathKey, out: Collector) -> None:
    """`executor:` is a name or a mapping: say exactly which part is wrong."""
    names, keys = ["local", "ray"], ["type", "address", "checkpoint_dir"]
    before = len(out.issues)
    kind = value.get("type") if isinstance(value, dict) else value
    if isinstance(value, dict):
        for key in value:
            if key not in keys:
                out.add(path + (key,), f"unknown key `{key}`{did_you_mean(key, keys)}", key=True)
        for key in ("address", "checkpoint_dir"):
            if key in value and not (isinstance(value[key], str) and value[key]):
                out.add(path + (key,), f"expected a non-empty string, got {_describe(value[key])}")
        if "type" not in value:
            out.add(path, "missing required key `type` (`local` or `ray`)")
    if isinstance(kind, str) and kind not in names:
        where = path + ("type",) if isinstance(value, dict) else path
        out.add(where, f"unknown executor `{kind}`{did_you_mean(kind, names)} (known: `local`, `ray`)")
    if len(out.issues) == before:
        expected = "`local`, `ray` or a mapping {type, address, checkpoint_dir}"
        out.add(path, f"expected {expected}, got {_describe(value)}")


def check_backends(data: dict, out: Collector) -> dict[str, Any]:
    """Each backend's provider resolves and its settings fit that provider's config model.
    Nothing is instantiated: validation never opens a connection or loads a model."""
    from dataflow_cli.llm.registry import backend_class, providers

    raw = data.get("backends")
    if not isinstance(raw, dict):
        return {}
    found: dict[str, Any] = {}
    for name, config in raw.items():
        found[name] = None
        if not isinstance(config, dict) or not isinstance(config.get("provider"), str):
            continue  # the schema check reported it
        here = ("backends", name)
        try:
            cls = backend_class(config["provider"])
        except DataflowError as exc:
            out.add(
                here + ("provider",), exc.reason + f" (known: {', '.join(f'`{p}`' for p in providers())})"
            )
            continue
        validated = _validate_model(cls.Config, config, here, out, "setting")
        if validated is not None:
            found[name] = (cls, validated)
    return found


def check_stages(data: dict, spec_dir: Path, backends: dict[str, Any], out: Collector) -> list[CheckedStage]:
    """Every stage whose operator loads and whose params are valid, in order. A stage with other
    problems (an unknown backend, a bad port) is returned too, so later checks still see it."""
    from dataflow_cli import registry

    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list):
        return []
    prompts = data.get("prompts") if isinstance(data.get("prompts"), dict) else {}
    seen_names: dict[str, int] = {}
    checked: list[CheckedStage] = []
    for index, raw in enumerate(raw_stages):
        here = ("stages", index)
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("name"), str)
            or not isinstance(raw.get("op"), str)
        ):
            continue  # already reported by the schema check
        name = raw["name"]
        if name in seen_names:
            first = out.doc.locate(("stages", seen_names[name], "name"))
            out.add(here + ("name",), f"duplicate stage name `{name}` (first used at {first})")
        seen_names.setdefault(name, index)

        try:
            cls = registry.load(raw["op"])
        except DataflowError as exc:
            hint = " (see `dataflow operators list`)" if "unknown operator" in exc.reason else ""
            out.add(here + ("op",), exc.reason + hint)
            continue

        backend_name = raw.get("backend") or ("default" if cls.uses_llm else None)
        if cls.uses_llm and raw.get("backend") is None and "default" not in backends:
            known = ", ".join(f"`{n}`" for n in backends) or "none"
            out.add(
                here + ("op",),
                f"`{raw['op']}` calls an LLM: set `backend:` on the stage or define a backend named "
                f"`default` (defined: {known}); e.g. `backends: {{default: {{provider: local}}}}`",
            )
            continue
        backend = _reference(backend_name, "backend", backends, here, out)
        if raw.get("mode") == "batch":
            _check_batch_mode(cls, backend_name, backend, here, out)
        if isinstance(raw.get("processes"), int) and raw["processes"] > 1:
            _check_processes(cls, here, out)
        prompt_text = _prompt_text(raw, prompts or {}, spec_dir, here, out)
        inputs = raw["inputs"] if isinstance(raw.get("inputs"), dict) else {}
        outputs = raw["outputs"] if isinstance(raw.get("outputs"), dict) else {}
        _check_ports(cls, "inputs", inputs, here, out)
        _check_ports(cls, "outputs", outputs, here, out)
        params = _check_params(cls, raw.get("params") or {}, here, out)
        if params is None:
            continue
        checked.append(
            CheckedStage(
                index=index,
                raw=raw,
                cls=cls,
                params=params,
                inputs=inputs,
                outputs=outputs,
                backend_name=backend_name if backend else None,
                backend=backend,
                prompt_text=prompt_text,
            )
        )
    return checked


def _check_processes(cls, here: tuple, out: Collector) -> None:
    """A process pool runs row-local operators without a model (see `engine/pool.py`)."""
    if cls.uses_llm:
        out.add(
            here + ("processes",),
            f"`{cls.name}` calls an LLM: its requests already run concurrently, a process pool would "
            "split its rate limits and cache; remove `processes`",
        )
    elif cls.scope == "global":
        out.add(
            here + ("processes",),
            f"`{cls.name}` is a global stage (it sees every batch at once): it cannot run in a process "
            "pool; remove `processes`",
        )


def _check_batch_mode(cls, backend_name: str | None, backend: Any, here: tuple, out: Collector) -> None:
    """`mode: batch` needs a model call to batch and a backend that speaks the Batch API."""
    if not cls.uses_llm:
        out.add(here + ("mode",), f"`mode: batch` needs an LLM operator; `{cls.name}` calls no model")
    elif backend is not None and backend[1].provider != "openai":
        out.add(
            here + ("mode",),
            f"`mode: batch` needs an `openai` backend (the /v1/files + /v1/batches protocol); "
            f"backend `{backend_name}` is `{backend[1].provider}`",
        )


def _reference(name: str | None, key: str, table: dict, here: tuple, out: Collector) -> Any:
    """The entry `name` of a `backends`/`prompts` section, or None (reported if unknown)."""
    if name is None:
        return None
    if name not in table:
        section = key + "s"
        known = ", ".join(f"`{n}`" for n in table) or "none"
        out.add(
            here + (key,),
            f"no {key} named `{name}` under `{section}`{did_you_mean(name, table)} (defined: {known})",
        )
        return None
    return table[name]


def _prompt_text(raw: dict, prompts: dict, spec_dir: Path, here: tuple, out: Collector) -> str | None:
    entry = _reference(raw.get("prompt"), "prompt", prompts, here, out)
    if not isinstance(entry, dict):
        return None
    if "template" in entry:
        return str(entry["template"])
    file = spec_dir / str(entry.get("file", ""))
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else f"unreadable ({exc})"
        out.add(("prompts", raw["prompt"], "file"), f"prompt file `{file}` {reason}")
        return None


def _check_ports(cls: type[Operator], section: str, bindings: dict, here: tuple, out: Collector) -> None:
    declared = getattr(cls, section)
    for logical, column in bindings.items():
        if not isinstance(column, str):
            continue  # the schema check reported it
        if logical not in declared:
            names = ", ".join(f"`{n}`" for n in declared) or "none"
            out.add(
                here + (section, logical),
                f"operator `{cls.name}` has no {section[:-1]} `{logical}`{did_you_mean(logical, declared)} "
                f"(its {section}: {names})",
                key=True,
            )
        elif section == "outputs" and column.startswith(RESERVED_PREFIX):
            out.add(here + (section, logical), f"column names starting with `_` are reserved (`{column}`)")


def _check_params(cls, params: Any, here: tuple, out: Collector):
    if not isinstance(params, dict):
        return None  # the schema check reported it
    return _validate_model(cls.Params, params, here + ("params",), out, "parameter")


def _validate_model(model, values: dict, where: tuple, out: Collector, noun: str):
    """Validate `values` with a pydantic model, reporting each problem at its location."""
    from pydantic import ValidationError

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        fields = list(model.model_fields)
        errors = exc.errors()
        types_at: dict[tuple, set[str]] = {}
        for err in errors:
            types_at.setdefault(_field_path(err["loc"]), set()).add(err["type"])
        seen: set[tuple] = set()
        for err in errors:
            loc = _field_path(err["loc"])
            if loc in seen:
                continue  # one message per value, not one per member of a union type
            seen.add(loc)
            if {"int_parsing", "float_parsing"} <= types_at[loc]:
                err = {**err, "type": "float_parsing"}  # `int | float`: "expected a number"
            path = where + loc
            if err["type"] == "extra_forbidden":
                name = str(loc[-1])
                out.add(path, f"unknown {noun} `{name}`{did_you_mean(name, fields)}", key=True)
            elif err["type"] == "missing":
                out.add(where + loc[:-1], f"missing required {noun} `{'.'.join(map(str, loc))}`")
            else:
                message = _PYDANTIC_TYPES.get(err["type"]) or err["msg"].removeprefix("Value error, ")
                if err["type"] != "value_error":
                    message += f", got {_describe(err.get('input'))}"
                out.add(path if loc else where, message)
        return None


def _field_path(loc: tuple) -> tuple:
    """Pydantic appends union members (`int`, `float`, `function-after[...]`) to an error's
    location; users only care about the value's own path."""
    path = []
    for part in loc:
        if isinstance(part, str) and not part.isidentifier() or part in _UNION_TAGS:
            break
        path.append(part)
    return tuple(path)


_PYDANTIC_TYPES = {
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
}

_UNION_TAGS = {"int", "float", "str", "bool", "bytes", "none", "list", "dict"}


def check_input(data: dict, spec_dir: Path, out: Collector) -> tuple[list[Path], dict[str, str] | None]:
    """The input files and their columns (read from each file's head only)."""
    from dataflow_cli.io.inputs import read_schema
    from dataflow_cli.io.paths import expand_inputs

    source = data.get("input")
    if not isinstance(source, dict) or not isinstance(source.get("path"), str):
        return [], None
    if ("input", "path") in out.unresolved:
        return [], None  # already reported: the path names an unset variable
    paths: list[Path] = []
    try:
        paths = expand_inputs(source["path"], spec_dir)
        return paths, read_schema(paths)
    except DataflowError as exc:
        out.issues.append(_input_issue(exc, paths, out))
        return [], None


def _input_issue(exc: DataflowError, paths: list[Path], out: Collector) -> Issue:
    """A problem inside an input file is the file's, located where the reader found it; any
    other (no file matches the pattern, ...) is the spec's `input.path`."""
    location = exc.location or ""
    for path in paths:
        if location == str(path) or location.startswith(f"{path}:"):
            # Shown as relative to where the user is, like the spec file itself.
            shown = os.path.relpath(path) + location[len(str(path)) :]
            return Issue(shown, "input.path", exc.reason + (f" ({exc.hint})" if exc.hint else ""))
    message = exc.reason
    if location and location not in exc.reason:
        message = f"{location}: {message}"
    return Issue(out.doc.locate(("input", "path")), "input.path", message)


def check_output(data: dict, spec_dir: Path, input_paths: list[Path], out: Collector) -> tuple[Path, Path]:
    from dataflow_cli.io.paths import default_rejects_path, format_for

    target = data.get("output")
    if not isinstance(target, dict) or not isinstance(target.get("path"), str):
        return Path(), Path()
    output = (spec_dir / target["path"]).resolve()
    rejects = (
        (spec_dir / target["rejects"]).resolve()
        if isinstance(target.get("rejects"), str)
        else default_rejects_path(output)
    )
    for key in ("path", "rejects"):
        if isinstance(target.get(key), str):
            try:
                format_for(Path(target[key]))
            except SpecError as exc:
                out.add(("output", key), exc.reason)
    resolved_inputs = {p.resolve() for p in input_paths}
    if output in resolved_inputs:
        out.add(("output", "path"), f"output `{target['path']}` is also an input file; write somewhere else")
    if rejects == output:
        out.add(("output", "rejects"), "rejects file must differ from the output file")
    return output, rejects


def check_column_flow(stages: list[Stage], input_schema: dict[str, str], out: Collector) -> None:
    schema = dict(input_schema)
    origin = {column: "the input" for column in schema}
    for stage in stages:
        op = stage.operator
        here = ("stages", stage.index)
        required = op.required_columns()
        template_vars: set[str] = set()
        if op.uses_llm:
            from dataflow_cli.llm.operator import LLMOperator

            if isinstance(op, LLMOperator):
                template_vars = set(op.template_columns())
        for column in required:
            if isinstance(column, str) and column not in schema:  # non-strings: schema errors
                logical = next((k for k, v in stage.inputs.items() if v == column), None)
                what = f"column `{column}`"
                path: PathKey
                if logical in (stage.inputs or {}):
                    path = here + ("inputs", logical)
                elif column in template_vars:
                    path = here + (("prompt",) if stage.prompt_text is not None else ("params", "template"))
                    what = f"prompt variable `{column}`"
                else:
                    path = here + ("op",)
                available = ", ".join(f"`{c}`" for c in schema if not c.startswith("_")) or "none"
                out.add(
                    path,
                    f"{what} is not in the input or produced by an earlier stage"
                    f"{did_you_mean(column, schema)} (available: {available})",
                )
        for column in op.written_columns():
            if column in schema and not (stage.kind == "refine" and column in required):
                out.add(
                    here,
                    f"stage `{stage.name}` would overwrite column `{column}` from {origin[column]}; "
                    f"bind the output to a new column (`outputs: {{...: new_name}}`) or use a refine stage",
                )
        after = op.transform_schema(schema)
        check_expectations(stage, after, out)
        for column in after:
            origin.setdefault(column, f"stage `{stage.name}`")
        schema = after
