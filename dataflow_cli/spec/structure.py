"""Check a spec's structure against the pipeline JSON Schema, without importing jsonschema
when the spec is valid.

Importing jsonschema takes about as long as everything else `dataflow validate` does for a
valid spec, so a valid document is recognized by `conforms`, an exact check for the few
keywords the pipeline schema uses. Only when it says "invalid", or meets a keyword it does
not know, does jsonschema run, to produce the error list. A test holds `conforms` to
jsonschema's verdict on every fixture spec and on mutations of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

# Keywords that never change whether a document is valid.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples", "deprecated"}
)


class Unsupported(Exception):
    """The schema uses a keyword `conforms` does not implement: let jsonschema decide."""


def structure_errors(data: Any, schema: dict[str, Any]) -> Iterable[Any]:
    """jsonschema's errors for `data` (none when it conforms), in jsonschema's own form."""
    try:
        if conforms(data, schema, schema):
            return []
    except Unsupported:
        pass
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema).iter_errors(data)


def conforms(value: Any, schema: Any, root: dict[str, Any]) -> bool:
    """Whether `value` is valid against `schema` (JSON Schema 2020-12, a subset of keywords)."""
    if schema is True or schema is False:
        return schema
    for keyword, expected in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(keyword)
        if check is None:
            raise Unsupported(keyword)
        if not check(value, expected, schema, root):
            return False
    return True


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    raise Unsupported(f"type {name}")


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: `true` is not `1`, `1` is `1.0`, containers compare member by member."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_equal(a, b) for a, b in zip(left, right, strict=True))
    if _number(left) and _number(right):
        return bool(left == right)
    return type(left) is type(right) and not isinstance(left, (dict, list)) and left == right


def _number(value: Any) -> bool:
    return _is_type(value, "number")


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#/"):
        raise Unsupported(f"$ref {ref}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def _properties(value: Any, properties: dict, schema: dict, root: dict) -> bool:
    if not isinstance(value, dict):
        return True
    return all(conforms(value[k], sub, root) for k, sub in properties.items() if k in value)


def _additional(value: Any, additional: Any, schema: dict, root: dict) -> bool:
    if not isinstance(value, dict):
        return True
    if "patternProperties" in schema:
        raise Unsupported("patternProperties")
    known = schema.get("properties", {})
    return all(conforms(v, additional, root) for k, v in value.items() if k not in known)


_KEYWORDS = {
    "type": lambda v, e, s, r: any(_is_type(v, t) for t in (e if isinstance(e, list) else [e])),
    "const": lambda v, e, s, r: _equal(v, e),
    "enum": lambda v, e, s, r: any(_equal(v, option) for option in e),
    "properties": _properties,
    "additionalProperties": _additional,
    "required": lambda v, e, s, r: not isinstance(v, dict) or all(k in v for k in e),
    "items": lambda v, e, s, r: not isinstance(v, list) or all(conforms(item, e, r) for item in v),
    "minItems": lambda v, e, s, r: not isinstance(v, list) or len(v) >= e,
    "minLength": lambda v, e, s, r: not isinstance(v, str) or len(v) >= e,
    "pattern": lambda v, e, s, r: not isinstance(v, str) or _compiled(e).search(v) is not None,
    "minimum": lambda v, e, s, r: not _number(v) or v >= e,
    "maximum": lambda v, e, s, r: not _number(v) or v <= e,
    "oneOf": lambda v, e, s, r: sum(conforms(v, sub, r) for sub in e) == 1,
    "allOf": lambda v, e, s, r: all(conforms(v, sub, r) for sub in e),
    "$ref": lambda v, e, s, r: conforms(v, _resolve(e, r), r),
}
