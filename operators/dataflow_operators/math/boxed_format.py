"""Keep solutions that end in a well-formed `\\boxed{}` answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators.math.extract import extract_answer, find_boxes


class BoxedAnswerFormatFilter(Filter):
    """Keep solutions whose final answer is a closed, non-empty `\\boxed{}`.

    Braces are matched (nested braces and escaped `\\{`/`\\}` included); `\\fbox{}` counts as a box.
    A box opened after the last closed one and never closed means the solution was cut off.
    Boxes that close one statement together (`\\boxed{2} and \\boxed{3}`) are one answer with
    several parts; `single_answer` drops those.

    Inputs:
        text: the solution.
    Outputs:
        (none: rows are kept or dropped with "no \\boxed{}", "truncated \\boxed{}", "empty \\boxed{}" or "several boxed answers")
    Params:
        single_answer: drop a solution whose final statement boxes several different answers.
    """

    name = "boxed_answer_format_filter"
    cpu_bound = True  # each answer is parsed in Python
    inputs = {"text": Port("the solution")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        single_answer: bool = Field(
            False, description="Drop a solution whose final statement boxes several different answers."
        )

    def filter(self, batch: Batch) -> Verdict:
        keep, reason = [], []
        for text in batch.values("text"):
            why = self.problem(text)
            keep.append(why is None)
            reason.append(why)
        return Verdict(keep, reason)

    def problem(self, text: str | None) -> str | None:
        if not text or not find_boxes(text):
            return "no \\boxed{}"
        extraction = extract_answer(text, bare_max_chars=0)
        if extraction.source != "boxed":
            return extraction.reason if extraction.reason and "boxed" in extraction.reason else "no \\boxed{}"
        if self.params.single_answer and extraction.parts > 1:
            return "several boxed answers"
        return None
