"""Drop documents whose text could not be extracted, with the extraction's reason."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Filter, NoParams, Port, Verdict


class DocumentTextFilter(Filter):
    """Drop documents without usable text, giving the reason the extraction recorded.

    The documents input never passes an empty text on as if it were content: a file it could not
    extract (a scanned PDF without a text layer, an encrypted or broken PDF, a file that is not
    UTF-8, an empty file) comes with a null `text` and an `extract_error` of the form
    "reason: detail". This filter turns those rows into rejects: the reason (the part before
    the first ": ") is counted in the run stats, the detail goes to the rejects file. A text
    with fewer than `min_chars` non-space characters is dropped as "too little text".

    Inputs:
        text: the extracted text.
        error: why extraction failed (null when it worked).
    Outputs:
        (none: rows are kept or dropped with the extraction's reason)
    Params:
        min_chars: fewest non-space characters a kept text has (default 1).
    """

    name = "document_text_filter"
    inputs = {
        "text": Port("the extracted text"),
        "error": Port(
            "why extraction failed (null when it worked); the documents input calls it `extract_error`"
        ),
    }

    class Params(NoParams):
        min_chars: int = Field(1, ge=1, description="Fewest non-space characters a kept text has.")

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, {"error": "extract_error", **(inputs or {})}, outputs)

    def filter(self, batch: Batch) -> Verdict:
        keep, reason, detail = [], [], []
        for text, error in zip(batch.values("text"), batch.values("error"), strict=True):
            if error:
                head, _, rest = error.partition(": ")
                keep.append(False)
                reason.append(head)
                detail.append(rest or None)
            elif text is None:
                keep.append(False)
                reason.append("no text")
                detail.append(None)
            elif sum(not c.isspace() for c in text) < self.params.min_chars:
                keep.append(False)
                reason.append("too little text")
                detail.append(f"{sum(not c.isspace() for c in text)} characters")
            else:
                keep.append(True)
                reason.append(None)
                detail.append(None)
        return Verdict(keep, pa.array(reason, pa.string()), pa.array(detail, pa.string()))
