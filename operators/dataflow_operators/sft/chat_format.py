"""Turn instruction/response columns into chat messages (OpenAI or ShareGPT format)."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataflow_cli.operator import RESERVED_PREFIX, Batch, Partial, Refiner

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
        from dataflow_operators.core.columns import _missing

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
