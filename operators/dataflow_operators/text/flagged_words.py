"""Flagged (block-list) words: a word matcher and the evaluator counting flagged words."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Port
from dataflow_operators._lib import wordlists as lists
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.textstats import SignalEvaluator, TextBatch, check_signals, ratio
from dataflow_operators.text.quality import SIGNALS_DESCRIPTION

F64, I64 = pa.float64(), pa.int64()


FLAGGED_OUTPUTS = {
    "flagged_words": Port("occurrences of flagged words", "int64"),
    "flagged_word_ratio": Port("flagged words / words", "float64"),
}


def load_word_list(path: str) -> list[str]:
    """One entry per line; blank lines and lines starting with '#' are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataflowError(
            f"cannot read word list `{path}`: {exc}", hint="paths are relative to the CWD"
        ) from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


class FlaggedWordsEvaluator(SignalEvaluator):
    """Count flagged (block-list) words in a text and their share of its words.

    Each whitespace-separated word is lowercased and stripped of leading and trailing punctuation,
    then looked up in the list (lowercased too). Entries written in scripts without spaces (Han,
    Hiragana, Katakana, Thai) are instead counted as substrings of the lowercased text
    (non-overlapping occurrences). The default list is a small built-in list of common English
    adult, profanity and spam terms; pass `words` or `words_file` for a real block list. Null
    text gives nulls; a text without words gives 0 and 0.0.

    Inputs:
        text: the text to check.
    Outputs:
        flagged_words: number of flagged words (plus substring matches) (int64).
        flagged_word_ratio: flagged_words / whitespace-separated words (0.0 without words).
    Params:
        words: the flagged words (single words, no whitespace); omit for the built-in list.
        words_file: a UTF-8 file with one word per line ('#' starts a comment line), relative to
            the current directory; give `words` or `words_file`, not both.
        signals: which outputs to compute (default: all).
    """

    name = "flagged_words_evaluator"
    inputs = {"text": Port("text to check")}
    outputs = FLAGGED_OUTPUTS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        words: list[str] | None = Field(
            None,
            description="Flagged words (single words, matched case-insensitively); default: a small built-in list.",
        )
        words_file: str | None = Field(
            None, description="File with one flagged word per line, relative to the current directory."
        )
        signals: list[str] | None = Field(None, description=SIGNALS_DESCRIPTION)

        @field_validator("words")
        @classmethod
        def _single_words(cls, words):
            if words is not None:
                check_word_list(words, "words")
            return words

        @field_validator("signals")
        @classmethod
        def _known(cls, value):
            return check_signals(value, FLAGGED_OUTPUTS)

        @model_validator(mode="after")
        def _one_source(self):
            if self.words is not None and self.words_file is not None:
                raise ValueError("give `words` or `words_file`, not both")
            if self.words_file is not None and not Path(self.words_file).is_file():
                raise ValueError(f"word list `{self.words_file}` not found (paths are relative to the CWD)")
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        if self.params.words_file is not None:
            words = load_word_list(self.params.words_file)
            try:
                check_word_list(words, f"`{self.params.words_file}`")
            except ValueError as exc:
                raise DataflowError(str(exc)) from None
        else:
            words = (
                self.params.words if self.params.words is not None else sorted(lists.DEFAULT_FLAGGED_WORDS)
            )
        self.matcher = WordMatcher(words)
        self._list_digest = word_list_digest(words) if self.params.words_file is not None else None

    def fingerprint_extra(self) -> dict:
        """The content of `words_file`, so editing the file reruns the stage."""
        return {} if self._list_digest is None else {"words_file_sha256": self._list_digest}

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        tb = TextBatch(text_column(batch, "text"))
        counts: list[np.ndarray] = []

        def flagged() -> np.ndarray:
            if not counts:
                counts.append(self.matcher.counts(tb))
            return counts[0]

        return self.compute(
            tb,
            {
                "flagged_words": (flagged, I64),
                "flagged_word_ratio": (lambda: ratio(flagged(), tb.word_counts), F64),
            },
        )


def word_list_digest(words: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(set(words))).encode()).hexdigest()


def check_word_list(words: list[str], where: str) -> None:
    for word in words:
        if not word.strip():
            raise ValueError(f"{where}: an entry is empty")
        if len(word.split()) != 1:
            raise ValueError(f"{where}: `{word}` is not a single word (entries must not contain whitespace)")


class WordMatcher:
    """Counts occurrences of a word list in texts (see FlaggedWordsEvaluator for the rules)."""

    def __init__(self, words: list[str]):
        no_space = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
        lowered = sorted({w.lower() for w in words}, key=lambda w: (-len(w), w))
        self.substrings = [w for w in lowered if no_space.search(w)]
        self.words = pa.array([w for w in lowered if not no_space.search(w)], pa.string())
        self.pattern = "|".join(_re2_escape(w) for w in self.substrings) or None

    def counts(self, tb: TextBatch) -> np.ndarray:
        total = tb.words_in(self.words)
        if self.pattern:
            lowered = pc.utf8_lower(tb.array)
            total = total + pc.count_substring_regex(lowered, self.pattern).to_numpy(zero_copy_only=False)
        return total


def _re2_escape(text: str) -> str:
    return "".join(c if c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)
