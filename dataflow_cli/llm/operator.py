"""Base class of LLM operators: build the prompt, let the engine call the model, parse the answer.

An LLM operator subclasses `LLMOperator` and then one kind (`class MyJudgeEvaluator(LLMOperator,
Evaluator)`), declares its ports and params, and writes `parse(text, row)`; the base class
supplies the kind's method. Optional: `build_messages(row)` (default: the system prompt, the
turns in `messages_column`, the rendered template) and `json_schema()` (strict JSON answers).

What `parse` returns, per kind:

| kind     | `parse(text, row)` returns                                                   |
|----------|------------------------------------------------------------------------------|
| evaluate | `{output: value}`                                                            |
| generate | `{output: value}`, or a list of them (0..n rows per input row)               |
| filter   | `True` (keep), `(False, "short reason")` or `(False, "reason", "detail")`    |
| refine   | `{input: new_value}` (inputs left out keep their value)                      |

A generator whose Params has `n` draws n answers per row and emits a row per answer (ids
`<parent>.<k>`, `_parent_id` kept); a declared `sample` output gets the answer's number.
`parse` raises `ParseError("short reason")` for an unusable answer. A failed request, a
`ParseError` or a null prompt variable sends the row to rejects with the reason and the raw
answer: never a silent None.

Multi-call flows (staged checks, pairwise swaps) override the kind's method and use `ask`,
`ask_rows` or `ask_messages` (every answer an `Answer`), `parsed` and `Partial`.

The template comes from, in order: the stage's `prompt:`, the `template` param, the operator's
`default_template`. Its variables are the columns the stage needs (checked by `validate`);
a variable that is a logical input reads the column bound to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.llm.types import Answer, Completion, LLMError, Request, Sampling
from dataflow_cli.operator import Batch, Fanout, Operator, Partial, Verdict

if TYPE_CHECKING:
    from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy

Messages = list[dict[str, str]]


class ParseError(ValueError):
    """The model's answer cannot be turned into output values. The row's reject reason is
    "parse error: <message>", or the message alone with `bare=True` (e.g. "empty rewrite")."""

    def __init__(self, message: str, *, bare: bool = False):
        super().__init__(message)
        self.reason = message if bare else f"parse error: {message}"


def json_object(text: str) -> dict[str, Any]:
    """A strict-JSON answer as an object. No leniency: prose around it, or a word like "true"
    somewhere in a broken answer, is a ParseError (the row keeps the raw text). A Markdown code
    fence around the JSON is allowed."""
    import json

    from dataflow_cli.llm.engine import strip_code_fence

    try:
        value = json.loads(strip_code_fence(text))
    except ValueError:
        raise ParseError("answer is not JSON") from None
    if not isinstance(value, dict):
        raise ParseError("answer is not a JSON object")
    return value


class LLMParams(BaseModel):
    """Params every LLM operator accepts."""

    model_config = ConfigDict(extra="forbid")

    template: str | None = Field(
        None, description="Jinja prompt template over the row's columns (a stage `prompt:` overrides it)."
    )
    system: str | None = Field(None, description="System prompt sent before the user message.")
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature (backend default if unset)."
    )
    max_tokens: int | None = Field(None, ge=1, description="Most tokens to generate per answer.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling probability mass.")
    seed: int | None = Field(None, description="Sampling seed, where the backend supports it.")
    stop: list[str] | None = Field(None, description="Stop sequences.")
    messages_column: str | None = Field(
        None,
        description="A column holding earlier turns (a list of {role, content}) sent before the "
        "rendered template, for multi-turn prompts; with no template the turns are sent alone.",
    )


class LLMClient:
    """What the executor binds to an LLM operator: its backend, policy and stats."""

    def __init__(self, engine: LLMEngine, backend: str, stats: LLMStats, policy: Policy, stage: str):
        self.engine = engine
        self.backend = backend
        self.stats = stats
        self.policy = policy
        self.stage = stage

    def complete(self, requests: list[Request]) -> list[Completion | LLMError]:
        return self.engine.complete(self.backend, requests, self.stats, self.policy, self.stage)

    def complete_stream(self, requests: Iterable[Request]) -> list[Completion | LLMError]:
        """`complete`, with requests that may still be in the making: the engine sends the
        first ones while the rest are built. Clients that redefine `complete` get a list."""
        if type(self).complete is not LLMClient.complete:
            return self.complete(list(requests))
        return self.engine.complete(self.backend, requests, self.stats, self.policy, self.stage)


class LLMOperator(Operator):
    uses_llm = True
    default_template: ClassVar[str] = ""
    template_needs: ClassVar[tuple[str, ...]] = ()  # variables a custom template must use
    Params: ClassVar[type[BaseModel]] = LLMParams

    client: LLMClient | None = None

    def bind(self, client: LLMClient) -> None:
        self.client = client

    # What to send and how to read the answer -------------------------------------------
    def build_messages(self, row: dict[str, Any]) -> Messages:
        messages = []
        if system := getattr(self.params, "system", None):
            messages.append({"role": "system", "content": system})
        if history := getattr(self.params, "messages_column", None):
            messages.extend({"role": str(m["role"]), "content": str(m["content"])} for m in row[history])
        if self.template_text():
            messages.append({"role": "user", "content": self.render(row)})
        return messages

    def parse(self, text: str, row: dict[str, Any]) -> Any:
        """The answer as the kind's values (see the module docstring); raise ParseError if unusable."""
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any] | None:
        """A JSON Schema the answer must satisfy (enforced natively where possible, always validated)."""
        return None

    def samples(self) -> int:
        """Answers drawn per row: a generator's `n` param, else 1."""
        return getattr(self.params, "n", 1) if self.kind == "generate" else 1

    # Prompt ------------------------------------------------------------------------------
    def template_text(self) -> str:
        return self.prompt or getattr(self.params, "template", None) or self.default_template

    def template_columns(self) -> list[str]:
        from dataflow_cli.errors import SpecError
        from dataflow_cli.prompts import template_variables

        text = self.template_text()
        columns = sorted(template_variables(text)) if text else []
        if missing := [name for name in self.template_needs if name not in columns]:
            needed = ", ".join(f"`{{{{ {name} }}}}`" for name in missing)
            raise SpecError(f"the prompt template of `{self.name}` must use {needed}")
        return columns

    def required_columns(self) -> list[str]:
        # A template variable that is a logical input reads its bound column, not one of its name.
        columns = list(self.input_columns.values())
        columns += [c for c in self.template_columns() if c not in columns and c not in self.input_columns]
        history = getattr(self.params, "messages_column", None)
        return columns + [history] if history and history not in columns else columns

    def render(self, row: dict[str, Any]) -> str:
        text = self.template_text()
        pieces = plain_template(text)
        if pieces is not None:
            try:
                return "".join(str(row[piece]) if is_name else piece for is_name, piece in pieces)
            except KeyError:
                pass  # a name that is no column (a Jinja global, or an error Jinja words)
        from dataflow_cli.prompts import render

        return render(text, row)

    def sampling(self) -> Sampling:
        p = self.params
        stop = getattr(p, "stop", None)
        return Sampling(
            temperature=getattr(p, "temperature", None),
            max_tokens=getattr(p, "max_tokens", None),
            top_p=getattr(p, "top_p", None),
            seed=getattr(p, "seed", None),
            stop=tuple(stop) if stop else None,
        )

    # Asking ------------------------------------------------------------------------------
    def rows(self, batch: Batch) -> list[dict[str, Any]]:
        """The batch as dicts keyed by logical input names and template variables."""
        out = {
            logical: batch.table.column(column).to_pylist() for logical, column in self.input_columns.items()
        }
        history = getattr(self.params, "messages_column", None)
        for column in self.template_columns() + ([history] if history else []):
            if column not in out:
                out[column] = batch.table.column(column).to_pylist()
        if not out:
            return [{} for _ in range(batch.num_rows)]
        return [dict(zip(out, values, strict=True)) for values in zip(*out.values(), strict=True)]

    def ask(self, batch: Batch, samples: int = 1) -> tuple[list[dict[str, Any]], list[list[Answer]]]:
        """Every row of the batch and its `samples` answers."""
        rows = self.rows(batch)
        return rows, self.ask_rows(rows, samples)

    def ask_rows(self, rows: list[dict[str, Any]], samples: int = 1) -> list[list[Answer]]:
        """`samples` answers per row to `build_messages(row)`; a row with a null value is not sent."""
        answers: list[list[Answer]] = [[] for _ in rows]
        sent = []
        for i, row in enumerate(rows):
            if nulls := [k for k, v in row.items() if v is None]:  # never a prompt saying "None"
                answers[i] = [Answer(failure=f"null `{nulls[0]}` in prompt")] * samples
            else:
                sent.append(i)
        if not sent:
            return answers
        # A generator: the first prompts are asked while the later ones are rendered.
        got = self.ask_messages((self.build_messages(rows[i]) for i in sent), samples, self.json_schema())
        for i, per_row in zip(sent, got, strict=True):
            answers[i] = per_row
        return answers

    def ask_messages(
        self, conversations: Iterable[Messages], samples: int = 1, json_schema: dict[str, Any] | None = None
    ) -> list[list[Answer]]:
        """`samples` answers to each conversation, in one round of concurrent requests.
        `conversations` may be a generator (sending starts before it is exhausted)."""
        if isinstance(conversations, list) and not conversations:
            return []
        if self.client is None:
            raise RuntimeError(f"operator `{self.name}` has no LLM backend bound")
        sampling = self.sampling()
        requests = (
            Request(tuple(messages), sampling, json_schema, sample_index=k)
            for messages in conversations
            for k in range(samples)
        )
        results = [Answer.of(r) for r in self.client.complete_stream(requests)]
        return [results[i : i + samples] for i in range(0, len(results), samples)]

    def parsed(self, answer: Answer, row: dict[str, Any]) -> tuple[Any, str | None, str | None]:
        """`(parse(answer.text, row), None, None)`, or `(None, failure reason, raw answer)`."""
        if not answer.ok:
            return None, answer.failure, answer.raw
        try:
            return self.parse(answer.text or "", row), None, None
        except ParseError as exc:
            return None, exc.reason, answer.raw

    def _run(self, batch: Batch) -> tuple[list[dict[str, Any]], list[list[Any]], list, list]:
        """Ask and parse: per row, the parsed values of its good answers, its failure and raw."""
        rows, answers = self.ask(batch, self.samples())
        values, failed, raw = [], [], []
        for row, per_row in zip(rows, answers, strict=True):
            outcomes = [self.parsed(answer, row) for answer in per_row]
            good = [value for value, why, _ in outcomes if why is None]
            first_failure = next((o for o in outcomes if o[1] is not None), (None, None, None))
            values.append(good)
            failed.append(None if good else first_failure[1])
            raw.append(None if good else first_failure[2])
        return rows, values, failed, raw

    # The four kinds, from parse ----------------------------------------------------------
    def evaluate(self, batch: Batch) -> Any:
        return self._aligned(*self._run(batch)[1:])

    def generate(self, batch: Batch) -> Any:
        _, values, failed, raw = self._run(batch)
        fanout = self.samples() > 1 or any(isinstance(v, list) for good in values for v in good)
        if not fanout:  # 1:1 keeps the input row's id
            return self._aligned(values, failed, raw)
        columns: dict[str, list] = {out: [] for out in self.active_outputs()}
        source = []
        for i, good in enumerate(values):
            for k, produced in enumerate(good):
                for value in produced if isinstance(produced, list) else [produced]:
                    for out, column in columns.items():
                        column.append(k if out == "sample" and out not in value else value.get(out))
                    source.append(i)
        import pyarrow as pa

        return _partial(Fanout(columns, pa.array(source, pa.int64())), failed, raw)

    def filter(self, batch: Batch) -> Any:
        import pyarrow as pa

        _, values, failed, raw = self._run(batch)
        keep, reason, detail = [], [], []
        for good in values:
            verdict = good[0] if good else True  # a failed row's verdict is ignored
            verdict = (True, None, None) if verdict is True else verdict
            if not (isinstance(verdict, tuple) and len(verdict) in (2, 3) and verdict[0] in (True, False)):
                raise TypeError(
                    f"{self.name}.parse must return True or (False, reason[, detail]): {verdict!r}"
                )
            keep.append(verdict[0])
            reason.append(verdict[1])
            detail.append(verdict[2] if len(verdict) == 3 else None)
        return _partial(
            Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string())), failed, raw
        )

    def refine(self, batch: Batch) -> Any:
        import pyarrow as pa

        rows, values, failed, raw = self._run(batch)
        result = {}
        for name in sorted({name for good in values for name in (good[0] if good else {})}):
            new = [
                good[0].get(name, row[name]) if good else row[name]
                for row, good in zip(rows, values, strict=True)
            ]
            kind = batch.column(name).type
            result[name] = pa.array(
                new, kind if pa.types.is_string(kind) or pa.types.is_large_string(kind) else None
            )
        return _partial(result, failed, raw)

    def _aligned(self, values: list[list[Any]], failed: list, raw: list) -> Any:
        result = {
            out: [good[0].get(out) if good else None for good in values] for out in self.active_outputs()
        }
        return _partial(result, failed, raw)


@lru_cache(maxsize=256)
def plain_template(text: str) -> tuple[tuple[bool, str], ...] | None:
    """A template of text and `{{ name }}` placeholders only, as (is a name, text or name)
    pieces; None for any other. Such a template renders without Jinja: Jinja's output (no
    autoescape, no finalize) is the text with each value's `str()` in its place, and the
    text as Jinja parsed it (newlines normalized)."""
    from jinja2 import nodes

    from dataflow_cli.prompts import environment

    try:
        body = environment().parse(text).body
    except Exception:  # Jinja reports it when the template is rendered
        return None
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    pieces = []
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            pieces.append((False, node.data))
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            pieces.append((True, node.name))
        else:
            return None
    return tuple(pieces)


def _partial(result: Any, failed: list, raw: list) -> Any:
    return Partial(result, failed, raw) if any(failed) else result
