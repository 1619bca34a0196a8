"""Factual QA pairs with supporting quotes from a chunk, and two-hop questions across two chunks."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from pydantic import Field, model_validator

from dataflow_cli.errors import SpecError
from dataflow_cli.llm.operator import LLMOperator, LLMParams, Messages, ParseError, json_object
from dataflow_cli.operator import Batch, Fanout, Generator, Partial, Port
from dataflow_operators._lib.prompts import default_prompt

SINGLE_TEMPLATE = default_prompt("chunk_qa_generator", domain="knowledge")
MULTIHOP_TEMPLATE = default_prompt("chunk_qa_generator_multihop", domain="knowledge")
PARAM_VARIABLES = ("questions",)  # template variables filled from params, not columns


def pairs_schema(questions: int) -> dict[str, Any]:
    item = {
        "type": "object",
        "properties": {
            "question": {"type": "string"},
            "answer": {"type": "string"},
            "quote": {"type": "string"},
        },
        "required": ["question", "answer", "quote"],
    }
    return {
        "type": "object",
        "properties": {"pairs": {"type": "array", "items": item, "minItems": 1, "maxItems": questions}},
        "required": ["pairs"],
    }


MULTIHOP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {"type": "string"} for name in ("question", "answer", "quote_a", "quote_b", "bridge")
    },
    "required": ["question", "answer", "quote_a", "quote_b", "bridge"],
}


def _text(value: Any) -> str:
    # A field of the wrong type is kept visible (as text) for the support check to reject.
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value)


class ChunkQaGenerator(LLMOperator, Generator):
    """Generate factual QA pairs with a supporting quote from each chunk (and two-hop ones).

    One request per chunk asks for `questions` pairs in strict JSON
    (`{"pairs": [{"question", "answer", "quote"}]}`); each pair becomes a row (`hops` 1). With
    `multihop`, a second request per chunk gives the chunk (passage A) and the `second` chunk of
    the same document (passage B, e.g. the chunker's `next_chunk`) and asks for one question
    whose short answer is stated in B but needs a fact only A gives (`hops` 2; `quote` from A,
    `second_quote` from B, `bridge` the linking fact); a row whose `second` is null gets no such
    request. Nothing the model says is trusted: a pair with a missing or non-text field is still
    emitted (the field empty or as JSON text) so that `qa_support_filter`, which checks every
    quote against its chunk and every answer against its quotes, rejects it with a reason. An
    answer that is not JSON of that shape fails the request; a chunk all of whose requests fail
    is rejected with the reason and the raw answer.

    Inputs:
        text: the chunk (passage A of a two-hop question).
        second: another chunk of the same document (passage B; optional, used with `multihop`).
    Outputs:
        question: the question.
        answer: its short answer.
        quote: the supporting quote from `text`.
        second_quote: the supporting quote from `second` (null for one-hop pairs).
        bridge: the fact of `text` that links the two chunks (null for one-hop pairs).
        hops: 1 for a one-chunk pair, 2 for a two-hop question.
    Params:
        questions: one-hop pairs to ask for per chunk (default 2; 0 for two-hop questions only).
        multihop: also ask one two-hop question per chunk whose `second` is not null (default false).
        multihop_template: prompt of the two-hop request (variables `text` and `second`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params (`template` is the one-hop prompt; `{{ questions }}` is the param).
    """

    name = "chunk_qa_generator"
    inputs = {
        "text": Port("the chunk (passage A of a two-hop question)"),
        "second": Port("another chunk of the same document (passage B; optional)"),
    }
    outputs = {
        "question": Port("the question"),
        "answer": Port("its short answer"),
        "quote": Port("the supporting quote from the chunk"),
        "second_quote": Port("the supporting quote from the second chunk (null for one-hop pairs)"),
        "bridge": Port("the fact of the chunk that links the two chunks (null for one-hop pairs)"),
        "hops": Port("1 for a one-chunk pair, 2 for a two-hop question", "int64"),
    }
    default_template = SINGLE_TEMPLATE

    class Params(LLMParams):
        questions: int = Field(
            2, ge=0, le=20, description="One-hop pairs to ask for per chunk (0: two-hop only)."
        )
        multihop: bool = Field(
            False, description="Also ask one two-hop question per chunk whose `second` is set."
        )
        multihop_template: str | None = Field(
            None, description="Prompt of the two-hop request (variables `text` and `second`)."
        )

        @model_validator(mode="after")
        def _something_to_ask(self):
            if self.questions == 0 and not self.multihop:
                raise ValueError("set `questions` above 0 or `multihop: true`: there is nothing to ask")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        if self.params.multihop and not (inputs and "second" in inputs):
            self.input_columns["second"] = "next_chunk"  # what document_chunk_generator emits

    # Prompts -----------------------------------------------------------------------------
    def multihop_text(self) -> str:
        return self.params.multihop_template or MULTIHOP_TEMPLATE

    def template_columns(self) -> list[str]:
        from dataflow_cli.prompts import template_variables

        columns = set(super().template_columns()) - set(PARAM_VARIABLES) if self.params.questions else set()
        if self.params.multihop:
            variables = template_variables(self.multihop_text())
            for needed in ("text", "second"):
                if needed not in variables:
                    raise SpecError(f"the `multihop_template` of `{self.name}` must use `{{{{ {needed} }}}}`")
            columns |= variables
        return sorted(columns)

    def required_columns(self) -> list[str]:
        columns = super().required_columns()
        if not self.params.multihop:
            columns.remove(self.input_columns["second"])
        return columns

    def rows(self, batch: Batch) -> list[dict[str, Any]]:
        """Rows keyed by `text` (and `second` with `multihop`) plus the templates' other columns."""
        names = ["text", "second"] if self.params.multihop else ["text"]
        columns = {name: batch.table.column(self.input_columns[name]).to_pylist() for name in names}
        extra = [c for c in self.template_columns() if c not in columns and c not in self.input_columns]
        if history := self.params.messages_column:
            extra.append(history)
        for column in extra:
            columns[column] = batch.table.column(column).to_pylist()
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]

    def active_outputs(self) -> list[str]:
        if self.params.multihop:
            return list(self.outputs)
        return [name for name in self.outputs if name not in ("second_quote", "bridge")]

    def render(self, row: dict[str, Any]) -> str:
        from dataflow_cli.prompts import compile_template

        return compile_template(self.template_text()).render(**row, questions=self.params.questions)

    def multihop_messages(self, row: dict[str, Any]) -> Messages:
        from dataflow_cli.prompts import compile_template

        messages = [{"role": "system", "content": self.params.system}] if self.params.system else []
        messages.append({"role": "user", "content": compile_template(self.multihop_text()).render(**row)})
        return messages

    def json_schema(self) -> dict[str, Any]:
        return pairs_schema(self.params.questions)

    # Answers -----------------------------------------------------------------------------
    def parse(self, text: str, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The one-hop answer: a row per pair."""
        pairs = json_object(text).get("pairs")
        if not isinstance(pairs, list) or not pairs:
            raise ParseError("`pairs` is missing or not a non-empty list")
        out = []
        for pair in pairs[: self.params.questions]:
            pair = pair if isinstance(pair, dict) else {}
            out.append(
                {
                    "question": _text(pair.get("question")),
                    "answer": _text(pair.get("answer")),
                    "quote": _text(pair.get("quote")),
                    "second_quote": None,
                    "bridge": None,
                    "hops": 1,
                }
            )
        return out

    def parse_multihop(self, text: str) -> dict[str, Any]:
        value = json_object(text)
        if not any(isinstance(value.get(key), str) for key in ("question", "answer")):
            raise ParseError("no `question` or `answer` in the two-hop answer")
        return {
            "question": _text(value.get("question")),
            "answer": _text(value.get("answer")),
            "quote": _text(value.get("quote_a")),
            "second_quote": _text(value.get("quote_b")),
            "bridge": _text(value.get("bridge")),
            "hops": 2,
        }

    def generate(self, batch: Batch) -> Any:
        rows = self.rows(batch)
        produced: list[list[dict[str, Any]]] = [[] for _ in rows]
        failure: list[tuple[str, str | None] | None] = [None] * len(rows)
        if self.params.questions:
            # `second` is for the two-hop request only: a last chunk (no `second`) still gets one-hop pairs.
            single = [{k: v for k, v in row.items() if k != "second"} for row in rows]
            for i, (answer,) in enumerate(self.ask_rows(single)):
                value, why, text = self.parsed(answer, rows[i])
                if why is None:
                    produced[i].extend(value)
                else:
                    failure[i] = (why, text)
        if self.params.multihop:
            wanted = [
                i
                for i, row in enumerate(rows)
                if row.get("second") is not None and row.get("text") is not None
            ]
            answers = self.ask_messages([self.multihop_messages(rows[i]) for i in wanted], 1, MULTIHOP_SCHEMA)
            for i, (answer,) in zip(wanted, answers, strict=True):
                if not answer.ok:
                    failure[i] = failure[i] or (f"two-hop: {answer.failure}", answer.raw)
                    continue
                try:
                    produced[i].append(self.parse_multihop(answer.text or ""))
                except ParseError as exc:
                    failure[i] = failure[i] or (f"two-hop: {exc.reason}", answer.raw)
        columns: dict[str, list] = {name: [] for name in self.active_outputs()}
        source: list[int] = []
        for i, values in enumerate(produced):
            for value in values:
                for name in columns:
                    columns[name].append(value[name])
                source.append(i)
        arrays = {
            name: pa.array(values, pa.int64() if name == "hops" else pa.string())
            for name, values in columns.items()
        }
        failed = [None if produced[i] else (failure[i] or (None, None))[0] for i in range(len(rows))]
        raw = [None if produced[i] else (failure[i] or (None, None))[1] for i in range(len(rows))]
        result = Fanout(arrays, pa.array(source, pa.int64()))
        return Partial(result, failed, raw) if any(failed) else result


class MultihopQaGenerator(ChunkQaGenerator):
    """Generate two-hop questions across two chunks of one document, with a quote from each.

    The same operator as `chunk_qa_generator` with `multihop: true` and `questions: 0` by
    default: one request per row whose `second` chunk (default column `next_chunk`, as
    `document_chunk_generator` emits with `with_next`) is not null, asking for a question whose
    short answer is stated in the second chunk but needs a fact only the first gives. `quote`
    comes from the first chunk, `second_quote` from the second, `bridge` names the linking fact;
    `qa_support_filter` then checks both quotes and that neither chunk alone would do. A row
    without `second` generates no rows. Set `questions` above 0 to also get one-hop pairs.

    Inputs:
        text: the first chunk (passage A).
        second: the second chunk (passage B; default column `next_chunk`).
    Outputs:
        question: the question.
        answer: its short answer (stated in the second chunk).
        quote: the supporting quote from the first chunk.
        second_quote: the supporting quote from the second chunk.
        bridge: the fact of the first chunk that links the two.
        hops: 2 (1 for one-hop pairs when `questions` is above 0).
    Params:
        questions: one-hop pairs to ask for as well (default 0).
        multihop: ask the two-hop question (default true).
        multihop_template: prompt of the two-hop request (variables `text` and `second`).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params (`template` is the one-hop prompt).
    """

    name = "multihop_qa_generator"
    inputs = {
        "text": Port("the first chunk (passage A)"),
        "second": Port("the second chunk (passage B; default column `next_chunk`)"),
    }
    outputs = {
        **ChunkQaGenerator.outputs,
        "answer": Port("its short answer (stated in the second chunk)"),
        "quote": Port("the supporting quote from the first chunk"),
        "second_quote": Port("the supporting quote from the second chunk"),
    }
    default_template = MULTIHOP_TEMPLATE

    class Params(ChunkQaGenerator.Params):
        questions: int = Field(0, ge=0, le=20, description="One-hop pairs to ask for as well (default 0).")
        multihop: bool = Field(True, description="Ask the two-hop question.")

    def template_text(self) -> str:
        # The one-hop prompt only when one-hop pairs are wanted; `operators show` shows the two-hop one.
        if self.params.questions:
            return self.prompt or self.params.template or SINGLE_TEMPLATE
        return ""
