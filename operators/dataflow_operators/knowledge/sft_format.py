"""Verified QA pairs as SFT rows: instruction/input/output (Alpaca) or chat messages."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataflow_cli.operator import RESERVED_PREFIX, Batch, Partial, Port, Refiner

_CHAT = {
    # format: (column, role key, content key, system, user, assistant)
    "openai": ("messages", "role", "content", "system", "user", "assistant"),
    "sharegpt": ("conversations", "from", "value", "system", "human", "gpt"),
}
_ALPACA = ("instruction", "input", "output")


class QaSftFormatRefiner(Refiner):
    """Turn QA pairs into SFT rows: Alpaca instruction/input/output or chat messages.

    `alpaca` writes `instruction` (the question), `input` (the passage, or "" closed-book) and
    `output` (the answer); `openai` writes `messages` ({role, content}: optional system, user,
    assistant) and `sharegpt` writes `conversations` ({from, value}). With `with_context` the
    passage (`context`, followed by `second_context` when that is bound and not null, as for a
    two-hop pair) goes into `input`, or before the question in the user turn, so the model
    learns to answer from the text it is given; without it the pair is closed-book. Every other
    column is dropped except `keep_columns` and internal `_` columns. A row whose question or
    answer is null is rejected ("null `question`").

    Inputs:
        question: the question (the instruction / user turn).
        answer: the answer (the output / assistant turn).
        context: the passage (used with `with_context`).
        second_context: a second passage, for two-hop pairs (optional).
    Outputs:
        (none: the batch becomes the SFT columns plus `keep_columns`)
    Params:
        format: `alpaca` (instruction/input/output), `openai` (messages) or `sharegpt` (conversations).
        with_context: include the passage(s) (default true).
        system: system prompt of chat rows (omit for none).
        keep_columns: other columns to keep (default none).
    """

    name = "qa_sft_format_refiner"
    inputs = {
        "question": Port("the question"),
        "answer": Port("the answer"),
        "context": Port("the passage (used with `with_context`)"),
        "second_context": Port("a second passage, for two-hop pairs (optional)"),
    }

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        format: Literal["alpaca", "openai", "sharegpt"] = Field(
            "alpaca", description="`alpaca` (instruction/input/output), `openai` or `sharegpt` chat rows."
        )
        with_context: bool = Field(True, description="Include the passage(s) in the input / user turn.")
        system: str | None = Field(None, description="System prompt of chat rows (omit for none).")
        keep_columns: list[str] = Field(default_factory=list, description="Other columns to keep.")

        @model_validator(mode="after")
        def _check(self):
            if self.system is not None and self.format == "alpaca":
                raise ValueError("`system` is for chat formats (`openai`, `sharegpt`)")
            if any(c.startswith(RESERVED_PREFIX) for c in self.keep_columns):
                raise ValueError("columns starting with `_` are internal and always kept")
            if len(set(self.keep_columns)) != len(self.keep_columns):
                raise ValueError("`keep_columns` lists a column twice")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.second_bound = bool(inputs and "second_context" in inputs)

    def _output_names(self) -> list[str]:
        return list(_ALPACA) if self.params.format == "alpaca" else [_CHAT[self.params.format][0]]

    def required_columns(self) -> list[str]:
        names = ["question", "answer"] + (["context"] if self.params.with_context else [])
        names += ["second_context"] if self.params.with_context and self.second_bound else []
        return list(dict.fromkeys([*(self.input_columns[n] for n in names), *self.params.keep_columns]))

    def transform_schema(self, schema: dict[str, str]) -> dict[str, str]:
        if self.params.format == "alpaca":
            out = dict.fromkeys(_ALPACA, "string")
        else:
            out = {_CHAT[self.params.format][0]: str(self._turn_type())}
        out.update({c: schema[c] for c in self.params.keep_columns if c in schema})
        out.update({c: t for c, t in schema.items() if c.startswith(RESERVED_PREFIX)})
        return out

    def written_columns(self) -> list[str]:
        return self._output_names()

    def _turn_type(self) -> pa.DataType:
        _, role, content, *_ = _CHAT[self.params.format]
        return pa.list_(pa.struct([(role, pa.string()), (content, pa.string())]))

    def refine(self, batch: Batch) -> Any:
        p = self.params
        n = batch.num_rows
        questions, answers = batch.values("question"), batch.values("answer")
        contexts = batch.values("context") if p.with_context else [None] * n
        seconds = batch.values("second_context") if p.with_context and self.second_bound else [None] * n
        failed: list[str | None] = []
        passages: list[str] = []
        for question, answer, context, second in zip(questions, answers, contexts, seconds, strict=True):
            if question is None or answer is None:
                failed.append(f"null `{self.input_columns['question' if question is None else 'answer']}`")
            elif p.with_context and context is None:
                failed.append(f"null `{self.input_columns['context']}`")
            else:
                failed.append(None)
            passages.append("\n\n".join(part for part in (context, second) if part))
        columns: dict[str, pa.Array] = {}
        if p.format == "alpaca":
            columns["instruction"] = pa.array([q or "" for q in questions], pa.string())
            columns["input"] = pa.array(passages, pa.string())
            columns["output"] = pa.array([a or "" for a in answers], pa.string())
        else:
            name, role, content, system, user, assistant = _CHAT[p.format]
            conversations = []
            for question, answer, passage in zip(questions, answers, passages, strict=True):
                turns = [{role: system, content: p.system}] if p.system else []
                prompt = f"{passage}\n\n{question}" if passage else (question or "")
                turns += [{role: user, content: prompt}, {role: assistant, content: answer or ""}]
                conversations.append(turns)
            columns[name] = pa.array(conversations, self._turn_type())
        for column in p.keep_columns:
            columns[column] = batch.table.column(column)
        for column in batch.table.column_names:
            if column.startswith(RESERVED_PREFIX):
                columns[column] = batch.table.column(column)
        table = pa.table(columns)
        return Partial(table, failed) if any(failed) else table
