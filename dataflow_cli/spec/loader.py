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
    text: str = ""  # the YAML source, to point inside a string value (at a `${VAR}`)
    scalar_spans: dict[PathKey, tuple[int, int]] = field(default_factory=dict)  # strings with `${`

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

    def locate_collection(self, path: PathKey) -> str:
        """Where a mapping or list is given: its key when it starts on a later line (a block
        collection begins at its first item, which says nothing about the collection)."""
        path = tuple(path)
        value, key = self.value_locations.get(path), self.key_locations.get(path)
        if value is None or key is None:
            return self.locate(path)
        if _line(value) != _line(key):
            return key
        return value

    def locate_text(self, path: PathKey, needle: str, occurrence: int = 0) -> str:
        """Location of the `occurrence`-th `needle` inside the string at `path` as written in the
        source (after any quote, across lines); the value's own location when it is not found
        there (an escape sequence wrote it, or `--set` replaced the value)."""
        span = self.scalar_spans.get(tuple(path))
        if span is not None:
            position = span[0] - 1
            for _ in range(occurrence + 1):
                position = self.text.find(needle, position + 1, span[1])
                if position < 0:
                    break
            else:
                line = self.text.count("\n", 0, position) + 1
                column = position - (self.text.rfind("\n", 0, position) + 1) + 1
                return f"{self.file}:{line}:{column}"
        return self.locate(path)


def _line(location: str) -> str:
    parts = location.rsplit(":", 2)
    return parts[1] if len(parts) == 3 else ""


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
    doc = Document(data=None, file=display, text=text)
    try:
        node = _compose(text)
        if node is not None:
            doc.data = _Builder(doc).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}:{mark.column + 1}" if mark else display
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", location=where, hint="fix the YAML syntax") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", location=display) from None
    except RecursionError:
        raise SpecError(
            "the spec nests too deeply", location=display, hint="a spec needs only a few levels of nesting"
        ) from None
    if node is None:
        raise SpecError(
            "spec file is empty", location=display, hint="run `dataflow init` for a starting point"
        )
    return doc


def _compose(text: str) -> yaml.Node | None:
    """The node tree, from libyaml when it is there (20x faster than PyYAML's own parser) and the
    spec uses no aliases; otherwise from `_Loader`, which locates aliases and measures what they
    expand to, and whose error messages are the ones the golden tests show."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            node = yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
        else:
            if node is None or not _shares_nodes(node):
                return node
    return yaml.compose(text, Loader=_Loader)


def _shares_nodes(root: yaml.Node) -> bool:
    """Whether a node appears twice in the tree (what an alias makes), visiting each node once."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


# Anchors and aliases let a spec share a few settings (`params: *common`, `<<: *defaults`). Each
# alias repeats its anchor's whole subtree, and nested aliases multiply: a 1 kB file can stand for
# billions of values (the "billion laughs" attack). Their expansion is measured before anything is
# built and refused past this budget, far above what sharing settings needs.
MAX_ALIAS_VALUES = 10_000


class _Alias(yaml.Node):
    """Where an alias (`*name`) was used, and the node it repeats.

    PyYAML's composer returns the anchored node itself for every alias, which loses the alias's
    own position and makes the tree a graph; this wrapper keeps both visible to the builder."""

    id = "alias"

    def __init__(self, target: yaml.Node, anchor: str, start_mark: yaml.Mark, end_mark: yaml.Mark):
        super().__init__(target.tag, target, start_mark, end_mark)
        self.target = target
        self.anchor = anchor


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = super().compose_node(parent, index)
            return _Alias(target, event.anchor, event.start_mark, event.end_mark)
        return super().compose_node(parent, index)


def _loc(doc: Document, node: yaml.Node) -> str:
    return f"{doc.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Builder:
    """Turns the node tree into plain values, recording every value's location."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.constructor = yaml.SafeLoader("")  # only turns scalar nodes into typed values
        self.sizes: dict[int, int] = {}  # id(node) -> values it expands to, aliases included
        self.open: set[int] = set()  # nodes being measured: meeting one again means a cycle
        self.alias_values = 0

    def build(self, node: yaml.Node, path: PathKey, *, in_alias: bool = False) -> Any:
        doc = self.doc
        here = doc.value_locations[path] = _loc(doc, node)  # an alias is located where it is used
        if isinstance(node, _Alias):
            if not in_alias:  # values of nested aliases are part of the outer alias's size
                self._charge(node)
            node = node.target
            in_alias = True
        if isinstance(node, yaml.MappingNode):
            mapping = self._mapping(node, path, in_alias)
            doc.value_locations[path] = here  # merged mappings were built at this path too
            return mapping
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), in_alias=in_alias) for i, item in enumerate(node.value)]
        value = self.constructor.construct_object(node)
        if isinstance(value, str) and "${" in value:
            doc.scalar_spans[path] = (node.start_mark.index, node.end_mark.index)
        return value

    def _mapping(self, node: yaml.MappingNode, path: PathKey, in_alias: bool) -> dict[Any, Any]:
        doc = self.doc
        out: dict[Any, Any] = {}
        explicit: set[str] = set()
        merges = [value for key, value in node.value if key.tag == _MERGE_TAG]
        # `<<: *defaults` (or `<<: [*a, *b]`) fills in the keys the mapping does not set itself,
        # earlier sources winning, as YAML's merge-key convention defines. Sources are built
        # first, last to first, so the keys written out below override them and their locations.
        for merge in reversed(merges):
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in reversed(sources):
                merged = self.build(source, path, in_alias=in_alias)
                if not isinstance(merged, dict):
                    raise SpecError(
                        "`<<` merges only mappings (e.g. `<<: *defaults`)", location=_loc(doc, source)
                    )
                out.update(merged)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node)
            if key in explicit:
                raise SpecError(
                    f"duplicate key `{key}`",
                    location=_loc(doc, key_node),
                    hint=f"`{key}` is already set at {doc.key_locations[path + (key,)]}; keep one",
                )
            explicit.add(key)
            doc.key_locations[path + (key,)] = _loc(doc, key_node)
            out[key] = self.build(value_node, path + (key,), in_alias=in_alias)
        return out

    def _key(self, key_node: yaml.Node) -> str:
        target = key_node.target if isinstance(key_node, _Alias) else key_node
        key = self.constructor.construct_object(target) if isinstance(target, yaml.ScalarNode) else None
        if not isinstance(key, (str, int, float, bool)):
            raise SpecError("mapping keys must be plain scalars", location=_loc(self.doc, key_node))
        return key if isinstance(key, str) else str(key)

    def _charge(self, alias: _Alias) -> None:
        size = self._size(alias.target, alias)
        self.alias_values += size
        if self.alias_values > MAX_ALIAS_VALUES:
            raise SpecError(
                f"YAML aliases expand this spec to more than {MAX_ALIAS_VALUES:,} values "
                f"(`*{alias.anchor}` here repeats {size:,})",
                location=_loc(self.doc, alias),
                hint="anchors and aliases are for sharing a few settings (e.g. `params: *common`); "
                "write large repeated blocks out",
            )

    def _size(self, node: yaml.Node, alias: _Alias) -> int:
        """Values `node` stands for once every alias in it is expanded; memoized per node, so
        measuring a bomb costs as much as its text, not its expansion."""
        if isinstance(node, _Alias):
            return self._size(node.target, node)
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.open:
            raise SpecError(
                f"YAML alias `*{alias.anchor}` refers to a node that contains it",
                location=_loc(self.doc, alias),
                hint="an alias cannot repeat the mapping or list it is part of",
            )
        self.open.add(key)
        size = 1
        if isinstance(node, yaml.MappingNode):
            size += sum(self._size(value, alias) for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size += sum(self._size(item, alias) for item in node.value)
        self.open.discard(key)
        self.sizes[key] = size
        return size


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_NAME_AFTER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(doc: Document, environ: dict[str, str] | None = None) -> list[tuple[str, str, str, PathKey]]:
    """Replace `${VAR}` / `${VAR:-default}` in every string; `$$` is a literal `$`.

    Returns problems as (location, printable path, message, path) instead of raising, so they
    are reported together with every other spec error.
    """
    env = os.environ if environ is None else environ
    problems: list[tuple[str, str, str, PathKey]] = []

    def substitute(value: str, path: PathKey) -> str:
        seen: dict[str, int] = {}

        def count(needle: str) -> int:
            seen[needle] = seen.get(needle, -1) + 1
            return seen[needle]

        def one(match: re.Match) -> str:
            if match.group(0) == "$$":
                # `$${X}` holds the text `${X` too: count it, so an unset `${X}` after it is
                # located at its own occurrence in the source.
                escaped = _NAME_AFTER.match(value, match.end())
                if escaped:
                    count("${" + escaped.group(1))
                return "$"
            name, default = match.group(1), match.group(2)
            needle = "${" + name
            occurrence = count(needle)
            if name in env:
                return env[name]
            if default is not None:
                return default
            where = doc.locate_text(path, needle, occurrence)
            problems.append((where, format_path(path), f"environment variable `{name}` is not set", path))
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
    # Locations recorded under the replaced value describe the file, not this value.
    for table in (doc.value_locations, doc.key_locations, doc.scalar_spans):
        for stale in [p for p in table if p[: len(path)] == path]:
            del table[stale]
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
