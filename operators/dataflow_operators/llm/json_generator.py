"""Generate structured columns from an LLM answer that must match a JSON schema."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator

from dataflow_cli.errors import DataflowError, did_you_mean
from dataflow_cli.llm.engine import strip_code_fence
from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import RESERVED_PREFIX, Generator, Port

_ARROW_TYPES = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool"}


JSON_TEXT = "json"  # a property stored as its JSON text in a string column


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def property_kind(schema: Any) -> str:
    """How a top-level property is stored: an Arrow type name (string, int64, float64, bool) for
    a property of one scalar JSON type (null allowed besides), else `json` (JSON text)."""
    if not isinstance(schema, dict):
        return JSON_TEXT  # a boolean schema (`true`) allows any value
    kind = schema.get("type")
    if kind is None and ("enum" in schema or "const" in schema):
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        kinds = {_json_type(v) for v in values}
    elif isinstance(kind, str):
        kinds = {kind}
    elif isinstance(kind, list):
        kinds = set(kind)
    else:
        return JSON_TEXT
    kinds.discard("null")
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    if len(kinds) == 1:
        return _ARROW_TYPES.get(next(iter(kinds)), JSON_TEXT)
    return JSON_TEXT


def _column_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == JSON_TEXT:
        return json.dumps(value, ensure_ascii=False)
    if kind == "int64":
        if not -(2**63) <= value < 2**63:
            raise ParseError("integer outside the int64 range")
        return int(value)
    if kind == "float64":
        return float(value)
    return value


class _PropertyPorts(dict):
    """`JsonGenerator.outputs` at class level. Ports are declared per class, but this operator's
    outputs are the top-level properties of its `json_schema` param, known only per stage. This
    mapping holds one placeholder (what `operators show` lists) and claims to contain every name,
    so spec validation accepts `outputs: {<property>: <column>}` bindings; the operator's
    `__init__` then checks the names against the schema and sets per-instance `outputs`."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)


class JsonGenerator(LLMOperator, Generator):
    """Generate several columns at once from one structured (JSON) LLM answer per row.

    The answer must be a JSON object satisfying `json_schema`: the request asks for native
    structured output where the backend has it, and the engine validates every answer, retrying
    invalid ones (the stage's schema retries) before the row goes to rejects with the raw answer
    (reason "llm invalid_output"). Each top-level property becomes a column of the same name;
    rename with `outputs: {property: column}`. A property of one scalar type becomes a string,
    int64, float64 or bool column; any other property (array, object, several types, untyped)
    becomes a string column holding its value as JSON text. A property that is absent or null in
    the answer is null in its column; extra properties are ignored. The template is required
    (there is no default); for backends without native structured output the schema is also
    written into the system message (`schema_in_prompt`). OpenAI-style strict structured output
    needs `additionalProperties: false` and every property listed in `required`.

    Inputs:
        (the template's variables: any columns)
    Outputs:
        <property>: one column per top-level property of `json_schema`.
    Params:
        json_schema: JSON Schema (Draft 2020-12) of the answer: `type: object` with `properties`.
        schema_in_prompt: append the schema to the system message (default true).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "json_generator"
    outputs = _PropertyPorts(
        {
            "<property>": Port(
                "one column per top-level property of `json_schema` (string, int64, float64 or bool; "
                "arrays, objects and mixed types as JSON text)"
            )
        }
    )

    class Params(LLMParams):
        json_schema: dict[str, Any] = Field(
            description="JSON Schema (Draft 2020-12) the answer must satisfy: an object whose top-level "
            "`properties` become the output columns."
        )
        schema_in_prompt: bool = Field(
            True,
            description="Append the JSON Schema to the system message (for backends without native structured output).",
        )

        @field_validator("json_schema")
        @classmethod
        def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                where = "/".join(str(p) for p in exc.absolute_path)
                raise ValueError(
                    f"not a valid JSON Schema (Draft 2020-12){f' at `{where}`' if where else ''}: {exc.message}"
                ) from None
            if schema.get("type") != "object":
                raise ValueError(
                    "the schema must describe an object (`type: object`): its properties become columns"
                )
            properties = schema.get("properties")
            if not isinstance(properties, dict) or not properties:
                raise ValueError(
                    "the schema needs `properties`: each top-level property becomes an output column"
                )
            return schema

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs)
        properties: dict[str, Any] = self.params.json_schema["properties"]
        bindings = dict(outputs or {})
        for name in bindings:
            if name not in properties:
                known = ", ".join(f"`{p}`" for p in properties)
                raise DataflowError(
                    f"`json_schema` has no property `{name}`{did_you_mean(name, properties)} (its properties: {known})",
                    hint="bind outputs by property name: `outputs: {<property>: <column>}`",
                )
        self.kinds = {name: property_kind(sub) for name, sub in properties.items()}
        # Per-instance ports and bindings: the base class's column flow then works unchanged.
        self.outputs = {
            name: Port(f"property `{name}` of the answer", "string" if kind == JSON_TEXT else kind)
            for name, kind in self.kinds.items()
        }
        self.output_columns = {name: bindings.get(name, name) for name in properties}
        seen: dict[str, str] = {}
        for name, column in self.output_columns.items():
            if column.startswith(RESERVED_PREFIX):
                raise DataflowError(
                    f"property `{name}` would become column `{column}`: names starting with `_` are reserved",
                    hint=f"bind it to another column: `outputs: {{{name}: {column.lstrip('_') or 'value'}}}`",
                )
            if column in seen:
                raise DataflowError(
                    f"properties `{seen[column]}` and `{name}` are both bound to column `{column}`"
                )
            seen[column] = name
        self._validator = None

    def transform_schema(self, schema: dict[str, str]) -> dict[str, str]:
        out = dict(schema)
        for name, column in self.output_columns.items():
            out[column] = self.outputs[name].type
        return out

    def written_columns(self) -> list[str]:
        return list(self.output_columns.values())

    def json_schema(self) -> dict[str, Any]:
        return self.params.json_schema

    def build_messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        messages = super().build_messages(row)
        if self.params.schema_in_prompt:
            schema = json.dumps(self.params.json_schema, ensure_ascii=False)
            instruction = f"Answer with a single JSON object that satisfies this JSON Schema:\n{schema}"
            if messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{instruction}"}
            else:
                messages.insert(0, {"role": "system", "content": instruction})
        return messages

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        try:
            value = json.loads(strip_code_fence(text))
        except ValueError:
            raise ParseError("answer is not JSON") from None
        if not isinstance(value, dict):
            raise ParseError("answer is not a JSON object")
        # The engine validated the answer already; checking again keeps `parse` self-contained.
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(self.params.json_schema)
        error = next(iter(self._validator.iter_errors(value)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "answer"
            raise ParseError(f"{where} does not match the schema")
        return {name: _column_value(value.get(name), kind) for name, kind in self.kinds.items()}
