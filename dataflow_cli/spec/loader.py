"""Load a YAML spec while remembering where every value came from.

Errors must point at `file:line:col`, so instead of `yaml.safe_load` we compose the node tree
and build plain Python values next to a map from each value's path to its location. `${VAR}`
interpolation and `--set` overrides are applied here too, keeping locations accurate.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataflow_cli.errors import SpecError

PathKey = tuple  # e.g. ("stages", 2, "params", "min")


@dataclass
class Document:
    """A loaded spec: plain data plus the location of every key and value."""

    data: Any
    file: str
    value_locations: dict[PathKey, str] = field(default_factory=dict)
    key_locations: dict[PathKey, str] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> str:
        """Location of the value at `path` (or of its key), else of the nearest ancestor."""
        if key and path in self.key_locations:
            return self.key_locations[path]
        path = tuple(path)
        while path:
            if path in self.value_locations:
                return self.value_locations[path]
            path = path[:-1]
        return self.value_locations.get((), f"{self.file}:1:1")


def format_path(path: PathKey) -> str:
    """("stages", 2, "params", "min") -> "stages[2].params.min"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def load_document(path: Path) -> Document:
    display = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"spec file `{display}` not found", hint="check the path") from None
    except OSError as exc:
        raise SpecError(f"cannot read spec file `{display}`: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            "spec file is not valid UTF-8", location=f"{display}:{line}", hint="save the file as UTF-8"
        ) from None
    return parse_document(text, display)


def parse_document(text: str, display: str) -> Document:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}:{mark.column + 1}" if mark else display
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", location=where, hint="fix the YAML syntax") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", location=display) from None
    if node is None:
        raise SpecError(
            "spec file is empty", location=display, hint="run `dataflow init` for a starting point"
        )
    doc = Document(data=None, file=display)
    doc.data = _build(node, (), doc)
    return doc


def _loc(doc: Document, node: yaml.Node) -> str:
    return f"{doc.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


_constructor = yaml.SafeLoader("")  # used only to turn scalar nodes into typed Python values


def _build(node: yaml.Node, path: PathKey, doc: Document) -> Any:
    doc.value_locations[path] = _loc(doc, node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _constructor.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise SpecError("mapping keys must be plain scalars", location=_loc(doc, key_node))
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                raise SpecError(
                    f"duplicate key `{key}`",
                    location=_loc(doc, key_node),
                    hint=f"`{key}` is already set at {doc.key_locations[path + (key,)]}; keep one",
                )
            doc.key_locations[path + (key,)] = _loc(doc, key_node)
            out[key] = _build(value_node, path + (key,), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), doc) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def interpolate(doc: Document, environ: dict[str, str] | None = None) -> list[tuple[str, str, str, PathKey]]:
    """Replace `${VAR}` / `${VAR:-default}` in every string; `$$` is a literal `$`.

    Returns problems as (location, printable path, message, path) instead of raising, so they
    are reported together with every other spec error.
    """
    env = os.environ if environ is None else environ
    problems: list[tuple[str, str, str, PathKey]] = []

    def substitute(value: str, path: PathKey) -> str:
        def one(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                (doc.locate(path), format_path(path), f"environment variable `{name}` is not set", path)
            )
            return match.group(0)

        return _VAR.sub(one, value)

    def walk(value: Any, path: PathKey) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            return substitute(value, path)
        return value

    doc.data = walk(doc.data, ())
    return problems


def apply_override(doc: Document, assignment: str) -> None:
    """Apply one `--set dotted.path=value`; the value is parsed as YAML (`3` is an int).

    Under `stages`, a segment may be a stage name or an index.
    """
    dotted, sep, raw_value = assignment.partition("=")
    where = f"--set {dotted}"
    if not sep or not dotted.strip():
        raise SpecError(
            f"`--set {assignment}` is not of the form `path=value`", hint="e.g. --set input.limit=100"
        )
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    parts = dotted.strip().split(".")
    if not isinstance(doc.data, dict):
        raise SpecError("cannot apply --set to a spec that is not a mapping", location=where)
    container: Any = doc.data
    path: PathKey = ()
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(container, list):
            index = _list_index(container, part, path, where)
            path += (index,)
            if last:
                container[index] = value
            else:
                container = container[index]
            continue
        if not isinstance(container, dict):
            raise SpecError(f"`{format_path(path)}` is not a mapping, cannot set `{part}`", location=where)
        path += (part,)
        if last:
            container[part] = value
        else:
            container = container.setdefault(part, {})
    doc.value_locations[path] = where
    doc.key_locations[path] = where


def _list_index(items: list, part: str, path: PathKey, where: str) -> int:
    if part.isdigit() and int(part) < len(items):
        return int(part)
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    from dataflow_cli.errors import did_you_mean

    raise SpecError(
        f"no entry named `{part}` under `{format_path(path)}`{did_you_mean(part, [n for n in names if n])}",
        location=where,
    )
