"""Verify a QA pair's supporting span by finding it in its document."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Filter, NoParams, Port, Verdict
from dataflow_operators._lib.qa_text import contains_answer, find_span


class RagSupportFilter(Filter):
    """Keep QA pairs whose supporting span is found in the document and contains the answer.

    The model's quote is never trusted: it must occur in the document, letter for letter up to
    case, whitespace runs and typographic quotes or dashes (quotation marks, ellipses and final
    punctuation around it are ignored), so a paraphrase or an invented sentence is dropped
    ("support not in document"). The answer must then occur in the span as a run of words after
    SQuAD answer normalization ("answer not in support"; see `rag_answer_score_evaluator`), and
    the span must have at least `min_words` words ("support too short": a quote of the answer
    alone supports nothing). A null or blank value is "missing support" / "missing answer" /
    "missing document". Kept and dropped rows get the span's character offsets in the document.

    Inputs:
        document: the document the pair was written from.
        support: the quoted supporting span.
        answer: the pair's answer.
    Outputs:
        support_start: offset of the span's first character in the document (null if not found).
        support_end: offset just past the span's last character (null if not found).
    Params:
        min_words: fewest words a supporting span may have (default 4).
        require_answer: the answer must occur in the span (default true).
    """

    name = "rag_support_filter"
    inputs = {
        "document": Port("the document the pair was written from"),
        "support": Port("the quoted supporting span"),
        "answer": Port("the pair's answer"),
    }
    outputs = {
        "support_start": Port("offset of the span's first character in the document", "int64"),
        "support_end": Port("offset just past the span's last character", "int64"),
    }

    class Params(NoParams):
        min_words: int = Field(4, ge=1, description="Fewest words a supporting span may have.")
        require_answer: bool = Field(True, description="The answer must occur in the supporting span.")

    def check(self, document: object, support: object, answer: object) -> tuple[str | None, tuple | None]:
        """(reason or None, span or None) for one row."""
        for value, what in ((document, "document"), (support, "support"), (answer, "answer")):
            if not isinstance(value, str) or not value.strip():
                return f"missing {what}", None
        span = find_span(document, support)
        if span is None:
            return "support not in document", None
        quoted = document[span[0] : span[1]]
        if len(quoted.split()) < self.params.min_words:
            return "support too short", span
        if self.params.require_answer and not contains_answer(quoted, answer):
            return "answer not in support", span
        return None, span

    def filter(self, batch: Batch) -> Verdict:
        results = [
            self.check(*values)
            for values in zip(
                batch.values("document"), batch.values("support"), batch.values("answer"), strict=True
            )
        ]
        return Verdict(
            keep=[why is None for why, _ in results],
            reason=pa.array([why for why, _ in results], pa.string()),
            columns={
                "support_start": pa.array([s[0] if s else None for _, s in results], pa.int64()),
                "support_end": pa.array([s[1] if s else None for _, s in results], pa.int64()),
            },
        )
