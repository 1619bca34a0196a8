"""Validate a spec before any data is read or any model is called.

Every problem is collected and reported at once, sorted by location. Checks, in order:
structure (JSON Schema), stage names, operator/backend/prompt references, operator params,
and the column flow (each stage's columns exist in the input header or come from an earlier
stage; no stage silently overwrites a column).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dataflow_cli.errors import DataflowError, SpecError, did_you_mean
from dataflow_cli.llm.backends.base import config_fields
from dataflow_cli.spec.loader import Document, apply_override, format_path, interpolate, load_document
from dataflow_cli.spec.model import DEFAULT_BATCH_SIZE, Issue, Spec, SpecErrors, Stage
from dataflow_cli.spec.schema import pipeline_schema

RESERVED_PREFIX = "_"  # _id, _stage, _reason, ... belong to the engine


class _Collector:
    def __init__(self, doc: Document):
        self.doc = doc
        self.issues: list[Issue] = []
        self.unresolved: set[tuple] = set()  # paths whose ${VAR} could not be interpolated

    def add(self, path: tuple, message: str, *, key: bool = False) -> None:
        self.issues.append(Issue(self.doc.locate(path, key=key), format_path(path), message))


def load_spec(path: Path, overrides: list[str] | tuple[str, ...] = (), *, check_columns: bool = True) -> Spec:
    """Load, interpolate, override and validate a spec; raise `SpecErrors` listing every problem."""
    doc = load_document(path)
    for assignment in overrides:
        apply_override(doc, assignment)
    out = _Collector(doc)
    as_written = copy.deepcopy(doc.data)  # before ${VAR}: secrets must not reach the run dir
    for location, where, message, unresolved in interpolate(doc):
        out.issues.append(Issue(location, where, message))
        out.unresolved.add(unresolved)
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError(
            "the spec must be a mapping of keys (version, name, input, ...)", location=doc.locate(())
        )

    _check_structure(data, out)
    spec_dir = path.resolve().parent
    backends = _check_backends(data, out)
    stages, complete = _check_stages(data, spec_dir, backends, out)
    input_paths, input_schema = _check_input(data, spec_dir, out)
    output_path, rejects_path = _check_output(data, spec_dir, input_paths, out)
    if check_columns and input_schema is not None:
        # Stages after one that could not be built are not checked: their columns would
        # depend on what the broken stage produces.
        checkable = [stage for i, stage in enumerate(stages) if stage.index == i]
        _check_column_flow(checkable, input_schema, out)
    if out.issues:
        raise SpecErrors(out.issues, doc.file)

    source = data["input"]
    return Spec(
        file=path,
        name=data["name"],
        input_pattern=source["path"],
        input_paths=input_paths,
        output_path=output_path,
        rejects_path=rejects_path,
        batch_size=source.get("batch_size", DEFAULT_BATCH_SIZE),
        limit=source.get("limit"),
        stages=stages,
        input_schema=input_schema or {},
        resolved=as_written,
        backends={name: value for name, value in backends.items() if value is not None},
    )


def _check_structure(data: dict, out: _Collector) -> None:
    from jsonschema import Draft202012Validator

    schema = pipeline_schema()
    for error in Draft202012Validator(schema).iter_errors(data):
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


def _report_schema_error(error, out: _Collector) -> None:
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
        names = [_TYPE_NAMES.get(t, t) for t in (expected if isinstance(expected, list) else [expected])]
        out.add(path, f"expected {' or '.join(names)}, got {_describe(error.instance)}")
        return
    if validator == "oneOf" and path[:1] == ("prompts",):
        out.add(path, "a prompt needs exactly one of `file` or `template`")
        return
    if validator == "const":
        out.add(path, f"must be `{error.validator_value}`, got {_describe(error.instance)}")
        return
    if validator == "pattern":
        out.add(
            path,
            f"`{error.instance}` may use only letters, digits, `_`, `.` and `-`, starting with a letter or digit",
        )
        return
    if validator == "minItems":
        out.add(
            path, f"needs at least {error.validator_value} item{'s' if error.validator_value != 1 else ''}"
        )
        return
    out.add(path, error.message)


def _check_backends(data: dict, out: _Collector) -> dict[str, Any]:
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


def _check_stages(
    data: dict, spec_dir: Path, backends: dict[str, Any], out: _Collector
) -> list[Stage] | None:
    from dataflow_cli import registry

    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list):
        return [], False
    prompts = data.get("prompts") if isinstance(data.get("prompts"), dict) else {}
    seen_names: dict[str, int] = {}
    stages: list[Stage] = []
    ok = True
    for index, raw in enumerate(raw_stages):
        here = ("stages", index)
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("name"), str)
            or not isinstance(raw.get("op"), str)
        ):
            ok = False  # already reported by the schema check
            continue
        name = raw["name"]
        if name in seen_names:
            first = out.doc.locate(("stages", seen_names[name], "name"))
            out.add(here + ("name",), f"duplicate stage name `{name}` (first used at {first})")
            ok = False
        seen_names.setdefault(name, index)

        try:
            cls = registry.load(raw["op"])
        except DataflowError as exc:
            hint = " (see `dataflow operators list`)" if "unknown operator" in exc.reason else ""
            out.add(here + ("op",), exc.reason + hint)
            ok = False
            continue

        backend_name = raw.get("backend") or ("default" if cls.uses_llm else None)
        if cls.uses_llm and raw.get("backend") is None and "default" not in backends:
            known = ", ".join(f"`{n}`" for n in backends) or "none"
            out.add(
                here + ("op",),
                f"`{raw['op']}` calls an LLM: set `backend:` on the stage or define a backend named "
                f"`default` (defined: {known}); e.g. `backends: {{default: {{provider: local}}}}`",
            )
            ok = False
            continue
        backend_entry = _reference(backend_name, "backend", backends, here, out)
        prompt_text = _prompt_text(raw, prompts, spec_dir, here, out)
        inputs = raw.get("inputs") if isinstance(raw.get("inputs"), dict) else {}
        outputs = raw.get("outputs") if isinstance(raw.get("outputs"), dict) else {}
        if not _check_ports(cls, "inputs", inputs, here, out) or not _check_ports(
            cls, "outputs", outputs, here, out
        ):
            ok = False
        params = _check_params(cls, raw.get("params") or {}, here, out)
        if params is None:
            ok = False
            continue
        try:
            operator = cls(params, inputs=inputs, outputs=outputs)
            operator.prompt = prompt_text
            if cls.uses_llm:
                if not operator.template_text() and not getattr(params, "messages_column", None):
                    out.add(
                        here + ("op",),
                        f"`{raw['op']}` needs a prompt: set `prompt:`, `params.template` or `params.messages_column`",
                    )
                    ok = False
                    continue
                operator.template_columns()  # a template syntax error surfaces here
        except DataflowError as exc:
            where = here + ("prompt",) if "template" in exc.reason and raw.get("prompt") else here + ("op",)
            out.add(where, exc.reason + (f" ({exc.hint})" if exc.hint else ""))
            ok = False
            continue
        stages.append(
            Stage(
                index=index,
                name=name,
                op_name=raw["op"],
                operator=operator,
                params=params.model_dump(mode="json"),
                inputs=dict(operator.input_columns),
                outputs=dict(operator.output_columns),
                backend=config_fields(backend_entry[1]) if backend_entry else None,
                backend_name=backend_name if backend_entry else None,
                prompt_text=prompt_text,
                on_error=raw.get("on_error", "reject"),
                max_error_rate=raw.get("max_error_rate", 0.2),
            )
        )
    return stages, ok


def _reference(name: str | None, key: str, table: dict, here: tuple, out: _Collector) -> Any:
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


def _prompt_text(raw: dict, prompts: dict, spec_dir: Path, here: tuple, out: _Collector) -> str | None:
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


def _check_ports(cls, section: str, bindings: dict, here: tuple, out: _Collector) -> bool:
    declared = getattr(cls, section)
    ok = True
    for logical, column in bindings.items():
        if not isinstance(column, str):
            ok = False  # the schema check reported it
        elif logical not in declared:
            names = ", ".join(f"`{n}`" for n in declared) or "none"
            out.add(
                here + (section, logical),
                f"operator `{cls.name}` has no {section[:-1]} `{logical}`{did_you_mean(logical, declared)} "
                f"(its {section}: {names})",
                key=True,
            )
            ok = False
        elif section == "outputs" and str(column).startswith(RESERVED_PREFIX):
            out.add(here + (section, logical), f"column names starting with `_` are reserved (`{column}`)")
            ok = False
    return ok


def _check_params(cls, params: Any, here: tuple, out: _Collector):
    if not isinstance(params, dict):
        return None  # the schema check reported it
    return _validate_model(cls.Params, params, here + ("params",), out, "parameter")


def _validate_model(model, values: dict, where: tuple, out: _Collector, noun: str):
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


def _check_input(data: dict, spec_dir: Path, out: _Collector) -> tuple[list[Path], dict[str, str] | None]:
    from dataflow_cli.io.readers import expand_inputs, read_schema

    source = data.get("input")
    if not isinstance(source, dict) or not isinstance(source.get("path"), str):
        return [], None
    if ("input", "path") in out.unresolved:
        return [], None  # already reported: the path names an unset variable
    try:
        paths = expand_inputs(source["path"], spec_dir)
        return paths, read_schema(paths)
    except DataflowError as exc:
        message = (
            exc.reason if not exc.location or exc.location in exc.reason else f"{exc.location}: {exc.reason}"
        )
        out.add(("input", "path"), message)
        return [], None


def _check_output(data: dict, spec_dir: Path, input_paths: list[Path], out: _Collector) -> tuple[Path, Path]:
    from dataflow_cli.io.readers import format_for

    target = data.get("output")
    if not isinstance(target, dict) or not isinstance(target.get("path"), str):
        return Path(), Path()
    output = (spec_dir / target["path"]).resolve()
    rejects = (
        (spec_dir / target["rejects"]).resolve()
        if isinstance(target.get("rejects"), str)
        else output.with_name(f"{output.stem}.rejects{output.suffix}")
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


def _check_column_flow(stages: list[Stage], input_schema: dict[str, str], out: _Collector) -> None:
    schema = dict(input_schema)
    origin = {column: "the input" for column in schema}
    for stage in stages:
        op = stage.operator
        here = ("stages", stage.index)
        required = op.required_columns()
        template_vars = set(op.template_columns()) if op.uses_llm else set()
        for column in required:
            if isinstance(column, str) and column not in schema:  # non-strings: schema errors
                logical = next((k for k, v in stage.inputs.items() if v == column), None)
                what = f"column `{column}`"
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
        for column in after:
            origin.setdefault(column, f"stage `{stage.name}`")
        schema = after
