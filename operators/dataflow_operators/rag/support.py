"""Verify a QA pair's supporting span by finding it in its document."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Filter, NoParams, Port, Verdict
from dataflow_operators._lib.support import answer_supported, find_quote, normalize_span, quote_pieces


class RagSupportFilter(Filter):
    """Keep QA pairs whose supporting span is found in the document and contains the answer.

    The model's quote is never trusted: it must occur in the document, word for word after
    normalizing form only (case, Unicode forms, typographic quotes and dashes, whitespace; an
    ellipsis stands for an omitted part, the parts must occur in order), so a paraphrase or an
    invented sentence is dropped ("support not in document"). The span must have at least
    `min_words` words ("support too short": a quote of the answer alone supports nothing), and
    every content word of the answer must occur in it ("answer not in support"). The matching
    rules are those of the knowledge operators (`dataflow_operators._lib.support`). A null or
    blank value is "missing support" / "missing answer" / "missing document".

    Inputs:
        document: the document the pair was written from.
        support: the quoted supporting span.
        answer: the pair's answer.
    Outputs:
        (none: rows are kept or dropped)
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

    class Params(NoParams):
        min_words: int = Field(4, ge=1, description="Fewest words a supporting span may have.")
        require_answer: bool = Field(True, description="The answer must occur in the supporting span.")

    def check(self, document: str, support: str, answer: str) -> str | None:
        """The reason to drop one row, or None to keep it."""
        for value, what in ((document, "document"), (support, "support"), (answer, "answer")):
            if not isinstance(value, str) or not value.strip():
                return f"missing {what}"
        if find_quote(support, document, normalize_span(document)) is None:
            return "support not in document"
        quoted = " ".join(quote_pieces(support))
        if len(quoted.split()) < self.params.min_words:
            return "support too short"
        if self.params.require_answer and not answer_supported(answer, quoted)[0]:
            return "answer not in support"
        return None

    def filter(self, batch: Batch) -> Verdict:
        reasons = [
            self.check(*values)
            for values in zip(
                batch.values("document"), batch.values("support"), batch.values("answer"), strict=True
            )
        ]
        return Verdict(keep=[why is None for why in reasons], reason=pa.array(reasons, pa.string()))
