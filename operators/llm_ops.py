"""LLM operators beyond the basics: structured JSON generation, an LLM filter, an LLM rewriter, a
position-debiased pairwise judge, and chat formatting of rows for supervised fine-tuning."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.errors import DataflowError, SpecError, did_you_mean
from dataflow_cli.llm.engine import strip_code_fence
from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.llm.types import LLMError, Request
from dataflow_cli.operator import Batch, Evaluator, Filter, Generator, Partial, Port, Refiner, Verdict
from operators.generic import format_bound
from operators.llm_basic import default_prompt

RESERVED_PREFIX = "_"


def _failure(answer: Any) -> str:
    """Why no usable answer came back: the str `ask` gave (e.g. a null in the prompt) or the
    LLMError's short reason."""
    return answer if isinstance(answer, str) else answer.reason()


class _BoundTemplateInputs:
    """Mixin for LLM operators whose declared inputs are template variables (`{{ text }}`).

    `LLMOperator.required_columns` treats every template variable as a column name, so a stage
    binding `inputs: {text: body}` would be told that column `text` is missing although the
    template's `text` is the bound `body`. Here template variables that are logical input names
    are satisfied by their binding. `template_needs` lists the inputs the template must use.
    """

    template_needs: ClassVar[tuple[str, ...]] = ()

    def template_columns(self) -> list[str]:
        columns = super().template_columns()  # type: ignore[misc]
        missing = [name for name in self.template_needs if name not in columns]
        if missing:
            needed = ", ".join(f"`{{{{ {name} }}}}`" for name in missing)
            raise SpecError(f"the prompt template of `{self.name}` must use {needed}")  # type: ignore[attr-defined]
        return columns

    def required_columns(self) -> list[str]:
        columns = list(self.input_columns.values())  # type: ignore[attr-defined]
        logical = self.input_columns  # type: ignore[attr-defined]
        return columns + [c for c in self.template_columns() if c not in columns and c not in logical]


# json_generator ------------------------------------------------------------------------------

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

    def generate(self, batch: Batch):
        rows, answers = self.ask(batch)
        values, failed, raw = self.parse_answers(rows, [a[0] for a in answers])
        result = {name: [v[name] if v else None for v in values] for name in self.kinds}
        return Partial(result, failed, raw) if any(failed) else result


# prompted_filter -----------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _find_label(text: str, labels: list[str]) -> str:
    """The listed label found earliest in `text` (case-insensitive)."""
    lowered = text.lower()
    found = [(lowered.find(label.lower()), i, label) for i, label in enumerate(labels)]
    found = [f for f in found if f[0] >= 0]
    if not found:
        raise ParseError("no known label in answer")
    return min(found)[2]


class PromptedFilter(LLMOperator, Filter):
    """Keep rows an LLM rates at or above a threshold, or gives one of the kept labels.

    The default template asks for a 1-10 quality rating of `text`. Dropped rows get the reason
    "llm score < 7" (the score given is added in the rejects file: "llm score < 7: got 3") or, in
    label mode, "llm label `bad`". Answers without a valid score or label are rejected with the
    raw answer kept, never kept or dropped silently. The stage writes no column: to keep the
    score for auditing, run `prompted_evaluator` then `range_filter` on its `score` instead (the
    recommended pattern; this operator is the shortcut when the score is not needed).

    Inputs:
        (the template's variables: any columns)
    Outputs:
        (none: rows are kept or dropped)
    Params:
        parse: `number` (first number in the answer) or `label` (first listed label found).
        threshold: lowest score kept (number mode).
        min_score, max_score: valid range in number mode; other numbers are parse errors.
        labels: the allowed labels in label mode.
        keep_labels: the labels whose rows are kept (label mode; a subset of `labels`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "prompted_filter"

    class Params(LLMParams):
        parse: Literal["number", "label"] = Field("number", description="How to read the answer.")
        threshold: float = Field(7, description="Rows scoring at least this are kept (number mode).")
        min_score: float = Field(1, description="Lowest valid score (number mode).")
        max_score: float = Field(10, description="Highest valid score (number mode).")
        labels: list[str] = Field(
            default_factory=list, description="Allowed labels (label mode), matched case-insensitively."
        )
        keep_labels: list[str] = Field(
            default_factory=list, description="Labels whose rows are kept (label mode); others are dropped."
        )

        @model_validator(mode="after")
        def _check(self):
            if self.min_score > self.max_score:
                raise ValueError("`min_score` is greater than `max_score`")
            if self.parse == "label":
                if not self.labels:
                    raise ValueError("`labels` is required when `parse: label`")
                if not self.keep_labels:
                    raise ValueError("`keep_labels` is required when `parse: label`")
                known = {label.lower() for label in self.labels}
                for label in self.keep_labels:
                    if label.lower() not in known:
                        raise ValueError(
                            f"keep label `{label}` is not one of `labels`{did_you_mean(label, self.labels)}"
                        )
            elif not self.min_score <= self.threshold <= self.max_score:
                raise ValueError(
                    f"`threshold` ({format_bound(self.threshold)}) is outside "
                    f"[{format_bound(self.min_score)}, {format_bound(self.max_score)}]"
                )
            return self

    default_template = default_prompt("prompted_filter")

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        """{"keep": bool, "score": float | None, "label": str}: the verdict for one answer."""
        p = self.params
        if p.parse == "label":
            label = _find_label(text, p.labels)
            keep = label.lower() in {k.lower() for k in p.keep_labels}
            return {"keep": keep, "score": None, "label": label}
        match = _NUMBER.search(text)
        if match is None:
            raise ParseError("no number in answer")
        score = float(match.group())
        if not p.min_score <= score <= p.max_score:
            raise ParseError(f"score outside [{p.min_score:g}, {p.max_score:g}]")
        return {"keep": score >= p.threshold, "score": score, "label": match.group()}

    def filter(self, batch: Batch):
        rows, answers = self.ask(batch)
        values, failed, raw = self.parse_answers(rows, [a[0] for a in answers])
        keep: list[bool] = []
        reason: list[str | None] = []
        detail: list[str | None] = []
        below = f"llm score < {format_bound(self.params.threshold)}"
        for value in values:
            if value is None or value["keep"]:  # failed rows: their verdict is ignored
                keep.append(True), reason.append(None), detail.append(None)
            elif value["score"] is None:
                keep.append(False), reason.append(f"llm label `{value['label']}`"), detail.append(None)
            else:
                keep.append(False), reason.append(below), detail.append(f"got {value['label']}")
        verdict = Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))
        return Partial(verdict, failed, raw) if any(failed) else verdict


# prompted_refiner ----------------------------------------------------------------------------


class PromptedRefiner(_BoundTemplateInputs, LLMOperator, Refiner):
    """Rewrite a text column in place with an LLM's answer to a prompt over it.

    The template must use `{{ text }}` (the bound column); the default asks for a clearer,
    corrected rewrite with the same meaning. Rows whose `text` is null, whose request fails, or
    whose answer is empty or only whitespace go to rejects with the reason
    ("empty rewrite" for the latter) and the raw answer, unless `keep_original_on_empty` keeps
    the original text for empty answers.

    Inputs:
        text: the column to rewrite (replaced by the rewrite).
    Outputs:
        (none: `text` is rewritten in place)
    Params:
        strip: strip surrounding whitespace from answers.
        keep_original_on_empty: keep the original text when the answer is empty (default: reject).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "prompted_refiner"
    inputs = {"text": Port("the text to rewrite; replaced by the model's rewrite")}
    template_needs = ("text",)

    class Params(LLMParams):
        strip: bool = Field(True, description="Strip surrounding whitespace from answers.")
        keep_original_on_empty: bool = Field(
            False,
            description="Keep the original text when the answer is empty, instead of rejecting the row.",
        )

    default_template = default_prompt("prompted_refiner")

    def refine(self, batch: Batch):
        rows, answers = self.ask(batch)
        texts: list[str | None] = []
        failed: list[str | None] = []
        raw: list[str | None] = []
        for row, per_row in zip(rows, answers, strict=True):
            answer = per_row[0]
            original = row["text"]
            if isinstance(answer, (str, LLMError)):
                texts.append(original), failed.append(_failure(answer))
                raw.append(answer.raw if isinstance(answer, LLMError) else None)
                continue
            text = answer.text.strip() if self.params.strip else answer.text
            if text.strip():
                texts.append(text), failed.append(None), raw.append(None)
            elif self.params.keep_original_on_empty:
                texts.append(original), failed.append(None), raw.append(None)
            else:
                texts.append(original), failed.append("empty rewrite"), raw.append(answer.text)
        kind = batch.column("text").type
        values = pa.array(texts, kind if pa.types.is_large_string(kind) else pa.string())
        result = {"text": values}
        return Partial(result, failed, raw) if any(failed) else result


# pairwise_judge_evaluator --------------------------------------------------------------------

_VERDICT_LINE = re.compile(
    r"^[^a-z0-9\n]*(?:the\s+)?(?:final\s+)?(?:winner|verdict)\b[^a-z0-9\n]*(?:is\s+)?"
    r"(?:(?:a\s+)?(tie|draw)|(?:(?:response|assistant|answer|output)\b)?[^a-z0-9\n]*\b([ab]))\b",
    re.IGNORECASE | re.MULTILINE,
)
_VERDICT_BARE = re.compile(
    r"^[^a-z0-9]*(?:(?:response|assistant|answer|output)\s+)?(a|b|tie|draw)[^a-z0-9]*$", re.I
)
_UNSWAP = {"a": "b", "b": "a", "tie": "tie"}
A_WINS = {"a": 1.0, "b": 0.0, "tie": 0.5}


def parse_verdict(text: str) -> str:
    """ "a", "b" or "tie" from a judge's answer: its last `Winner: A|B|tie` line (also `Winner is
    Response B`, `**Winner:** [[A]]`, `Final verdict: tie`), or an answer that is only a verdict."""
    matches = list(_VERDICT_LINE.finditer(text))
    if matches:
        tie, letter = matches[-1].groups()
        return "tie" if tie else letter.lower()
    bare = _VERDICT_BARE.match(text.strip())
    if bare:
        word = bare.group(1).lower()
        return "tie" if word in ("tie", "draw") else word
    raise ParseError("no `Winner: A|B|tie` line")


class PairwiseJudgeEvaluator(_BoundTemplateInputs, LLMOperator, Evaluator):
    """Judge which of two responses is better, asking twice with the order swapped.

    LLM judges favour a position, so every row is judged twice: with `response_a` shown first,
    then with `response_b` shown first. The second verdict is mapped back to the original order;
    when the two verdicts agree that is the preference, otherwise (or when the judge says so) it
    is a tie. The default template asks for a short explanation ending in a line
    `Winner: A`, `Winner: B` or `Winner: tie`; a custom template must use `{{ response_a }}` and
    `{{ response_b }}` (the response shown first and second) and may use `{{ question }}`.
    `question` is optional: when the stage does not bind it and there is no `question` column,
    or the value is null, the template gets "" (test it with `{% if question %}`). A row whose
    either request or verdict fails goes to rejects with the reason and that raw answer.

    Inputs:
        question: the question both responses answer (optional).
        response_a: the first response.
        response_b: the second response.
    Outputs:
        preference: "a", "b" or "tie".
        a_wins: 1.0 when `response_a` is preferred, 0.0 when `response_b` is, 0.5 for a tie.
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "pairwise_judge_evaluator"
    inputs = {
        "question": Port(
            "the question both responses answer (optional: omitted from the prompt when absent)"
        ),
        "response_a": Port("the first response"),
        "response_b": Port("the second response"),
    }
    outputs = {
        "preference": Port('"a", "b" or "tie"'),
        "a_wins": Port("1.0 if response_a wins, 0.0 if response_b wins, 0.5 for a tie", "float64"),
    }
    template_needs = ("response_a", "response_b")

    default_template = default_prompt("pairwise_judge_evaluator")

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.question_bound = "question" in (inputs or {})

    def required_columns(self) -> list[str]:
        columns = super().required_columns()
        if not self.question_bound:  # optional: used when the batch has it
            columns.remove(self.input_columns["question"])
        return columns

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        """The verdict for the order shown in `row`: {"preference": "a" | "b" | "tie"}."""
        return {"preference": parse_verdict(text)}

    def rows(self, batch: Batch) -> list[dict[str, Any]]:
        """Rows for the template: `question` is "" when absent or null."""
        table = batch.table
        n = batch.num_rows
        out: dict[str, list] = {}
        for logical, column in self.input_columns.items():
            if logical == "question" and column not in table.column_names and not self.question_bound:
                out[logical] = [""] * n
            else:
                values = table.column(column).to_pylist()
                out[logical] = ["" if v is None else v for v in values] if logical == "question" else values
        for column in self.template_columns():
            if column not in out:
                out[column] = table.column(column).to_pylist()
        names = list(out)
        return [dict(zip(names, values, strict=True)) for values in zip(*out.values(), strict=True)]

    def evaluate(self, batch: Batch):
        if self.client is None:
            raise RuntimeError(f"operator `{self.name}` has no LLM backend bound")
        rows = self.rows(batch)
        sampling = self.sampling()
        pairs: list[Any] = []  # per row: (row in order, row swapped) or why no request was made
        requests: list[Request] = []
        for row in rows:
            nulls = [k for k, v in row.items() if v is None]
            if nulls:
                pairs.append(f"null `{nulls[0]}` in prompt")
                continue
            swapped = {**row, "response_a": row["response_b"], "response_b": row["response_a"]}
            pairs.append((row, swapped))
            for shown in (row, swapped):
                requests.append(Request(tuple(self.build_messages(shown)), sampling, None, sample_index=0))
        answers = iter(self.client.complete(requests) if requests else [])
        preference: list[str | None] = []
        failed: list[str | None] = []
        raw: list[str | None] = []
        for pair in pairs:
            if isinstance(pair, str):
                preference.append(None), failed.append(pair), raw.append(None)
                continue
            values, why, text = self.parse_answers(list(pair), [next(answers), next(answers)])
            if any(why):
                k = 0 if why[0] else 1
                preference.append(None), failed.append(why[k]), raw.append(text[k])
                continue
            first, second = values[0]["preference"], _UNSWAP[values[1]["preference"]]
            preference.append(first if first == second else "tie"), failed.append(None), raw.append(None)
        result = {
            "preference": preference,
            "a_wins": [None if p is None else A_WINS[p] for p in preference],
        }
        return Partial(result, failed, raw) if any(failed) else result


# chat_format_refiner -------------------------------------------------------------------------

_FORMATS = {
    # format: (output column, role key, content key, system, user, assistant)
    "openai": ("messages", "role", "content", "system", "user", "assistant"),
    "sharegpt": ("conversations", "from", "value", "system", "human", "gpt"),
}


class ChatFormatRefiner(Refiner):
    """Turn each row into a chat conversation column for supervised fine-tuning.

    `openai` writes `messages`: a list of {role, content} (system, user, assistant); `sharegpt`
    writes `conversations`: a list of {from, value} (system, human, gpt). The system message
    comes from `system_column` when set and not null, else from `system`, else is left out.
    Every other column is dropped except those in `keep_columns` and internal `_` columns. A row
    whose user or assistant value is null, or not text, goes to rejects ("null `instruction`").
    No model is called.

    Inputs:
        (none: the columns are given by `user_column`, `assistant_column` and `system_column`)
    Outputs:
        (none: the batch becomes `output_column` plus `keep_columns`)
    Params:
        format: `openai` (role/content) or `sharegpt` (from/value).
        user_column: column holding the user turn.
        assistant_column: column holding the assistant turn.
        system: system prompt for every row (omit for none).
        system_column: column holding a per-row system prompt (overrides `system` when not null).
        keep_columns: other columns to keep after the conversation (default none).
        output_column: name of the conversation column (default `messages` or `conversations`).
    """

    name = "chat_format_refiner"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        format: Literal["openai", "sharegpt"] = Field(
            "openai", description="`openai`: list of {role, content}; `sharegpt`: list of {from, value}."
        )
        user_column: str = Field("instruction", min_length=1, description="Column holding the user turn.")
        assistant_column: str = Field(
            "response", min_length=1, description="Column holding the assistant turn."
        )
        system: str | None = Field(None, description="System prompt for every row (omit for none).")
        system_column: str | None = Field(
            None,
            min_length=1,
            description="Column holding a per-row system prompt; overrides `system` when not null.",
        )
        keep_columns: list[str] = Field(
            default_factory=list,
            description="Columns to keep besides the conversation (internal `_` columns are always kept).",
        )
        output_column: str | None = Field(
            None,
            min_length=1,
            description="Conversation column name (default `messages`, or `conversations` for sharegpt).",
        )

        @model_validator(mode="after")
        def _check(self):
            output = self.output_column or _FORMATS[self.format][0]
            for column in (
                self.user_column,
                self.assistant_column,
                self.system_column,
                output,
                *self.keep_columns,
            ):
                if column is not None and column.startswith(RESERVED_PREFIX):
                    raise ValueError(f"`{column}`: columns starting with `_` are internal (and always kept)")
            if len(set(self.keep_columns)) != len(self.keep_columns):
                raise ValueError("`keep_columns` lists a column twice")
            if output in self.keep_columns:
                raise ValueError(
                    f"`{output}` is the conversation column; it cannot also be in `keep_columns`"
                )
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        p = self.params
        self.output_name, role, content, *self.roles = _FORMATS[p.format]
        self.keys = (role, content)
        turn = pa.struct([(role, pa.string()), (content, pa.string())])
        self.arrow_type = pa.list_(turn)

    def _sources(self) -> list[str]:
        p = self.params
        columns = [p.user_column, p.assistant_column, *([p.system_column] if p.system_column else [])]
        return list(dict.fromkeys(columns))

    @property
    def conversation_column(self) -> str:
        return self.params.output_column or self.output_name

    def required_columns(self) -> list[str]:
        return list(dict.fromkeys([*self._sources(), *self.params.keep_columns]))

    def _kept(self, names) -> list[str]:
        internal = [n for n in names if n.startswith(RESERVED_PREFIX)]
        return [self.conversation_column, *self.params.keep_columns, *internal]

    def transform_schema(self, schema: dict[str, str]) -> dict[str, str]:
        out = {self.conversation_column: str(self.arrow_type)}
        for column in self._kept(schema)[1:]:
            if column in schema:  # a missing one is reported through `required_columns`
                out[column] = schema[column]
        return out

    def written_columns(self) -> list[str]:
        return [self.conversation_column]

    def refine(self, batch: Batch):
        from operators.columns import _missing

        table = batch.table
        p = self.params
        _missing(table, self.required_columns(), self.name)
        users = table.column(p.user_column).to_pylist()
        assistants = table.column(p.assistant_column).to_pylist()
        systems = table.column(p.system_column).to_pylist() if p.system_column else [None] * table.num_rows
        system_role, user_role, assistant_role = self.roles
        role, content = self.keys
        conversations: list[list[dict[str, str]] | None] = []
        failed: list[str | None] = []
        for user, assistant, system in zip(users, assistants, systems, strict=True):
            problem = _not_text(p.user_column, user) or _not_text(p.assistant_column, assistant)
            if problem is None and system is not None and not isinstance(system, str):
                problem = f"non-text `{p.system_column}`"
            if problem:
                conversations.append(None), failed.append(problem)
                continue
            system = system if system is not None else p.system
            turns = [{role: system_role, content: system}] if system is not None else []
            turns += [{role: user_role, content: user}, {role: assistant_role, content: assistant}]
            conversations.append(turns), failed.append(None)
        kept = self._kept(table.column_names)
        columns = {self.conversation_column: pa.array(conversations, self.arrow_type)}
        columns.update({name: table.column(name) for name in kept[1:]})
        result = pa.table(columns)
        return Partial(result, failed) if any(failed) else result


def _not_text(column: str, value: Any) -> str | None:
    if value is None:
        return f"null `{column}`"
    if not isinstance(value, str):
        return f"non-text `{column}`"
    return None
