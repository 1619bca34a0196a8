"""Base class of LLM operators: build the prompt, let the engine call the model, parse the answer.

An LLM operator subclasses `LLMOperator` and one kind (`class PromptedEvaluator(LLMOperator,
Evaluator)`), and overrides at most two methods:

- `build_messages(row) -> list[message]`: by default the system prompt (if any) and the
  rendered template as the user message;
- `parse(text, row) -> {output: value}`: raise `ParseError(reason)` when the answer is unusable.
  The row then goes to rejects with the reason and the raw answer: never a silent None.

The template comes from, in order: the stage's `prompt:`, the `template` param, the operator's
`default_template`. Its variables are the columns the stage needs (checked by `validate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.llm.types import Completion, LLMError, Request, Sampling
from dataflow_cli.operator import Batch, Operator

if TYPE_CHECKING:
    from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy


class ParseError(ValueError):
    """The model's answer cannot be turned into output values; the message is the reason."""


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


class LLMOperator(Operator):
    uses_llm = True
    default_template: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = LLMParams

    client: LLMClient | None = None

    def bind(self, client: LLMClient) -> None:
        self.client = client

    # Prompt ------------------------------------------------------------------------------
    def template_text(self) -> str:
        return self.prompt or getattr(self.params, "template", None) or self.default_template

    def template_columns(self) -> list[str]:
        from dataflow_cli.prompts import template_variables

        text = self.template_text()
        return sorted(template_variables(text)) if text else []

        return sorted(template_variables(self.template_text()))

    def required_columns(self) -> list[str]:
        # Template variables that are logical inputs read their bound column, not a column
        # of that name; the rest name columns directly.
        columns = list(self.input_columns.values())
        columns += [c for c in self.template_columns() if c not in columns and c not in self.input_columns]
        history = getattr(self.params, "messages_column", None)
        return columns + [history] if history and history not in columns else columns

    def render(self, row: dict[str, Any]) -> str:
        from dataflow_cli.prompts import compile_template

        return compile_template(self.template_text()).render(**row)

    def build_messages(self, row: dict[str, Any]) -> list[dict[str, str]]:
        messages = []
        system = getattr(self.params, "system", None)
        if system:
            messages.append({"role": "system", "content": system})
        history = getattr(self.params, "messages_column", None)
        if history:
            messages.extend({"role": str(m["role"]), "content": str(m["content"])} for m in row[history])
        if self.template_text():
            messages.append({"role": "user", "content": self.render(row)})
        return messages

    def json_schema(self) -> dict[str, Any] | None:
        """A JSON Schema the answer must satisfy (enforced natively where possible, always validated)."""
        return None

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

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

    # Calling -----------------------------------------------------------------------------
    def rows(self, batch: Batch) -> list[dict[str, Any]]:
        """The batch as dicts keyed by logical input names and template variables."""
        table = batch.table
        out: dict[str, list] = {}
        for logical, column in self.input_columns.items():
            out[logical] = table.column(column).to_pylist()
        history = getattr(self.params, "messages_column", None)
        for column in self.template_columns() + ([history] if history else []):
            if column not in out:
                out[column] = table.column(column).to_pylist()
        names = list(out)
        return (
            [dict(zip(names, values, strict=True)) for values in zip(*out.values(), strict=True)]
            if names
            else [{} for _ in range(batch.num_rows)]
        )

    def ask(self, batch: Batch, samples: int = 1) -> tuple[list[dict[str, Any]], list[list[Any]]]:
        """Send every row's messages (`samples` times each). Returns the rows and, per row and
        sample, a Completion, an LLMError, or a str saying why no request was made."""
        if self.client is None:
            raise RuntimeError(f"operator `{self.name}` has no LLM backend bound")
        rows = self.rows(batch)
        answers: list[list[Any]] = [[] for _ in rows]
        requests: list[Request] = []
        owners: list[int] = []
        sampling, schema = self.sampling(), self.json_schema()
        for i, row in enumerate(rows):
            nulls = [k for k, v in row.items() if v is None]
            if nulls:  # a prompt must never contain "None": the row fails instead
                answers[i] = [f"null `{nulls[0]}` in prompt"] * samples
                continue
            messages = tuple(self.build_messages(row))
            for k in range(samples):
                requests.append(Request(messages, sampling, schema, sample_index=k))
                owners.append(i)
        if requests:
            for owner, result in zip(owners, self.client.complete(requests), strict=True):
                answers[owner].append(result)
        return rows, answers

    def parse_answers(
        self, rows: list[dict[str, Any]], answers: list[Completion | str | LLMError]
    ) -> tuple[list[dict[str, Any] | None], list[str | None], list[str | None]]:
        """Parse one answer per row: (values or None, failure reason or None, raw text or None)."""
        values: list[dict[str, Any] | None] = []
        failed: list[str | None] = []
        raw: list[str | None] = []
        for row, answer in zip(rows, answers, strict=True):
            if isinstance(answer, str):
                values.append(None), failed.append(answer), raw.append(None)
            elif isinstance(answer, LLMError):
                values.append(None), failed.append(answer.reason()), raw.append(answer.raw)
            else:
                try:
                    values.append(self.parse(answer.text, row)), failed.append(None), raw.append(None)
                except ParseError as exc:
                    values.append(None), failed.append(f"parse error: {exc}"), raw.append(answer.text)
        return values, failed, raw
