"""Quality-signal evaluators: char_ratio, word_stats, structure, flagged_words, repetition."""

import json
import random
import re
import unicodedata
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from dataflow_operators._lib.ngrams import bucket_dup_mask, dup_mask, window_hashes
from dataflow_operators.text.flagged_words import FlaggedWordsEvaluator
from dataflow_operators.text.quality import CharRatioEvaluator, StructureEvaluator, WordStatsEvaluator
from dataflow_operators.text.repetition import RepetitionEvaluator
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli import registry
from dataflow_cli.cli.app import app
from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch

BIG = 5 * 1024 * 1024
NEW_OPERATORS = [
    "char_ratio_evaluator",
    "word_stats_evaluator",
    "structure_evaluator",
    "flagged_words_evaluator",
    "repetition_evaluator",
    "c4_lines_refiner",
    "c4_rules_filter",
    "fineweb_rules_filter",
    "gopher_rules_filter",
    "instruction_response_evaluator",
    "instruction_response_filter",
    "refusal_filter",
    "response_copies_instruction_filter",
    "conversation_format_filter",
]
SUFFIX = {"generate": "generator", "evaluate": "evaluator", "filter": "filter", "refine": "refiner"}


def evaluate(op, texts, column="text"):
    table = pa.table({column: pa.array(texts, pa.string()), "_id": [str(i) for i in range(len(texts))]})
    result = op.process(Batch(table, op.input_columns))
    assert set(result) == set(op.outputs)
    out = {}
    for name, values in result.items():
        array = pa.array(values)
        assert array.type == pa.type_for_alias(op.outputs[name].type), name
        assert len(array) == len(texts)
        out[name] = array.to_pylist()
    return out


def signals(cls, texts, **params):
    return evaluate(cls(cls.Params(**params)), texts)


def approx(values):
    return [None if v is None else pytest.approx(v) for v in values]


# --- conventions of every operator added with these modules ---


def test_new_operators_are_registered():
    assert set(NEW_OPERATORS) <= set(registry.entries())


# --- char_ratio_evaluator ---


def test_char_ratios_hand_computed():
    result = signals(
        CharRatioEvaluator,
        [
            "Hello, World! 42",
            "Ça va? 日本 ½ 😀",
            "e\u0301",
            "👨\u200d👩\u200d👧",
            "❤\ufe0f",
            "a\U000e0100\U000e0001\U0010fffd",
            "",
            None,
            "ＡＢｃ　１",
        ],
    )
    # "Hello, World! 42": 16 code points; letters H,e,l,l,o,W,o,r,l,d = 10 (upper H, W = 2);
    # digits 4, 2; spaces 2; special "," and "!" = 2.
    # "Ça va? 日本 ½ 😀": 13 code points; letters Ç,a,v,a,日,本 = 6 (upper Ç); "½" is a number
    # (No), neither digit nor special; 4 spaces; special "?" and "😀".
    # "e\u0301": a letter and a combining mark (alphanumeric, not a letter).
    # The family emoji: 3 emoji (So) and 2 ZWJ (Cf), all special.
    # "❤\ufe0f": the heart is special, the variation selector is a mark.
    # "a" + plane-14 variation selector (mark) + a tag (Cf) + private use (Co): 2 special of 4.
    # Fullwidth "ＡＢｃ　１": 3 letters (2 upper), ideographic space, fullwidth digit 1 (Nd).
    assert result["alpha_ratio"] == approx([10 / 16, 6 / 13, 0.5, 0.0, 0.0, 0.25, 0.0, None, 3 / 5])
    assert result["digit_ratio"] == approx([2 / 16, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None, 1 / 5])
    assert result["upper_ratio"] == approx([2 / 10, 1 / 6, 0.0, 0.0, 0.0, 0.0, 0.0, None, 2 / 3])
    assert result["whitespace_ratio"] == approx([2 / 16, 4 / 13, 0.0, 0.0, 0.0, 0.0, 0.0, None, 1 / 5])
    assert result["special_char_ratio"] == approx([2 / 16, 2 / 13, 0.0, 1.0, 0.5, 0.5, 0.0, None, 0.0])


def _char_reference(text):
    n = len(text)
    if n == 0:
        return [0.0] * 5
    cats = [unicodedata.category(c) for c in text]
    letters = sum(c[0] == "L" for c in cats)
    upper = sum(c in ("Lu", "Lt") for c in cats)
    space = sum(c.isspace() for c in text)
    special = sum(not ch.isspace() and cat[0] not in "LMN" for ch, cat in zip(text, cats, strict=True))
    return [
        letters / n,
        sum(c == "Nd" for c in cats) / n,
        upper / letters if letters else 0.0,
        space / n,
        special / n,
    ]


def test_char_ratios_match_python_on_random_text():
    rng = random.Random(11)
    pool = [chr(c) for c in range(0x20, 0x3100) if not 0xD800 <= c < 0xE000]
    pool += ["😀", "\U0002f800", "\U000e0101", "\U000e0001", "\U0010fffd", "\u200d", "\x1c", "\u3000"]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    texts += ["plain ascii only, 100%!"] * 3
    result = signals(CharRatioEvaluator, texts)
    names = ["alpha_ratio", "digit_ratio", "upper_ratio", "whitespace_ratio", "special_char_ratio"]
    for i, text in enumerate(texts):
        assert [result[name][i] for name in names] == pytest.approx(_char_reference(text)), repr(text)


def test_char_ratios_of_a_huge_row():
    result = signals(CharRatioEvaluator, ["ab1 " * (BIG // 4), "x"])
    assert result["alpha_ratio"] == approx([0.5, 1.0])
    assert result["digit_ratio"] == approx([0.25, 0.0])
    assert result["whitespace_ratio"] == approx([0.25, 0.0])


def test_signals_selects_outputs_and_columns():
    op = CharRatioEvaluator(
        CharRatioEvaluator.Params(signals=["special_char_ratio"]), outputs={"special_char_ratio": "special"}
    )
    assert list(op.outputs) == ["special_char_ratio"]
    assert op.written_columns() == ["special"]
    assert op.transform_schema({"text": "string"}) == {"text": "string", "special": "float64"}
    assert evaluate(op, ["a!"]) == {"special_char_ratio": [0.5]}
    # The class still declares every output (for `operators show` and validation).
    assert len(CharRatioEvaluator.outputs) == 5


def test_signals_validation():
    with pytest.raises(ValidationError, match="unknown signal `alpha` \\(choose from: alpha_ratio"):
        CharRatioEvaluator.Params(signals=["alpha"])
    with pytest.raises(ValidationError, match="signal `alpha_ratio` is listed twice"):
        CharRatioEvaluator.Params(signals=["alpha_ratio", "alpha_ratio"])
    with pytest.raises(ValidationError, match="give at least one signal"):
        CharRatioEvaluator.Params(signals=[])
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        CharRatioEvaluator.Params(signal=["alpha_ratio"])
    with pytest.raises(DataflowError, match="output `digit_ratio` .* is bound but not listed in `signals`"):
        CharRatioEvaluator(CharRatioEvaluator.Params(signals=["alpha_ratio"]), outputs={"digit_ratio": "d"})


def test_non_text_column_is_an_error():
    op = CharRatioEvaluator()
    with pytest.raises(DataflowError, match="must be text"):
        op.process(Batch(pa.table({"text": [1, 2], "_id": ["0", "1"]}), op.input_columns))


# --- word_stats_evaluator ---


def test_word_stats_hand_computed():
    result = signals(
        WordStatsEvaluator,
        ["The cat sat on the mat.", "## Title ... #tag 123 …", "", None, "   ", "日本語のテキスト 😀"],
    )
    # Row 0: 6 words, 18 non-space code points -> 3.0; lowercased distinct words: the, cat,
    # sat, on, mat. -> 5/6; stop words (the, on, the) -> 3/6.
    # Row 1: 6 words; 2+5+3+4+3+1 = 18 code points -> 3.0; "#" x3, ellipses "..." and "…" = 2:
    # max(3, 2) / 6 = 0.5; words with a letter: Title, #tag -> 2/6.
    # Row 5: CJK without spaces is one word (8 code points) plus the emoji.
    assert result["words"] == [6, 6, 0, None, 0, 2]
    assert result["mean_word_length"] == approx([3.0, 3.0, 0.0, None, 0.0, 4.5])
    assert result["unique_word_ratio"] == approx([5 / 6, 1.0, 0.0, None, 0.0, 1.0])
    assert result["alpha_word_ratio"] == approx([1.0, 2 / 6, 0.0, None, 0.0, 0.5])
    assert result["symbol_word_ratio"] == approx([0.0, 0.5, 0.0, None, 0.0, 0.0])
    assert result["stop_word_ratio"] == approx([0.5, 0.0, 0.0, None, 0.0, 0.0])
    assert result["stop_words"] == [3, 0, 0, None, 0, 0]


@pytest.mark.parametrize(
    ("language", "text", "stops", "ratio"),
    [
        ("en", "THE Cat, and (the) dog!", 3, 3 / 5),  # the, and, (the): case and edge punctuation
        ("de", "Der Hund und die Katze", 3, 3 / 5),  # der, und, die
        ("fr", "Le chat et la souris", 3, 3 / 5),  # le, et, la
        ("es", "El perro y el gato", 3, 3 / 5),  # el, y, el
        ("it", "Il gatto e il cane", 3, 3 / 5),
        ("pt", "O gato e o cão", 3, 3 / 5),
        ("nl", "De kat en de hond", 3, 3 / 5),
        # zh counts Han characters: 我 们 的 是 的 are stop characters among 8 Han characters.
        ("zh", "我们的模型是好的。Hello", 5, 5 / 8),
        ("zh", "no han here", 0, 0.0),
    ],
)
def test_stop_words_per_language(language, text, stops, ratio):
    result = signals(WordStatsEvaluator, [text], language=language, signals=["stop_word_ratio", "stop_words"])
    assert result == {"stop_word_ratio": [pytest.approx(ratio)], "stop_words": [stops]}


def test_word_stats_match_python_on_random_text():
    rng = random.Random(5)
    vocab = ["The", "the", "a", "cat", "#", "...", "…", "12", "x.y", "日本", "😀", "and,", "é"]
    seps = [" ", "  ", "\n", "\t", "\u3000", "\xa0"]
    texts = [
        "".join(rng.choice(vocab) + rng.choice(seps) for _ in range(rng.randint(0, 15))) for _ in range(2000)
    ]
    result = signals(WordStatsEvaluator, texts)
    stop = {"the", "and", "a"}
    for i, text in enumerate(texts):
        words = text.split()
        n = len(words)
        expected = {
            "words": n,
            "mean_word_length": sum(map(len, words)) / n if n else 0.0,
            "unique_word_ratio": len({w.lower() for w in words}) / n if n else 0.0,
            "alpha_word_ratio": sum(any(c.isalpha() for c in w) for w in words) / n if n else 0.0,
            "symbol_word_ratio": max(text.count("#"), text.count("...") + text.count("…")) / n if n else 0.0,
            "stop_words": sum(w.lower().strip(",.") in stop for w in words),
        }
        for name, value in expected.items():
            assert result[name][i] == pytest.approx(value), (name, text)


def test_word_stats_of_a_huge_row():
    result = signals(WordStatsEvaluator, ["the cat " * (BIG // 8)], signals=["words", "unique_word_ratio"])
    assert result["words"] == [BIG // 4]
    assert result["unique_word_ratio"] == approx([2 / (BIG // 4)])


def test_word_stats_language_validation():
    with pytest.raises(ValidationError, match="'en'"):
        WordStatsEvaluator.Params(language="xx")


# --- structure_evaluator ---


def test_structure_hand_computed():
    text = "Intro line\n- item one\n  • item two...\n\nDone! &amp; &#39; &#x27; &nbsp &T;\n"
    result = signals(StructureEvaluator, [text, "", None])
    # Non-empty lines: "Intro line", "- item one", "• item two...", "Done! &amp; ... &T;" = 4.
    # Bullets: 2/4. Ellipsis endings: 1/4. Terminal punctuation endings: only "two..." -> 1/4.
    # All 4 lines are at most 30 code points except the last (34) -> 3/4.
    # Newlines 5; words Intro line - item one • item two... Done! &amp; &#39; &#x27; &nbsp &T; = 14.
    # Entities: &amp; &#39; &#x27; (not "&nbsp" without ";", not "&T;" with a 1-letter name) = 3.
    # Sentences: "..." + newline, "!" + space, then trailing text with letters -> 3.
    # Longest run without punctuation (P*): " item one\n  " between "-" and "•" = 12.
    assert result == {
        "sentences": [3, 0, None],
        "bullet_line_ratio": approx([0.5, 0.0, None]),
        "ellipsis_line_ratio": approx([0.25, 0.0, None]),
        "punct_line_ratio": approx([0.25, 0.0, None]),
        "short_line_ratio": approx([0.75, 0.0, None]),
        "newline_word_ratio": approx([5 / 14, 0.0, None]),
        "html_entities": [3, 0, None],
        "longest_unpunctuated_run": [12, 0, None],
    }


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("One. Two! Three?", 3),
        ("e.g. this", 2),  # a heuristic: abbreviations split
        ("3.14 is pi", 1),  # a period followed by a digit ends nothing
        ("Hello", 1),
        ("Wow!!! Really?!", 2),
        ('He said "hi." Then left', 2),
        ("你好。我很好。", 2),  # CJK terminators need no space after them
        ("…", 1),
        ("?!", 1),
        ("   ", 0),
        ("😀 😀", 0),  # no letter or digit: no trailing sentence
    ],
)
def test_sentence_counts(text, count):
    assert signals(StructureEvaluator, [text], signals=["sentences"]) == {"sentences": [count]}


def test_longest_unpunctuated_run_and_short_lines():
    texts = ["ab, cdef. g", "日本語、テキスト", "no punctuation at all", "!!!", "a\n" + "b" * 40]
    result = signals(
        StructureEvaluator,
        texts,
        short_line_chars=1,
        signals=["longest_unpunctuated_run", "short_line_ratio"],
    )
    # "ab, cdef. g": runs "ab", " cdef", " g" -> 5. "、" is punctuation -> 4. Whole text -> 21.
    assert result["longest_unpunctuated_run"] == [5, 4, 21, 0, 42]
    assert result["short_line_ratio"] == approx([0.0, 0.0, 0.0, 0.0, 0.5])


def test_longest_unpunctuated_run_matches_python():
    rng = random.Random(3)
    pool = list("ab ,.!日、😀\n-") + ["\u00e9", "\U0001f600"]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 25))) for _ in range(2000)]
    result = signals(StructureEvaluator, texts, signals=["longest_unpunctuated_run"])
    for text, got in zip(texts, result["longest_unpunctuated_run"], strict=True):
        best = run = 0
        for char in text:
            run = 0 if unicodedata.category(char).startswith("P") else run + 1
            best = max(best, run)
        assert got == best, repr(text)


def test_structure_of_a_huge_row():
    count = BIG // 23
    text = "A line that ends well.\n" * count + "cut"  # every line but the last ends with "."
    result = signals(StructureEvaluator, [text], signals=["punct_line_ratio", "sentences"])
    assert result["punct_line_ratio"] == approx([count / (count + 1)])
    assert result["sentences"] == [count + 1]


def test_structure_params_validation():
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        StructureEvaluator.Params(short_line_chars=0)


# --- flagged_words_evaluator ---


def test_flagged_words_default_list():
    result = signals(FlaggedWordsEvaluator, ["This is porn and XXX content, Porn!", "clean text", "", None])
    # porn, xxx, "Porn!" -> 3 of 7 words.
    assert result == {"flagged_words": [3, 0, 0, None], "flagged_word_ratio": approx([3 / 7, 0.0, 0.0, None])}


def test_flagged_words_custom_list_and_cjk_substrings():
    result = signals(
        FlaggedWordsEvaluator, ["Spam spam eggs", "这是色情内容色情", "ham"], words=["SPAM", "色情"]
    )
    # "色情" is written without spaces: counted as a substring (twice) of a 1-word text.
    assert result == {"flagged_words": [2, 2, 0], "flagged_word_ratio": approx([2 / 3, 2.0, 0.0])}


def test_flagged_words_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "bad.txt").write_text("# a comment\nfoo\n\n  bar  \n", encoding="utf-8")
    op = FlaggedWordsEvaluator(FlaggedWordsEvaluator.Params(words_file="lists/bad.txt"))
    assert evaluate(op, ["foo bar baz foo."]) == {"flagged_words": [3], "flagged_word_ratio": [0.75]}
    digest = op.fingerprint_extra()["words_file_sha256"]
    (tmp_path / "lists" / "bad.txt").write_text("foo\n", encoding="utf-8")
    changed = FlaggedWordsEvaluator(FlaggedWordsEvaluator.Params(words_file="lists/bad.txt"))
    assert changed.fingerprint_extra()["words_file_sha256"] != digest
    assert FlaggedWordsEvaluator().fingerprint_extra() == {}


def test_flagged_words_validation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="give `words` or `words_file`, not both"):
        FlaggedWordsEvaluator.Params(words=["a"], words_file="x.txt")
    with pytest.raises(ValidationError, match="word list `missing.txt` not found"):
        FlaggedWordsEvaluator.Params(words_file="missing.txt")
    with pytest.raises(ValidationError, match="`two words` is not a single word"):
        FlaggedWordsEvaluator.Params(words=["two words"])
    with pytest.raises(ValidationError, match="an entry is empty"):
        FlaggedWordsEvaluator.Params(words=[" "])
    (tmp_path / "bad.txt").write_text("ok\nnot ok\n", encoding="utf-8")
    with pytest.raises(DataflowError, match="`not ok` is not a single word"):
        FlaggedWordsEvaluator(FlaggedWordsEvaluator.Params(words_file="bad.txt"))


# --- repetition_evaluator ---


def _grams(seq, n):
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def _rep(seq, n):
    grams = _grams(seq, n)
    counts = Counter(grams)
    return sum(counts[g] > 1 for g in grams) / len(grams) if grams else 0.0


def _dup_parts(parts, total):
    seen, count, chars = set(), 0, 0
    for part in parts:
        if part in seen:
            count, chars = count + 1, chars + len(part)
        seen.add(part)
    return (count / len(parts) if parts else 0.0), (chars / total if total else 0.0)


def _gopher_words(text):
    """(word, start, end): whitespace words stripped of edge punctuation (P*), empty ones dropped."""
    out = []
    for match in re.finditer(r"\S+", text):
        a, b = match.span()
        while a < b and unicodedata.category(text[a]).startswith("P"):
            a += 1
        while b > a and unicodedata.category(text[b - 1]).startswith("P"):
            b -= 1
        if a < b:
            out.append((text[a:b], a, b))
    return out


def _gopher_share(text, n, top):
    """Code points spanned by the counted occurrences of word n-grams / code points of the text:
    all occurrences of the most frequent one (ties: the first to occur), or every occurrence
    repeating an earlier one."""
    words = _gopher_words(text)
    grams = [
        (tuple(w for w, _, _ in words[i : i + n]), words[i][1], words[i + n - 1][2])
        for i in range(len(words) - n + 1)
    ]
    counts = Counter(g for g, _, _ in grams)
    if top:
        best = None
        for gram, _, _ in grams:
            if counts[gram] > 1 and (best is None or counts[gram] > counts[best]):
                best = gram
        spans = [(a, b) for gram, a, b in grams if gram == best]
    else:
        seen, spans = set(), []
        for gram, a, b in grams:
            if gram in seen:
                spans.append((a, b))
            seen.add(gram)
    covered = set()
    for a, b in spans:
        covered.update(range(a, b))
    return len(covered) / len(text) if text else 0.0


def repetition_reference(text, char_n=10, word_n=5):
    words = text.split()
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    expected = {"char_rep_ratio": _rep(text, char_n), "word_rep_ratio": _rep(words, word_n)}
    expected["dup_line_ratio"], expected["dup_line_char_ratio"] = _dup_parts(lines, len(text))
    expected["dup_para_ratio"], expected["dup_para_char_ratio"] = _dup_parts(paragraphs, len(text))
    for n in (2, 3, 4):
        expected[f"top_{n}_gram_char_ratio"] = _gopher_share(text, n, top=True)
    for n in range(5, 11):
        expected[f"dup_{n}_gram_char_ratio"] = _gopher_share(text, n, top=False)
    return expected


def test_repetition_hand_computed():
    texts = [
        "abcabc",  # 3-grams abc bca cab abc: abc repeats -> 2/4
        "aaaa",  # 3-grams aaa aaa -> 1.0
        "ab",  # shorter than n: 0.0
        "日本語日本語",  # 日本語 本語日 語日本 日本語 -> 2/4
        "😀😀😀😀",  # both windows equal -> 1.0
        "",
        None,
    ]
    result = signals(RepetitionEvaluator, texts, char_ngram=3, signals=["char_rep_ratio"])
    assert result == {"char_rep_ratio": approx([0.5, 1.0, 0.0, 0.5, 1.0, 0.0, None])}


def test_repetition_word_and_line_signals_hand_computed():
    texts = [
        "a b a b c",  # word 2-grams ab ba ab bc: 2/4 repeat
        "x\ny\nx\n\nx",  # lines x y x x: 2 repeats of 4; 2 chars of 8
        "p1\n\np2\n\np1",  # paragraphs p1 p2 p1: 1 of 3; 2 chars of 10
        "a b a b c d",  # top 2-gram "a b" (x2) spans 0-3 and 4-7: 6 of 11 code points
        "a b c a b c",  # tie ab/bc (2 each): the first to occur, ab -> 0-3, 6-9 = 6/11
        "a a a a",  # "a a" occurs 3 times, overlapping: each code point once -> 1.0
        "w1 w2 w3 w4 w5 x w1 w2 w3 w4 w5",  # the later copy of the 5-gram spans 17-31: 14/31
    ]
    result = signals(RepetitionEvaluator, texts, word_ngram=2)
    assert result["word_rep_ratio"][0] == 0.5
    assert result["dup_line_ratio"][1] == 0.5 and result["dup_line_char_ratio"][1] == 0.25
    assert result["dup_para_ratio"][2] == pytest.approx(1 / 3) and result["dup_para_char_ratio"][2] == 0.2
    assert result["top_2_gram_char_ratio"][3:6] == approx([6 / 11, 6 / 11, 1.0])
    assert result["dup_5_gram_char_ratio"][6] == pytest.approx(14 / 31)
    assert result["dup_6_gram_char_ratio"][6] == 0.0


def test_gopher_ngram_signals_follow_the_reference_definition():
    texts = [
        # "Frank,", "Frank." and "Frank" are one word: "I am Frank" occurs 3 times (30 of 61 code
        # points) while the tied 2-grams "I am" / "am Frank" (3 each) resolve to the first, "I am",
        # 3 x 4 = 12 of 61.
        "I am Frank, you are Jhon. I am Frank. I am Frank you are Jhon",
        # A text pasted twice: its later copy spans 24-47, 23 of 47 code points (not 1.0); the top
        # 2-gram, tied at 2 occurrences with three others, is the first, "one two": 14 of 47.
        "one two three four five one two three four five",
        # Punctuation-only tokens are no words; the punctuation between words counts in a span:
        # "Frank Frank" spans "Frank, Frank" (6-18) and "Frank. Frank" (13-25): 19 of 25.
        "— ... Frank, Frank. Frank",
        "The the THE",  # case-sensitive: no 2-gram repeats
    ]
    result = signals(RepetitionEvaluator, texts)
    assert result["top_2_gram_char_ratio"] == approx([12 / 61, 14 / 47, 19 / 25, 0.0])
    assert result["top_3_gram_char_ratio"][0] == pytest.approx(30 / 61)
    # "I am Frank you are" and "am Frank you are Jhon" recur at the end: "I am Frank you are Jhon".
    assert result["dup_5_gram_char_ratio"][:2] == approx([23 / 61, 23 / 47])


def test_repetition_matches_python_on_random_text():
    rng = random.Random(3)
    vocab = ["a", "bb", "a", "ccc", "日本", "😀", "x.", "(a),", "—", "\n", "\n\n", " \n \n", "a b a b"]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 40))) for _ in range(1500)]
    texts += ["", "a a a a a a a a a a a a a", "x\n\nx\n\nx", "abc abc abc\nabc abc abc"]
    for char_n, word_n in ((10, 5), (1, 1), (4, 3)):
        result = signals(RepetitionEvaluator, texts, char_ngram=char_n, word_ngram=word_n)
        for i, text in enumerate(texts):
            for name, value in repetition_reference(text, char_n, word_n).items():
                assert result[name][i] == pytest.approx(value), (name, text)


def test_repetition_of_a_huge_row():
    text = "abcdefghij klmnopqrst " * (BIG // 22)
    unique = "".join(chr(0x4E00 + i) for i in range(20000))  # no 10-gram repeats
    result = signals(RepetitionEvaluator, [text, unique, "x"], signals=["char_rep_ratio", "dup_line_ratio"])
    assert result == {"char_rep_ratio": [1.0, 0.0, 0.0], "dup_line_ratio": [0.0, 0.0, 0.0]}


def test_repetition_params_validation():
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        RepetitionEvaluator.Params(char_ngram=0)
    with pytest.raises(ValidationError, match="less than or equal to 1000"):
        RepetitionEvaluator.Params(word_ngram=1001)
    with pytest.raises(ValidationError, match="unknown signal `top_5_gram_char_ratio`"):
        RepetitionEvaluator.Params(signals=["top_5_gram_char_ratio"])


def test_dup_mask_implementations_agree():
    rng = np.random.default_rng(0)
    cases = [
        rng.integers(0, 50, 20000).astype(np.uint64),  # many duplicates
        rng.integers(0, 2**63, 50000, dtype=np.uint64),  # almost none
        np.zeros(3, np.uint64),
        np.array([5], np.uint64),
        np.array([], np.uint64),
        np.arange(1 << 16, dtype=np.uint64) << np.uint64(40),  # keys differing only in high bits
    ]
    cases[1][::7] = cases[1][3]
    for keys in cases:
        counts = Counter(keys.tolist())
        expected = np.array([counts[k] > 1 for k in keys.tolist()], bool)
        assert (bucket_dup_mask(keys) == expected).all()
        assert (dup_mask(keys) == expected).all()


def test_window_hashes_are_the_polynomial_hash():
    symbols = np.array([3, 1, 4, 1, 5, 9, 2, 6], np.uint32)
    base = 0x9E3779B97F4A7C15
    for n in range(1, 9):
        expected = [
            sum(int(s) * pow(base, n - 1 - k, 1 << 64) for k, s in enumerate(symbols[i : i + n])) % (1 << 64)
            for i in range(len(symbols) - n + 1)
        ]
        assert window_hashes(symbols, n).tolist() == expected
    assert len(window_hashes(symbols, 9)) == 0


# --- batches of every shape ---


@pytest.mark.parametrize(
    "array",
    [
        pa.array([], pa.string()),
        pa.nulls(3, pa.string()),
        pa.nulls(2),
        pa.array([None, "", "a b a b", "x\n\nx"], pa.large_string()),
        pa.array(["zz", "a b c", None, "日本語"]).slice(1),
        pa.array(["a a", "b", None]).dictionary_encode(),
        pa.array([" a  b ", None], pa.string_view()),
    ],
)
@pytest.mark.parametrize(
    "cls",
    [CharRatioEvaluator, WordStatsEvaluator, StructureEvaluator, FlaggedWordsEvaluator, RepetitionEvaluator],
)
def test_any_batch_shape(cls, array):
    texts = array.to_pylist()
    table = pa.table({"text": array, "_id": [str(i) for i in range(len(array))]})
    op = cls()
    result = op.process(Batch(table, op.input_columns))
    plain = evaluate(cls(), texts)  # the same texts as a plain string column
    for name, values in result.items():
        assert pa.array(values).to_pylist() == plain[name]
        assert [v is None for v in plain[name]] == [t is None for t in texts]


# --- end to end through the CLI ---


def test_quality_signals_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"text": "A normal sentence about cats and dogs. It is fine."},
        {"text": "@@@ ### $$$ !!! %%% ^^^"},
        {"text": "buy now buy now buy now buy now buy now buy now"},
        {"text": None},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: q\ninput: {path: in.jsonl}\noutput: {path: out/o.jsonl}\nstages:\n"
        "  - {name: chars, op: char_ratio_evaluator, params: {signals: [special_char_ratio]}}\n"
        "  - {name: words, op: word_stats_evaluator, params: {signals: [words, stop_word_ratio]}}\n"
        "  - {name: shape, op: structure_evaluator, params: {signals: [sentences]}}\n"
        "  - {name: flagged, op: flagged_words_evaluator, params: {words: [casino]}}\n"
        "  - name: reps\n    op: repetition_evaluator\n"
        "    params: {signals: [char_rep_ratio, dup_5_gram_char_ratio]}\n"
        "    outputs: {char_rep_ratio: rep}\n"
        "  - {name: special, op: range_filter, inputs: {value: special_char_ratio}, params: {max: 0.25}}\n"
        "  - {name: repetitive, op: range_filter, inputs: {value: rep}, params: {max: 0.5}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["rows_read"] == 4 and stats["rows_written"] == 1
    kept = [json.loads(line) for line in (tmp_path / "out" / "o.jsonl").read_text().splitlines()]
    assert len(kept) == 1 and kept[0]["words"] == 10 and kept[0]["sentences"] == 2
    assert set(kept[0]) >= {
        "special_char_ratio",
        "stop_word_ratio",
        "flagged_words",
        "rep",
        "dup_5_gram_char_ratio",
    }
    assert "char_rep_ratio" not in kept[0] and "alpha_ratio" not in kept[0]
    rejects = [
        json.loads(line)
        for line in (tmp_path / "out" / "rejects" / "o.rejects.jsonl").read_text().splitlines()
    ]
    assert sorted(r["_reason"] for r in rejects) == [
        "`rep` > 0.5",
        "`special_char_ratio` > 0.25",
        "`special_char_ratio` is null",
    ]
