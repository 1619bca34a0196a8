"""Check, by matching rather than by asking a model, that QA pairs are supported by their chunks."""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataflow_cli.operator import Batch, Filter, NoParams, Port, Verdict
from dataflow_operators._lib.support import answer_supported, answer_tokens, find_quote, normalize_span


class QaSupportFilter(Filter):
    """Drop QA pairs whose quote is not in their chunk or does not contain their answer.

    A generated pair is kept only when its evidence checks out, by matching, not by trusting
    the model: the quote must occur in the chunk after normalising form only (case, Unicode
    forms, curly quotes and dashes, whitespace, words hyphenated across a line break, Markdown
    marks of the extraction such as `#`, `|`, list bullets; "..." stands for an omitted part),
    so a quote with a changed word, number or name is not found; it must have at least
    `min_quote_words` words; every content word of the answer (numbers as digits, number words
    as digits, plural `s` ignored) must be in the quote; the answer has at most
    `max_answer_words` words and is not already spelled out by the question. A two-hop pair
    (`second_quote` not null, with `second_quote` and `second_context` bound) also needs its
    second quote in the second chunk and its answer in the second quote, and each quote only in
    its own chunk and the answer not stated in the first chunk: otherwise one chunk would do
    ("answerable from one chunk"). Reasons, checked in this order: "empty question", "empty
    answer", "empty quote", "answer too long", "quote too short", "quote not found in chunk",
    "second quote not found in second chunk", "answer not in quote", "answer in question",
    "answerable from one chunk".

    Inputs:
        question: the generated question.
        answer: its answer.
        quote: the supporting quote.
        context: the chunk the quote must come from.
        second_quote: the quote from the second chunk of a two-hop pair (optional).
        second_context: the second chunk of a two-hop pair (optional).
    Outputs:
        support: what was compared (where the quote was found, the answer words checked).
    Params:
        min_quote_words: fewest words in a quote (default 3).
        max_answer_words: most words in an answer (default 12).
    """

    name = "qa_support_filter"
    inputs = {
        "question": Port("the generated question"),
        "answer": Port("its answer"),
        "quote": Port("the supporting quote"),
        "context": Port("the chunk the quote must come from"),
        "second_quote": Port("the quote from the second chunk of a two-hop pair (optional)"),
        "second_context": Port("the second chunk of a two-hop pair (optional)"),
    }
    outputs = {"support": Port("what was compared: quote positions, answer words checked")}

    class Params(NoParams):
        min_quote_words: int = Field(3, ge=1, description="Fewest words in a quote.")
        max_answer_words: int = Field(12, ge=1, description="Most words in an answer.")

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.two_hop = bool(inputs and "second_quote" in inputs and "second_context" in inputs)

    def required_columns(self) -> list[str]:
        names = list(self.inputs) if self.two_hop else ["question", "answer", "quote", "context"]
        return [self.input_columns[name] for name in names]

    def filter(self, batch: Batch) -> Verdict:
        n = batch.num_rows
        second_quotes = batch.values("second_quote") if self.two_hop else [None] * n
        second_contexts = batch.values("second_context") if self.two_hop else [None] * n
        keep, reasons, details, supports = [], [], [], []
        rows = zip(
            batch.values("question"),
            batch.values("answer"),
            batch.values("quote"),
            batch.values("context"),
            second_quotes,
            second_contexts,
            strict=True,
        )
        for row in rows:
            reason, detail, support = self.check(*row)
            keep.append(reason is None)
            reasons.append(reason)
            details.append(detail)
            supports.append(support)
        return Verdict(
            keep,
            pa.array(reasons, pa.string()),
            pa.array(details, pa.string()),
            columns={"support": pa.array(supports, pa.string())},
        )

    def check(
        self,
        question: str | None,
        answer: str | None,
        quote: str | None,
        context: str | None,
        second_quote: str | None = None,
        second_context: str | None = None,
    ) -> tuple[str | None, str | None, str | None]:
        """(reason, detail, what was compared) for one pair; reason None when it is supported."""
        p = self.params
        for label, value in (("question", question), ("answer", answer), ("quote", quote)):
            if not value or not value.strip():
                return f"empty {label}", None, None
        assert question and answer and quote
        two_hop = second_quote is not None
        if two_hop and not second_quote.strip():
            return "empty quote", "second quote", None
        if len(answer.split()) > p.max_answer_words:
            return "answer too long", f"{len(answer.split())} words", None
        for which, text in (("quote", quote), ("second quote", second_quote)):
            if text is not None and len(text.split()) < p.min_quote_words:
                return "quote too short", f"{which}: {len(text.split())} words", None
        chunk = normalize_span(context or "")
        at = find_quote(quote, "", chunk)
        support = [
            f"quote at {at} of {len(chunk)} (normalised chunk)" if at is not None else "quote not found"
        ]
        if at is None:
            return "quote not found in chunk", _shorten(quote), "; ".join(support)
        second_chunk = normalize_span(second_context or "") if two_hop else ""
        if two_hop:
            assert second_quote is not None
            second_at = find_quote(second_quote, "", second_chunk)
            if second_at is None:
                return "second quote not found in second chunk", _shorten(second_quote), "; ".join(support)
            support.append(f"second quote at {second_at} of {len(second_chunk)}")
        evidence = second_quote if two_hop else quote
        assert evidence is not None
        ok, missing = answer_supported(answer, evidence)
        words = answer_tokens(answer)
        support.append(
            f"answer words {', '.join(words) or '-'}: {len(words) - len(missing)}/{len(words)} in quote"
        )
        if not ok:
            return "answer not in quote", f"missing {', '.join(missing) or 'every word'}", "; ".join(support)
        if words and set(words) <= set(answer_tokens(question)):
            return "answer in question", None, "; ".join(support)
        if two_hop:
            assert second_quote is not None
            if find_quote(quote, "", second_chunk) is not None:
                return (
                    "answerable from one chunk",
                    "the first quote is also in the second chunk",
                    "; ".join(support),
                )
            if find_quote(second_quote, "", chunk) is not None:
                return (
                    "answerable from one chunk",
                    "the second quote is also in the first chunk",
                    "; ".join(support),
                )
            if answer_supported(answer, context or "")[0]:
                return (
                    "answerable from one chunk",
                    "the answer is also in the first chunk",
                    "; ".join(support),
                )
        return None, None, "; ".join(support)


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
