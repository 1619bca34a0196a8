"""Quality signals of a text: character classes, word statistics, structure and flagged words.

Each evaluator groups related signals; its `signals` param selects which ones to compute (all by
default) and only those become columns. Everything is vectorised over the batch (numpy and Arrow
kernels, which release the GIL). A null text gives null signals; an empty text gives 0 for
counts and 0.0 for ratios (every ratio is 0.0 when its denominator is 0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataflow_cli.operator import Batch, Port
from dataflow_operators._lib import wordlists as lists
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.ngrams import unique
from dataflow_operators._lib.textstats import (
    DIGIT,
    LETTER,
    OTHER,
    PUNCT,
    SPACE,
    UPPER,
    SignalEvaluator,
    TextBatch,
    check_signals,
    classify,
    ratio,
    re2_class,
    row_of,
    segment_sum,
)

F64, I64 = pa.float64(), pa.int64()


SIGNALS_DESCRIPTION = "Which outputs to compute (default: all); the others are neither computed nor written."


CHAR_RATIO_OUTPUTS = {
    "alpha_ratio": Port("letters (Unicode categories L*) / code points", "float64"),
    "digit_ratio": Port("decimal digits (category Nd) / code points", "float64"),
    "upper_ratio": Port("uppercase and titlecase letters (Lu, Lt) / letters", "float64"),
    "whitespace_ratio": Port("whitespace code points (as str.isspace) / code points", "float64"),
    "special_char_ratio": Port(
        "code points that are neither alphanumeric (L*, M*, N*) nor whitespace / code points", "float64"
    ),
}


class CharRatioEvaluator(SignalEvaluator):
    """Measure the share of letters, digits, uppercase, whitespace and special characters.

    Characters are Unicode code points classified by their general category (Python's
    `unicodedata`). A *special* character is one that is neither alphanumeric (a letter L*, a
    combining mark M* or a number N*) nor whitespace: punctuation, symbols, emoji, control and
    format characters (e.g. ZWJ), private use and unassigned code points. Combining marks count
    as alphanumeric (not special) but not as letters, so the five ratios need not sum to 1.
    CJK ideographs and kana are letters (category Lo). Null text gives nulls; "" gives 0.0.

    Inputs:
        text: the text to measure.
    Outputs:
        alpha_ratio: letters (L*) / code points.
        digit_ratio: decimal digits (Nd) / code points.
        upper_ratio: uppercase and titlecase letters (Lu, Lt) / letters (0.0 without letters).
        whitespace_ratio: whitespace (as `str.isspace()`) / code points.
        special_char_ratio: special characters (defined above) / code points.
    Params:
        signals: which outputs to compute (default: all).
    """

    name = "char_ratio_evaluator"
    inputs = {"text": Port("text to measure")}
    outputs = CHAR_RATIO_OUTPUTS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        signals: list[str] | None = Field(None, description=SIGNALS_DESCRIPTION)

        @field_validator("signals")
        @classmethod
        def _known(cls, value):
            return check_signals(value, CHAR_RATIO_OUTPUTS)

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        tb = TextBatch(text_column(batch, "text"))
        counts = tb.class_counts
        total = counts.sum(axis=1)
        letters = counts[:, LETTER] + counts[:, UPPER]
        return self.compute(
            tb,
            {
                "alpha_ratio": (lambda: ratio(letters, total), F64),
                "digit_ratio": (lambda: ratio(counts[:, DIGIT], total), F64),
                "upper_ratio": (lambda: ratio(counts[:, UPPER], letters), F64),
                "whitespace_ratio": (lambda: ratio(counts[:, SPACE], total), F64),
                "special_char_ratio": (lambda: ratio(counts[:, OTHER] + counts[:, PUNCT], total), F64),
            },
        )


WORD_STATS_OUTPUTS = {
    "words": Port("whitespace-separated words", "int64"),
    "mean_word_length": Port("mean code points per word", "float64"),
    "unique_word_ratio": Port("distinct lowercased words / words", "float64"),
    "alpha_word_ratio": Port("words containing a letter / words", "float64"),
    "symbol_word_ratio": Port("max(count of '#', count of ellipses) / words", "float64"),
    "stop_word_ratio": Port("stop words of `language` / words (zh: per Han character)", "float64"),
    "stop_words": Port("number of stop words of `language` (zh: stop characters)", "int64"),
}


_HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x323AF))


def symbol_word_ratio(tb: TextBatch) -> np.ndarray:
    """Gopher's symbol-to-word ratio: max(#'#', #'...' + #'…') / words."""
    hashes = tb.count("#")
    ellipses = tb.count("...") + tb.count("…")
    return ratio(np.maximum(hashes, ellipses), tb.word_counts)


def alpha_word_ratio(tb: TextBatch) -> np.ndarray:
    offsets = tb.words[1]
    has_letter = tb.per_word(pc.match_substring_regex(tb.vocabulary[1], r"\pL"))
    return ratio(segment_sum(has_letter, offsets), np.diff(offsets))


def stop_word_counts(tb: TextBatch, words: frozenset[str]) -> np.ndarray:
    """Per row: words that, lowercased and stripped of edge punctuation, are in `words`."""
    return tb.words_in(pa.array(sorted(words), pa.string()))


def distinct_stop_words(tb: TextBatch, words: frozenset[str]) -> np.ndarray:
    """Per row: how many different words of `words` occur (matched as in `stop_word_counts`)."""
    return tb.distinct_words_in(pa.array(sorted(words), pa.string()))


def distinct_lowercase_words(tb: TextBatch) -> np.ndarray:
    """Per row: distinct words, compared lowercased."""
    vocabulary = tb.vocabulary[1]
    lower_ids = pc.dictionary_encode(pc.utf8_lower(vocabulary)).indices.to_numpy(zero_copy_only=False)
    ids = lower_ids.astype(np.uint64)[tb.word_ids]
    counts = np.diff(tb.words[1])
    keys = (np.repeat(np.arange(tb.n, dtype=np.uint64), counts) << np.uint64(32)) | ids
    return np.bincount((unique(keys) >> np.uint64(32)).astype(np.int64), minlength=tb.n)


def han_stop_counts(tb: TextBatch) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (Chinese stop characters, Han characters)."""
    stop = np.array(sorted(ord(c) for c in lists.STOP_CHARS_ZH), np.uint32)
    stops = np.zeros(tb.n, np.int64)
    han = np.zeros(tb.n, np.int64)
    for d0, d1, cps, offsets in tb.code_point_chunks():
        if cps.dtype == np.uint8:
            continue
        is_han = np.zeros(len(cps), bool)
        for low, high in _HAN_RANGES:
            is_han |= (cps >= low) & (cps <= high)
        han[d0:d1] = segment_sum(is_han, offsets)
        stops[d0:d1] = segment_sum(np.isin(cps, stop), offsets)
    return stops, han


class WordStatsEvaluator(SignalEvaluator):
    """Measure word counts, lengths, variety, symbols and stop words of a text.

    Words are maximal runs of non-whitespace (as Python's `str.split()`, so unsegmented CJK text
    is one word per run). For list lookups (stop words) a word is lowercased and stripped of
    leading and trailing punctuation (ASCII punctuation, quotes, guillemets, dashes, ellipses).
    For `language: zh` the stop-word signals count Han characters instead of words: each Han
    character is a token and the list holds common function characters (的, 了, 是, ...). Null
    text gives nulls; every ratio is 0.0 for a text without words.

    Inputs:
        text: the text to measure.
    Outputs:
        words: number of whitespace-separated words (int64).
        mean_word_length: mean number of code points per word, i.e. non-whitespace code points /
            words.
        unique_word_ratio: distinct words (compared lowercased) / words.
        alpha_word_ratio: words containing at least one letter (L*) / words (Gopher).
        symbol_word_ratio: max(number of "#", number of ellipses) / words, where ellipses are
            non-overlapping "..." plus "…". Taking the max makes one threshold equal Gopher's "for
            either the hash symbol or the ellipsis".
        stop_word_ratio: stop words / words (zh: stop characters / Han characters).
        stop_words: number of stop words (zh: stop characters) (int64).
    Params:
        language: stop-word list: en (default), de, fr, es, it, pt, nl or zh.
        signals: which outputs to compute (default: all).
    """

    name = "word_stats_evaluator"
    inputs = {"text": Port("text to measure")}
    outputs = WORD_STATS_OUTPUTS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        language: Literal["en", "de", "fr", "es", "it", "pt", "nl", "zh"] = Field(
            "en", description="Language of the stop-word list (zh counts Han characters)."
        )
        signals: list[str] | None = Field(None, description=SIGNALS_DESCRIPTION)

        @field_validator("signals")
        @classmethod
        def _known(cls, value):
            return check_signals(value, WORD_STATS_OUTPUTS)

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        tb = TextBatch(text_column(batch, "text"))
        language = self.params.language
        cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        def stops() -> tuple[np.ndarray, np.ndarray]:
            if "stops" not in cache:
                if language == "zh":
                    cache["stops"] = han_stop_counts(tb)
                else:
                    cache["stops"] = (stop_word_counts(tb, lists.STOP_WORDS[language]), tb.word_counts)
            return cache["stops"]

        def unique() -> np.ndarray:
            return ratio(distinct_lowercase_words(tb), np.diff(tb.words[1]))

        def mean_length() -> np.ndarray:
            counts = tb.class_counts
            return ratio(counts.sum(axis=1) - counts[:, SPACE], tb.word_counts)

        return self.compute(
            tb,
            {
                "words": (lambda: tb.word_counts, I64),
                "mean_word_length": (mean_length, F64),
                "unique_word_ratio": (unique, F64),
                "alpha_word_ratio": (lambda: alpha_word_ratio(tb), F64),
                "symbol_word_ratio": (lambda: symbol_word_ratio(tb), F64),
                "stop_word_ratio": (lambda: ratio(*stops()), F64),
                "stop_words": (lambda: stops()[0], I64),
            },
        )


STRUCTURE_OUTPUTS = {
    "sentences": Port("sentences, by terminal punctuation", "int64"),
    "bullet_line_ratio": Port("non-empty lines starting with a bullet / non-empty lines", "float64"),
    "ellipsis_line_ratio": Port("non-empty lines ending with an ellipsis / non-empty lines", "float64"),
    "punct_line_ratio": Port("non-empty lines ending with terminal punctuation / non-empty lines", "float64"),
    "short_line_ratio": Port("non-empty lines of at most `short_line_chars` / non-empty lines", "float64"),
    "newline_word_ratio": Port("newline characters / words", "float64"),
    "html_entities": Port("HTML character references such as &amp; &#39; &#x27;", "int64"),
    "longest_unpunctuated_run": Port("longest run of code points without punctuation (P*)", "int64"),
}


_SENTENCE = (
    f"{re2_class('.!?…؟۔।॥')}+{re2_class(lists.SENTENCE_CLOSERS)}*(?:\\s|\\z)"
    f"|{re2_class('。！？．｡')}+{re2_class(lists.SENTENCE_CLOSERS)}*"
)


_UNTERMINATED_TAIL = f"[\\pL\\pN][^{re2_class(lists.SENTENCE_END)[1:-1]}]*\\z"


_HTML_ENTITY = r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"


_BULLET_START = "^" + re2_class(lists.BULLETS)


_TERMINAL_END = re2_class(lists.TERMINAL_PUNCTUATION) + r"\z"


def sentence_counts(tb: TextBatch) -> np.ndarray:
    """Terminator groups ("." "!" "?" "…" and others, followed by whitespace or the end; CJK "。！？"
    anywhere) plus one for trailing text without a terminator."""
    ends = tb.count(_SENTENCE, regex=True)
    tail = pc.match_substring_regex(tb.array, _UNTERMINATED_TAIL).to_numpy(zero_copy_only=False)
    return ends + tail


def line_flags(tb: TextBatch, short_line_chars: int = 30) -> dict[str, np.ndarray]:
    """Per non-empty line: bullet start, ellipsis end, terminal punctuation end, short."""
    lines, _ = tb.lines
    return {
        "bullet": pc.match_substring_regex(lines, _BULLET_START),
        "ellipsis": pc.or_(pc.ends_with(lines, "..."), pc.ends_with(lines, "…")),
        "punct": pc.match_substring_regex(lines, _TERMINAL_END),
        "short": pc.less_equal(pc.utf8_length(lines), short_line_chars),
    }


def line_ratio(tb: TextBatch, flags: pa.Array) -> np.ndarray:
    offsets = tb.lines[1]
    return ratio(segment_sum(flags.to_numpy(zero_copy_only=False), offsets), np.diff(offsets))


def longest_unpunctuated_run(tb: TextBatch) -> np.ndarray:
    """Per row: the longest run of code points containing no punctuation (categories P*)."""
    longest = np.zeros(tb.n, np.int64)
    for d0, d1, cps, offsets in tb.code_point_chunks():
        rows = d1 - d0
        punct = np.flatnonzero(classify(cps) == PUNCT)
        # Shift row r's positions by r so each row gets its own end barrier; gaps between
        # consecutive barriers are runs, each attributed to the row of its closing barrier.
        row_ends = offsets[1:] + np.arange(rows)
        barriers = np.sort(np.concatenate([[-1], punct + row_of(punct, offsets), row_ends]))
        gaps = np.diff(barriers) - 1
        owner = np.searchsorted(row_ends, barriers[1:], "left")
        run = np.zeros(rows, np.int64)
        np.maximum.at(run, owner, gaps)
        longest[d0:d1] = run
    return longest


class StructureEvaluator(SignalEvaluator):
    """Measure the sentence, line and markup structure of a text.

    Lines are the text split on "\\n", each stripped of surrounding whitespace; blank lines are
    ignored and every line ratio is over the non-empty lines (0.0 if there are none). Bullets:
    `- * + • ‣ ⁃ ◦ ∙ · ● ○ ▪ ▫ ■ □ ► ▶ ▸ ➢ ➤ ✓ ✔`. Terminal punctuation: `. ! ? … " ” ’ ' »`, CJK
    `。！？．｡` and `؟ ۔ । ॥`. Sentences are counted as groups of terminators (`. ! ? …` and
    `؟ ۔ । ॥`, optionally followed by closing quotes or brackets, then whitespace or the end of the
    text; CJK `。！？．｡` anywhere) plus one if text containing a letter or digit follows the last
    terminator: a heuristic ("e.g. this" counts 2), not a sentence splitter. Null text gives
    nulls; "" gives 0 and 0.0.

    Inputs:
        text: the text to measure.
    Outputs:
        sentences: number of sentences, as defined above (int64).
        bullet_line_ratio: lines starting with a bullet / lines.
        ellipsis_line_ratio: lines ending with "..." or "…" / lines.
        punct_line_ratio: lines ending with terminal punctuation / lines.
        short_line_ratio: lines of at most `short_line_chars` code points / lines.
        newline_word_ratio: "\\n" characters / whitespace-separated words (FineWeb's list ratio).
        html_entities: number of HTML character references: `&name;` (2-32 alphanumerics starting
            with a letter), `&#digits;` and `&#xhex;` (int64).
        longest_unpunctuated_run: length of the longest run of code points without punctuation
            (categories P*); whitespace does not break a run (int64).
    Params:
        short_line_chars: the longest line, in code points, that counts as short (default 30).
        signals: which outputs to compute (default: all).
    """

    name = "structure_evaluator"
    inputs = {"text": Port("text to measure")}
    outputs = STRUCTURE_OUTPUTS

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        short_line_chars: int = Field(
            30, ge=1, description="Lines of at most this many code points are short."
        )
        signals: list[str] | None = Field(None, description=SIGNALS_DESCRIPTION)

        @field_validator("signals")
        @classmethod
        def _known(cls, value):
            return check_signals(value, STRUCTURE_OUTPUTS)

    def evaluate(self, batch: Batch) -> dict[str, pa.Array]:
        tb = TextBatch(text_column(batch, "text"))
        flags: dict[str, pa.Array] = {}

        def lines(kind: str) -> np.ndarray:
            if not flags:
                flags.update(line_flags(tb, self.params.short_line_chars))
            return line_ratio(tb, flags[kind])

        return self.compute(
            tb,
            {
                "sentences": (lambda: sentence_counts(tb), I64),
                "bullet_line_ratio": (lambda: lines("bullet"), F64),
                "ellipsis_line_ratio": (lambda: lines("ellipsis"), F64),
                "punct_line_ratio": (lambda: lines("punct"), F64),
                "short_line_ratio": (lambda: lines("short"), F64),
                "newline_word_ratio": (lambda: ratio(tb.count("\n"), tb.word_counts), F64),
                "html_entities": (lambda: tb.count(_HTML_ENTITY, regex=True), I64),
                "longest_unpunctuated_run": (lambda: longest_unpunctuated_run(tb), I64),
            },
        )
