"""C4's heuristics (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
Text-to-Text Transformer", section 2.2; reference code: TensorFlow Datasets `c4_utils`): a refiner
removing the lines C4 removes and a filter dropping the documents C4 drops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Refiner, Verdict
from dataflow_operators._lib import wordlists as lists
from dataflow_operators._lib.arrow import text_column, word_and_line_counts
from dataflow_operators._lib.rules import Check, apply_checks, null_reason, threshold
from dataflow_operators._lib.textstats import TextBatch, list_offsets, re2_class
from dataflow_operators.text.flagged_words import (
    WordMatcher,
    check_word_list,
    load_word_list,
    word_list_digest,
)
from dataflow_operators.text.quality import sentence_counts

_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"


class C4LinesRefiner(Refiner):
    """Remove the lines C4 removes: no terminal punctuation, too few words, JavaScript, policies.

    The text is split on "\\n" and each line stripped of surrounding whitespace; a line is dropped
    if, in this order: a word (whitespace-separated) is longer than `max_word_chars`; after
    removing Wikipedia-style citations ("[1]", "[edit]", "[citation needed]") and stripping again,
    it does not end with one of `terminal_punctuation` or ends with "..."; it has fewer than
    `min_words` words; it contains "javascript" (any case); it contains a policy phrase (any case:
    "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use
    cookies"). Blank lines are always dropped. The kept lines, stripped and without citations,
    are joined with "\\n"; a text losing every line becomes "" (run `c4_rules_filter` next, which
    drops it for too few sentences, as C4 does). Null stays null.

    Inputs:
        text: the text to clean; rewritten in place.
    Outputs:
        (none: a refiner rewrites its input column)
    Params:
        terminal_punctuation: characters a kept line must end with (C4: . ? ! ").
        min_words: fewest words a kept line may have (C4: 3); null keeps short lines.
        max_word_chars: longest word a kept line may have (C4 code: 1000); null for no limit.
        remove_citations: remove "[1]", "[edit]", "[citation needed]" (default true).
        drop_javascript: drop lines mentioning JavaScript (default true).
        drop_policy: drop lines with a policy phrase (default true).
        policy_phrases: the policy phrases (default: C4's list above), matched case-insensitively.
    """

    name = "c4_lines_refiner"
    inputs = {"text": Port("text whose lines are filtered; rewritten in place")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        terminal_punctuation: str = Field(
            '.?!"', min_length=1, description='Characters a kept line must end with (C4: . ? ! ").'
        )
        min_words: int | None = Field(
            3, ge=1, description="Fewest whitespace-separated words in a kept line."
        )
        max_word_chars: int | None = Field(
            1000, ge=1, description="Drop lines with a longer word (code points)."
        )
        remove_citations: bool = Field(
            True, description="Remove [1], [edit] and [citation needed] from lines."
        )
        drop_javascript: bool = Field(True, description="Drop lines containing 'javascript' (any case).")
        drop_policy: bool = Field(True, description="Drop lines containing a policy phrase (any case).")
        policy_phrases: list[str] = Field(
            list(lists.C4_POLICY_PHRASES), description="Phrases marking policy/cookie notices."
        )

        @field_validator("policy_phrases")
        @classmethod
        def _nonempty(cls, phrases):
            if any(not p.strip() for p in phrases):
                raise ValueError("a policy phrase is empty")
            return phrases

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        params = self.params
        text = text_column(batch, "text")
        split = pc.split_pattern(text, "\n")
        lines = pc.utf8_trim_whitespace(split.flatten())
        keep = pc.greater(pc.binary_length(lines), 0)
        if params.max_word_chars is not None:
            keep = pc.and_(keep, pc.invert(_has_long_word(lines, params.max_word_chars)))
        if params.remove_citations:
            lines = pc.utf8_rtrim_whitespace(pc.replace_substring_regex(lines, _CITATION, ""))
        if params.terminal_punctuation:
            ends = pc.match_substring_regex(lines, re2_class(params.terminal_punctuation) + r"\z")
            keep = pc.and_(keep, pc.and_(ends, pc.invert(pc.ends_with(lines, "..."))))
        if params.min_words is not None:
            words, _ = word_and_line_counts(lines)
            keep = pc.and_(keep, pc.greater_equal(words, params.min_words))
        lowered = pc.utf8_lower(lines)
        if params.drop_javascript:
            keep = pc.and_(keep, pc.invert(pc.match_substring(lowered, "javascript")))
        if params.drop_policy and params.policy_phrases:
            pattern = "|".join(_literal(p.lower()) for p in params.policy_phrases)
            keep = pc.and_(keep, pc.invert(pc.match_substring_regex(lowered, pattern)))
        kept_before = np.zeros(len(lines) + 1, np.int64)
        np.cumsum(keep.to_numpy(zero_copy_only=False), out=kept_before[1:])
        offsets = pa.array(kept_before[list_offsets(split)])
        rebuilt = pa.LargeListArray.from_arrays(offsets, pc.filter(lines, keep), mask=text.is_null())
        return {"text": pc.binary_join(rebuilt, pa.scalar("\n", lines.type)).cast(text.type)}


def _literal(text: str) -> str:
    return "".join(c if c.isalnum() or c == " " else f"\\x{{{ord(c):X}}}" for c in text)


def _has_long_word(lines: pa.Array, limit: int) -> pa.Array:
    """Lines holding a whitespace-separated word of more than `limit` code points."""
    long_lines = pc.greater(pc.utf8_length(lines), limit).to_numpy(zero_copy_only=False)
    found = np.zeros(len(lines), bool)
    for i in np.flatnonzero(long_lines):  # rare: only lines longer than the limit
        found[i] = max(map(len, lines[int(i)].as_py().split()), default=0) > limit
    return pa.array(found)


class C4RulesFilter(Filter):
    """Drop documents C4 drops: "lorem ipsum", curly brackets, too few sentences, bad words.

    C4 removes whole pages containing "lorem ipsum" (any case) or a curly bracket "{", pages with
    fewer than 5 sentences after line filtering, and pages with a word of a bad-word list. Run
    `c4_lines_refiner` first for C4's order (C4 checks these on the kept lines only). Sentences are
    counted as `structure_evaluator` counts them (terminal punctuation groups, a heuristic where C4
    used a trained sentence splitter). Bad words are matched as in `flagged_words_evaluator`.
    Reasons: "contains lorem ipsum", "contains {", "sentences < 5", "contains a bad word".

    Inputs:
        text: the document text.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        drop_lorem_ipsum: drop documents containing "lorem ipsum" (default true).
        drop_curly_bracket: drop documents containing "{" (default true).
        min_sentences: fewest sentences a kept document has (C4: 5); null switches it off.
        bad_words: words whose presence drops a document (default none).
        bad_words_file: file with one bad word per line, relative to the current directory.
    """

    name = "c4_rules_filter"
    inputs = {"text": Port("document text")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        drop_lorem_ipsum: bool = Field(
            True, description="Drop documents containing 'lorem ipsum' (any case)."
        )
        drop_curly_bracket: bool = Field(True, description="Drop documents containing '{'.")
        min_sentences: int | None = Field(5, ge=1, description="Fewest sentences a kept document has.")
        bad_words: list[str] = Field([], description="Words whose presence drops a document.")
        bad_words_file: str | None = Field(
            None, description="File of bad words, one per line, relative to the CWD."
        )

        @field_validator("bad_words")
        @classmethod
        def _single_words(cls, words):
            check_word_list(words, "bad_words")
            return words

        @model_validator(mode="after")
        def _file_exists(self):
            if self.bad_words_file is not None:
                if not Path(self.bad_words_file).is_file():
                    raise ValueError(
                        f"word list `{self.bad_words_file}` not found (paths are relative to the CWD)"
                    )
            return self

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        words = list(self.params.bad_words)
        if self.params.bad_words_file is not None:
            extra = load_word_list(self.params.bad_words_file)
            try:
                check_word_list(extra, f"`{self.params.bad_words_file}`")
            except ValueError as exc:
                raise DataflowError(str(exc)) from None
            words += extra
        self.matcher = WordMatcher(words) if words else None
        self._list_digest = word_list_digest(extra) if self.params.bad_words_file is not None else None

    def fingerprint_extra(self) -> dict:
        """The content of `bad_words_file`, so editing the file reruns the stage."""
        return {} if self._list_digest is None else {"bad_words_file_sha256": self._list_digest}

    def filter(self, batch: Batch) -> Verdict:
        tb = TextBatch(text_column(batch, "text"))
        checks: list[Check] = []
        if self.params.drop_lorem_ipsum:
            checks.append(("contains lorem ipsum", lambda tb: _contains(tb, "lorem ipsum", ignore_case=True)))
        if self.params.drop_curly_bracket:
            checks.append(("contains {", lambda tb: _contains(tb, "{")))
        if self.params.min_sentences is not None:
            checks.append(threshold("sentences", "<", self.params.min_sentences, sentence_counts))
        if self.matcher is not None:
            checks.append(("contains a bad word", lambda tb: self.matcher.counts(tb) > 0))
        return apply_checks(tb, checks, null_reason(self))


def _contains(tb: TextBatch, pattern: str, ignore_case: bool = False) -> np.ndarray:
    return pc.match_substring(tb.array, pattern, ignore_case=ignore_case).to_numpy(zero_copy_only=False)
