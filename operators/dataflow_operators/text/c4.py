"""C4's heuristics (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
Text-to-Text Transformer", section 2.2; reference code: TensorFlow Datasets `c4_utils`): a refiner
removing the lines C4 removes and a filter dropping the documents C4 drops.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Refiner, Verdict
from dataflow_operators._lib import wordlists as lists
from dataflow_operators._lib.arrow import HORIZONTAL_SPACE, text_column, word_and_line_counts
from dataflow_operators._lib.rules import Check, apply_checks, null_reason, threshold
from dataflow_operators._lib.textstats import TextBatch, list_offsets, re2_class, row_of, segment_sum
from dataflow_operators.text.flagged_words import (
    WordMatcher,
    check_word_list,
    load_word_list,
    word_list_digest,
)
from dataflow_operators.text.quality import sentence_counts

_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"


# Python's `str.splitlines()` boundaries, which C4's reference code splits pages on.
_LINE_BREAK = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"


_RARE_BREAK = r"[\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"


# A whitespace character (as `str.isspace()`) and a word (a run of anything else), for RE2.
_SPACE = f"[\\n\\r\\x{{85}}\\x{{2028}}\\x{{2029}}{HORIZONTAL_SPACE}]"


_WORD = f"[^\\n\\r\\x{{85}}\\x{{2028}}\\x{{2029}}{HORIZONTAL_SPACE}]+"


class C4LineParams(BaseModel):
    """The line rules shared by `c4_lines_refiner` and `c4_rules_filter` (same names, defaults)."""

    model_config = ConfigDict(extra="forbid")

    terminal_punctuation: str = Field(
        '.?!"', min_length=1, description='Characters a kept line must end with (C4: . ? ! ").'
    )
    min_words: int | None = Field(3, ge=1, description="Fewest whitespace-separated words in a kept line.")
    max_word_chars: int | None = Field(1000, ge=1, description="Drop lines with a longer word (code points).")
    remove_citations: bool = Field(True, description="Remove [1], [edit] and [citation needed] from lines.")
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


@dataclass
class C4Lines:
    """C4's line pass over a batch: each line's fate, in the reference's order of checks.

    `lines` are the stripped lines (citations removed) of all rows, `offsets` their rows' bounds.
    `kept`: the line passes every line rule. `lorem` / `curly`: the line reaches the page checks
    (passes the long-word, end-mark and word-count rules) and would drop the whole page: C4 checks
    "lorem ipsum" first, then removes JavaScript lines, then checks "{", then removes policy
    lines, so a line mentioning JavaScript never drops a page for its "{", while a policy line
    does. A line that is none of these is removed by a line rule.
    """

    text: pa.Array
    lines: pa.Array
    offsets: np.ndarray
    kept: np.ndarray
    lorem: np.ndarray
    curly: np.ndarray

    def rebuild(self, keep: np.ndarray) -> pa.Array:
        """The texts made of their lines where `keep`, joined with "\\n" (null stays null)."""
        kept_before = np.zeros(len(self.lines) + 1, np.int64)
        np.cumsum(keep, out=kept_before[1:])
        offsets = pa.array(kept_before[self.offsets])
        rebuilt = pa.LargeListArray.from_arrays(
            offsets, pc.filter(self.lines, pa.array(keep)), mask=self.text.is_null()
        )
        return pc.binary_join(rebuilt, pa.scalar("\n", self.lines.type)).cast(self.text.type)


def c4_lines(
    text: pa.Array, params: C4LineParams, lorem_drops: bool = True, curly_drops: bool = True
) -> C4Lines:
    """Apply C4's line rules to every line of `text` (see `C4Lines`); `lorem_drops` and
    `curly_drops` say whether those lines drop their page (else they go on to the next checks)."""
    if pc.any(pc.match_substring_regex(text, _RARE_BREAK)).as_py():
        split = pc.split_pattern_regex(text, _LINE_BREAK)
    else:  # the usual case, 5 times faster
        split = pc.split_pattern(text, "\n")
    lines = pc.utf8_trim_whitespace(split.flatten())
    reach = pc.greater(pc.binary_length(lines), 0).to_numpy(zero_copy_only=False)
    if params.max_word_chars is not None:
        reach &= ~_has_long_word(lines, params.max_word_chars)
    if params.remove_citations:
        # C4 does not strip again after removing a citation ("Fact. [1]" then ends with a space
        # and is dropped for its end mark); stripping keeps such lines, as the removal intends.
        lines = pc.utf8_rtrim_whitespace(pc.replace_substring_regex(lines, _CITATION, ""))
    ends = pc.match_substring_regex(lines, re2_class(params.terminal_punctuation) + r"\z")
    ends = pc.and_(ends, pc.invert(pc.ends_with(lines, "...")))
    reach &= ends.to_numpy(zero_copy_only=False)
    if params.min_words is not None:
        reach &= _at_least_words(lines, params.min_words)
    lowered = pc.utf8_lower(lines)

    def has(pattern: str, source: pa.Array = lowered) -> np.ndarray:
        return pc.match_substring(source, pattern).to_numpy(zero_copy_only=False)

    open_ = reach.copy()  # lines still going through the checks
    lorem = open_ & has("lorem ipsum") if lorem_drops else np.zeros_like(reach)
    open_ &= ~lorem
    if params.drop_javascript:
        open_ &= ~has("javascript")
    curly = open_ & has("{", lines) if curly_drops else np.zeros_like(reach)
    open_ &= ~curly
    if params.drop_policy and params.policy_phrases:
        pattern = "|".join(_literal(p.lower()) for p in params.policy_phrases)
        open_ &= ~pc.match_substring_regex(lowered, pattern).to_numpy(zero_copy_only=False)
    return C4Lines(text, lines, list_offsets(split), open_, lorem, curly)


class C4LinesRefiner(Refiner):
    """Remove the lines C4 removes: no terminal punctuation, too few words, JavaScript, policies.

    C4's line rules (Raffel et al. 2020, section 2.2; the reference code is TensorFlow Datasets'
    `c4_utils.clean_page`), in its order. The text is split into lines as Python's
    `str.splitlines()` splits it and each line stripped of surrounding whitespace; a line is
    removed if: it is blank; a word (whitespace-separated) is longer than `max_word_chars`; after
    removing Wikipedia-style citations ("[1]", "[edit]", "[citation needed]") and stripping
    again, it does not end with one of `terminal_punctuation` or ends with "..."; it has fewer
    than `min_words` words; it contains "javascript" (any case); it contains a policy phrase (any
    case: "terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
    "use cookies"). A line on which C4 drops the whole page instead is kept, whatever follows: one
    passing the first three rules and containing "lorem ipsum" (any case), or "{" without
    "javascript" (C4 checks "{" before the policy phrases), so that `c4_rules_filter` still drops
    the page when it runs after this refiner. The kept lines, stripped and without citations, are
    joined with "\\n"; a text losing every line becomes "" (`c4_rules_filter` drops it for too few
    sentences, as C4 does). Null stays null.

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
    version = "2"  # C4's order: lines that drop the page are kept for c4_rules_filter; splitlines
    inputs = {"text": Port("text whose lines are filtered; rewritten in place")}

    class Params(C4LineParams):
        pass

    def refine(self, batch: Batch) -> dict[str, pa.Array]:
        found = c4_lines(text_column(batch, "text"), self.params)
        return {"text": found.rebuild(found.kept | found.lorem | found.curly)}


def _literal(text: str) -> str:
    return "".join(c if c.isalnum() or c == " " else f"\\x{{{ord(c):X}}}" for c in text)


def _at_least_words(lines: pa.Array, count: int) -> np.ndarray:
    """Lines holding at least `count` whitespace-separated words (as `str.split()`)."""
    if count > 1000:  # beyond RE2's repetition limit
        words, _ = word_and_line_counts(lines)
        return pc.greater_equal(words, count).to_numpy(zero_copy_only=False)
    pattern = f"{_WORD}(?:{_SPACE}+{_WORD}){{{count - 1}}}"
    return pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False)


def _has_long_word(lines: pa.Array, limit: int) -> np.ndarray:
    """Lines holding a whitespace-separated word of more than `limit` code points."""
    long_lines = pc.greater(pc.utf8_length(lines), limit).to_numpy(zero_copy_only=False)
    found = np.zeros(len(lines), bool)
    for i in np.flatnonzero(long_lines):  # rare: only lines longer than the limit
        found[i] = max(map(len, lines[int(i)].as_py().split()), default=0) > limit
    return found


class C4RulesFilter(Filter):
    """Drop documents C4 drops: "lorem ipsum", curly brackets, too few sentences, bad words.

    C4's page rules (Raffel et al. 2020, section 2.2; reference code: TensorFlow Datasets'
    `c4_utils.clean_page`), applied after C4's line rules exactly as the reference orders them, so
    the filter can run on the raw text, before `c4_lines_refiner` (or after it: the result is the
    same). Each line goes through the checks of `c4_lines_refiner` (same params, same defaults) in
    C4's order: blank, a too-long word, no terminal punctuation (after citation removal), too few
    words; a line passing those drops the whole page if it contains "lorem ipsum" (any case);
    else it is removed if it mentions JavaScript; else it drops the page if it contains "{"; else
    it is removed if it holds a policy phrase. So a line without terminal punctuation never drops
    a page for its "{" (C4 removes it first), and a policy line with "{" does (C4 checks "{"
    first). Then the page is dropped if its kept lines hold fewer than `min_sentences` sentences,
    or a bad word. Sentences are counted per kept line as `structure_evaluator` counts them
    (terminal punctuation groups: a heuristic where C4 used NLTK's Punkt splitter) and summed;
    bad words are matched in the kept lines as in `flagged_words_evaluator`.
    Reasons: "contains lorem ipsum" or "contains {" (whichever line comes first), "sentences <
    5", "contains a bad word".

    Inputs:
        text: the document text.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        drop_lorem_ipsum: drop documents with a "lorem ipsum" line, as above (default true).
        drop_curly_bracket: drop documents with a "{" line, as above (default true).
        min_sentences: fewest sentences the kept lines hold (C4: 5); null switches it off.
        bad_words: words whose presence in a kept line drops a document (default none).
        bad_words_file: file with one bad word per line, relative to the current directory.
        terminal_punctuation: characters a kept line must end with (C4: . ? ! ").
        min_words: fewest words a kept line may have (C4: 3); null keeps short lines.
        max_word_chars: longest word a kept line may have (C4 code: 1000); null for no limit.
        remove_citations: remove "[1]", "[edit]", "[citation needed]" (default true).
        drop_javascript: remove lines mentioning JavaScript (default true).
        drop_policy: remove lines with a policy phrase (default true).
        policy_phrases: the policy phrases (default: C4's list), matched case-insensitively.
    """

    name = "c4_rules_filter"
    version = "2"  # C4's order: page rules see the lines C4's line rules let through
    inputs = {"text": Port("document text")}

    class Params(C4LineParams):
        drop_lorem_ipsum: bool = Field(
            True, description="Drop documents with a 'lorem ipsum' line (any case)."
        )
        drop_curly_bracket: bool = Field(True, description="Drop documents with a '{' line.")
        min_sentences: int | None = Field(5, ge=1, description="Fewest sentences the kept lines hold.")
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
        p = self.params
        text = text_column(batch, "text")
        tb = TextBatch(text)
        found = c4_lines(text, p, p.drop_lorem_ipsum, p.drop_curly_bracket)
        # The page rule a row meets first: its first line that drops the page.
        first = np.zeros(tb.n, np.int8)  # 0 none, 1 lorem ipsum, 2 "{"
        code = np.where(found.lorem, 1, np.where(found.curly, 2, 0)).astype(np.int8)
        hits = np.flatnonzero(code)
        if len(hits):
            rows, where = np.unique(row_of(hits, found.offsets), return_index=True)
            first[rows] = code[hits[where]]
        kept = found.kept
        checks: list[Check] = [
            ("contains lorem ipsum", lambda _: first == 1),
            ("contains {", lambda _: first == 2),
        ]
        if p.min_sentences is not None:

            def sentences(_: TextBatch) -> np.ndarray:
                per_line = np.zeros(len(kept), np.int64)
                per_line[kept] = sentence_counts(TextBatch(pc.filter(found.lines, pa.array(kept))))
                return segment_sum(per_line, found.offsets)

            checks.append(threshold("sentences", "<", p.min_sentences, sentences))
        if self.matcher is not None:

            def bad(_: TextBatch) -> np.ndarray:
                per_line = np.zeros(len(kept), np.int64)
                per_line[kept] = self.matcher.counts(TextBatch(pc.filter(found.lines, pa.array(kept))))
                return segment_sum(per_line, found.offsets) > 0

            checks.append(("contains a bad word", bad))
        return apply_checks(tb, checks, null_reason(self))
