"""Generate text with an LLM from a prompt template."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from dataflow_cli.llm.operator import LLMOperator, LLMParams
from dataflow_cli.operator import Generator, Port


class PromptedGenerator(LLMOperator, Generator):
    """Generate a text column by sending a prompt template, rendered per row, to an LLM.

    With `n` > 1 each input row becomes `n` rows (ids `<parent>.<k>`, `_parent_id` kept), one
    per sample, with the sample number in the `sample` output.

    Inputs:
        (the template's variables: any columns)
    Outputs:
        text: the model's answer.
        sample: the sample number, 0..n-1 (only when n > 1).
    Params:
        template, system, temperature, max_tokens, top_p, seed, stop, messages_column: see LLM params.
        n: samples per prompt.
        strip: strip surrounding whitespace from answers.
    """

    name = "prompted_generator"
    outputs = {"text": Port("the model's answer"), "sample": Port("sample number, 0..n-1", "int64")}

    class Params(LLMParams):
        n: int = Field(1, ge=1, le=64, description="Samples per prompt; n > 1 emits one row per sample.")
        strip: bool = Field(True, description="Strip surrounding whitespace from answers.")

    def active_outputs(self) -> list[str]:
        return ["text", "sample"] if self.params.n > 1 else ["text"]

    def parse(self, text: str, row: dict[str, Any]) -> dict[str, Any]:
        return {"text": text.strip() if self.params.strip else text}
