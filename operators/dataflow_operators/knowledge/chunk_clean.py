"""LLM cleaning of extracted chunks, kept only when every fact survives."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import Field

from dataflow_cli.llm.engine import strip_code_fence
from dataflow_cli.llm.operator import LLMOperator, LLMParams, ParseError
from dataflow_cli.operator import Batch, Partial, Port, Refiner
from dataflow_operators._lib.prompts import default_prompt
from dataflow_operators.knowledge._facts import lost_facts


class ChunkCleanRefiner(LLMOperator, Refiner):
    """Clean each chunk with an LLM, keeping the original when the rewrite loses a fact.

    The model is asked to repair extraction damage (words hyphenated across lines, broken
    lines, page numbers and running headers, reference markers such as "[12]") without changing
    any fact. Its answer (code fences stripped) replaces the chunk only if it passes the
    fact-preservation check: every number of the original (dates and times included, "2,300"
    and "2300" being the same number, citation markers excluded), and every name (a capitalised
    word sequence that does not merely open a sentence, month names included) must occur in the
    rewrite, and the rewrite must keep at least `min_length_ratio` of the original's length.
    Otherwise the original chunk is kept and `note` says why ("kept original: lost 1987, Maren
    Toft"); `note` is null for an accepted rewrite. An empty answer or a failed request rejects
    the row (with the raw answer), like every LLM operator.

    Inputs:
        text: the chunk to clean; rewritten in place.
    Outputs:
        note: why the original was kept (null when the cleaned text was accepted).
    Params:
        min_length_ratio: shortest accepted rewrite, as a fraction of the original's length (default 0.6).
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
    """

    name = "chunk_clean_refiner"
    inputs = {"text": Port("the chunk to clean; rewritten in place")}
    outputs = {"note": Port("why the original was kept (null when the cleaned text was accepted)")}
    default_template = default_prompt("chunk_clean_refiner", domain="knowledge")
    template_needs = ("text",)

    class Params(LLMParams):
        min_length_ratio: float = Field(
            0.6, ge=0, le=1, description="Shortest accepted rewrite, as a fraction of the original's length."
        )

    # Column flow: a refiner that also writes the `note` column.
    def transform_schema(self, schema: dict[str, str]) -> dict[str, str]:
        return {**schema, self.output_columns["note"]: "string"}

    def written_columns(self) -> list[str]:
        return [self.input_columns["text"], self.output_columns["note"]]

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        cleaned = strip_code_fence(text).strip()
        if not cleaned:
            raise ParseError("empty rewrite", bare=True)
        return {"text": cleaned}

    def review(self, original: str, cleaned: str) -> str | None:
        """Why `cleaned` may not replace `original` (None when it may)."""
        lost = lost_facts(original, cleaned)
        if lost:
            shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            return f"kept original: lost {shown}"
        if len(cleaned) < self.params.min_length_ratio * len(original.strip()):
            return f"kept original: rewrite is {len(cleaned) / max(len(original.strip()), 1):.0%} of the original's length"
        return None

    def refine(self, batch: Batch) -> Any:
        rows, answers = self.ask(batch)
        texts: list[str | None] = []
        notes: list[str | None] = []
        failed: list[str | None] = []
        raw: list[str | None] = []
        for row, (answer,) in zip(rows, answers, strict=True):
            value, why, text = self.parsed(answer, row)
            original = row["text"]
            note = None if why is not None else self.review(original, value["text"])
            texts.append(value["text"] if why is None and note is None else original)
            notes.append(note)
            failed.append(why)
            raw.append(text)
        column = self.input_columns["text"]
        table = batch.table
        table = table.set_column(
            table.schema.get_field_index(column), column, pa.array(texts, table.schema.field(column).type)
        )
        table = table.append_column(self.output_columns["note"], pa.array(notes, pa.string()))
        return Partial(table, failed, raw) if any(failed) else table
