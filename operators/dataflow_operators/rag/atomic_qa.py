"""Write single-document QA pairs, each with the span of the document that supports it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError, json_object
from dataflow_cli.operator import Generator, Port
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.rag._json import TEXT, object_schema, text_field


class RagAtomicQaGenerator(LLMOperator, Generator):
    """Write factual question-answer pairs from one document, each with its supporting span.

    One request per document asks for up to `max_pairs` pairs in strict JSON
    (`{"pairs": [{"question", "answer", "support"}]}`); each pair becomes a row (ids
    `<document row>.<k>`). Questions must name their subject, answers be short and exact, and
    `support` be a sentence copied from the document: nothing here trusts that, so follow with
    `rag_support_filter`, which finds the span in the document. An answer that is not such an
    object, or a pair with an empty field, rejects the document row with the raw answer; a
    document for which the model writes no pair is rejected as "generated no rows". The
    template's `{{ max_pairs }}` is the param, not a column.

    Inputs:
        document: the document text.
    Outputs:
        question: a question answered by the document.
        answer: its short answer.
        support: the sentence of the document that supports it, as the model quoted it.
    Params:
        max_pairs: most pairs per document (default 3).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "rag_atomic_qa_generator"
    inputs = {"document": Port("the document text")}
    outputs = {
        "question": Port("a question answered by the document"),
        "answer": Port("its short answer"),
        "support": Port("the supporting sentence as the model quoted it"),
    }
    default_template = default_prompt("rag_atomic_qa_generator", domain="rag")
    template_needs = ("document",)

    class Params(LLMParams):
        max_pairs: int = Field(3, ge=1, le=20, description="Most pairs per document.")

    def template_columns(self) -> list[str]:
        return [c for c in super().template_columns() if c != "max_pairs"]

    def render(self, row: dict[str, Any]) -> str:
        from dataflow_cli.prompts import compile_template

        return compile_template(self.template_text()).render(**row, max_pairs=self.params.max_pairs)

    def json_schema(self) -> dict[str, Any]:
        pair = object_schema(question=TEXT, answer=TEXT, support=TEXT)
        return object_schema(pairs={"type": "array", "items": pair, "maxItems": self.params.max_pairs})

    def parse(self, text: str, row: dict[str, Any]) -> list[dict[str, str]]:
        pairs = json_object(text).get("pairs")
        if not isinstance(pairs, list):
            raise ParseError("`pairs` is missing or not a list")
        out = []
        for k, pair in enumerate(pairs[: self.params.max_pairs]):
            if not isinstance(pair, dict):
                raise ParseError(f"pair {k + 1} is not an object")
            out.append({field: text_field(pair, field) for field in ("question", "answer", "support")})
        return out
