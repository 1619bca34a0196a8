"""Drop degenerate chains of thought: the same word n-grams over and over."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Filter, Port, Verdict


def repetition(text: str, n: int) -> tuple[float, int]:
    """(share of word n-gram windows repeating an earlier window, most occurrences of one n-gram)."""
    words = text.lower().split()
    windows = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not windows:
        return 0.0, 0
    counts = Counter(windows)
    return 1 - len(counts) / len(windows), max(counts.values())


class NgramRepetitionFilter(Filter):
    """Drop texts that repeat the same word n-grams, as looping chains of thought do.

    Words are lower-cased and whitespace-separated. A text is dropped when the share of its
    n-gram windows that repeat an earlier window exceeds `max_repeated_ratio`, or when one n-gram
    occurs more than `max_occurrences` times. Texts shorter than n words are kept.

    Inputs:
        text: the chain of thought or solution.
    Outputs:
        (none: rows are kept or dropped with "repeated 4-grams > 0.3" or "a 4-gram occurs > 20 times")
    Params:
        n: words per n-gram.
        max_repeated_ratio: largest share of repeated n-gram windows kept.
        max_occurrences: most occurrences of any one n-gram kept (omit for no limit).
    """

    name = "ngram_repetition_filter"
    inputs = {"text": Port("the chain of thought")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int = Field(4, ge=1, le=50, description="Words per n-gram.")
        max_repeated_ratio: float = Field(
            0.3, ge=0, le=1, description="Largest share of n-gram windows repeating an earlier one kept."
        )
        max_occurrences: int | None = Field(
            None, ge=1, description="Most occurrences of any one n-gram kept (omit for no limit)."
        )

    def filter(self, batch: Batch) -> Verdict:
        p = self.params
        keep, reason = [], []
        for text in batch.values("text"):
            ratio, most = repetition(text or "", p.n)
            if ratio > p.max_repeated_ratio:
                keep.append(False), reason.append(f"repeated {p.n}-grams > {p.max_repeated_ratio:g}")
            elif p.max_occurrences is not None and most > p.max_occurrences:
                keep.append(False), reason.append(f"a {p.n}-gram occurs > {p.max_occurrences} times")
            else:
                keep.append(True), reason.append(None)
        return Verdict(keep, reason)
