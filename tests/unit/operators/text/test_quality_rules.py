"""Rule-set operators: c4_lines_refiner, c4_rules_filter, fineweb_rules_filter, gopher_rules_filter."""

import json
import random

import pyarrow as pa
import pytest
from dataflow_operators.text.c4 import C4LinesRefiner, C4RulesFilter, _at_least_words
from dataflow_operators.text.fineweb import FinewebRulesFilter
from dataflow_operators.text.gopher import GopherRulesFilter
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli.cli.app import app
from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Verdict

BIG = 5 * 1024 * 1024
# 78 words, 4 sentences on one line, nothing repeated: passes every Gopher and FineWeb rule.
GOOD = (
    "The history of the city goes back to the early days of trade along the river. Merchants built "
    "warehouses near the water and families settled on the hills above the harbor. Over time the town "
    "grew into a regional center with schools, markets and a busy port that connected farmers to buyers "
    "from distant places. Today visitors come to see the old stone bridge, walk through narrow streets "
    "and taste food that reflects centuries of exchange with neighbors."
)
SENTENCES = [s + "." for s in GOOD.rstrip(".").split(". ")]


def verdict(op, texts, column="text"):
    table = pa.table({column: pa.array(texts, pa.string()), "_id": [str(i) for i in range(len(texts))]})
    result = op.process(Batch(table, op.input_columns))
    assert isinstance(result, Verdict)
    keep = pa.array(result.keep)
    assert keep.type == pa.bool_() and keep.null_count == 0 and len(keep) == len(texts)
    reasons = pa.array(result.reason, pa.string()).to_pylist()
    assert all((r is None) == k for r, k in zip(reasons, keep.to_pylist(), strict=True))
    return reasons


def refine(op, texts):
    table = pa.table({"text": pa.array(texts, pa.string()), "_id": [str(i) for i in range(len(texts))]})
    result = op.process(Batch(table, op.input_columns))
    assert set(result) == {"text"}
    return pa.array(result["text"]).to_pylist()


# --- c4_lines_refiner ---


def test_c4_lines_hand_computed():
    text = (
        "Hello there my friend.\n"  # kept
        "Too short.\n"  # 2 words < 3
        "No punctuation here at all\n"  # no terminal punctuation
        "Please enable JavaScript to view.\n"  # javascript
        "We use cookies on this site.\n"  # policy phrase "use cookies"
        "A cited fact is here.[1]\n"  # kept without the citation
        "Wait for it...\n"  # ends with an ellipsis
        "  Indented line is kept too!  \n"  # kept, stripped
        'He said "this is fine."\n'  # kept: ends with a quotation mark
        "Read our Privacy Policy today.\n"  # policy phrase, any case
        "\n"
    )
    assert refine(C4LinesRefiner(), [text, "", None, "nothing to keep"]) == [
        'Hello there my friend.\nA cited fact is here.\nIndented line is kept too!\nHe said "this is fine."',
        "",
        None,
        "",
    ]


def test_c4_lines_keep_the_lines_on_which_c4_drops_the_page():
    text = (
        "Read our privacy policy before pasting {code} here.\n"  # C4 checks "{" first: page drop
        "Enable JavaScript to run {this} widget.\n"  # JavaScript is checked first: line removed
        "Lorem ipsum needs JavaScript to show.\n"  # "lorem ipsum" is checked first: page drop
        "A { without an end mark\n"  # removed for its end mark before "{" is looked at
        "A perfectly normal line.\u2028Another normal line here."  # str.splitlines() boundaries
    )
    assert refine(C4LinesRefiner(), [text]) == [
        "Read our privacy policy before pasting {code} here.\n"
        "Lorem ipsum needs JavaScript to show.\n"
        "A perfectly normal line.\nAnother normal line here."
    ]


def test_c4_lines_params():
    lines = "Short.\nLong enough line here.\nClick for javascript help.\nend without a stop\n中文句子结束。"
    relaxed = C4LinesRefiner.Params(
        min_words=None, drop_javascript=False, terminal_punctuation=".。", remove_citations=False
    )
    assert refine(C4LinesRefiner(relaxed), [lines]) == [
        "Short.\nLong enough line here.\nClick for javascript help.\n中文句子结束。"
    ]
    long_word = "x" * 1001 + " is one word."
    assert refine(C4LinesRefiner(), [long_word]) == [""]
    assert refine(C4LinesRefiner(C4LinesRefiner.Params(max_word_chars=None)), [long_word]) == [long_word]
    custom = C4LinesRefiner.Params(policy_phrases=["newsletter"])
    assert refine(C4LinesRefiner(custom), ["Join our newsletter right now.\nWe use cookies here, fine."]) == [
        "We use cookies here, fine."
    ]
    with pytest.raises(ValidationError, match="at least 1 character"):
        C4LinesRefiner.Params(terminal_punctuation="")
    with pytest.raises(ValidationError, match="a policy phrase is empty"):
        C4LinesRefiner.Params(policy_phrases=[" "])
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        C4LinesRefiner.Params(min_words=0)


def test_c4_lines_unicode_large_string_and_huge_row():
    op = C4LinesRefiner()
    text = "Ünïcödé line 😀 ends here.\r\nnope\nСлава и честь здесь!"
    assert refine(op, [text]) == ["Ünïcödé line 😀 ends here.\nСлава и честь здесь!"]
    table = pa.table({"text": pa.array(["One two three.\nx"], pa.large_string()), "_id": ["0"]})
    out = op.process(Batch(table, op.input_columns))["text"]
    assert out.type == pa.large_string() and out.to_pylist() == ["One two three."]
    line = "This line is long enough.\n"
    big = line * (BIG // len(line))
    assert refine(op, [big]) == [big.rstrip("\n")]


def test_c4_word_counts_agree_with_python_split():
    rng = random.Random(1)
    alphabet = list("ab .\t\n\x0b\x0c\x1c\x1f\x85\xa0\u2028\u2029\u3000\u200b")
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    for count in (1, 2, 3, 5, 1001):
        assert _at_least_words(pa.array(lines), count).tolist() == [len(t.split()) >= count for t in lines]


# --- c4_rules_filter ---


def test_c4_rules_hand_computed():
    texts = [
        "lorem Ipsum dolor sit amet. One. Two. Three. Four. Five.",
        "function() { return 1; }. One. Two. Three. Four. Five.",
        "One. Two. Three. Four.",  # 4 sentences
        "One. Two. Three. Four. Five.",
        "Lorem ipsum { both } here.",  # one line: "lorem ipsum" is checked first
        "Lorem ipsum { both }",  # no end mark: C4 removes the line before any page check
        "",
        None,
        "一。二。三。四。五。",  # "。" is not one of C4's end marks: the line goes, 0 sentences
    ]
    assert verdict(C4RulesFilter(), texts) == [
        "contains lorem ipsum",
        "contains {",
        "sentences < 5",
        None,
        "contains lorem ipsum",
        "sentences < 5",
        "sentences < 5",
        "`text` is null",
        "sentences < 5",
    ]
    cjk = C4RulesFilter.Params(terminal_punctuation=".。", min_words=None)
    assert verdict(C4RulesFilter(cjk), ["一。二。三。四。五。"]) == [None]  # CJK terminators: 5 sentences


FIVE = "\n".join(f"This is sentence number {n} of the page." for n in range(1, 6))


def test_c4_rules_apply_the_line_rules_in_c4_order():
    policy_code = "Read our privacy policy before you paste {code} into the form.\n" + FIVE
    texts = [
        policy_code,  # C4 checks "{" before removing policy lines: dropped
        "Enable JavaScript to see {this} widget.\n" + FIVE,  # the JavaScript line goes first: kept
        "function init() {\n" + FIVE,  # no end mark: the line goes before "{" is checked: kept
        "Our site uses cookies to remember you.\n" + FIVE,  # a policy line is only removed: kept
        "A line with { comes first.\nThen lorem ipsum appears here.\n" + FIVE,  # the first line wins
        "Then lorem ipsum appears here.\nA line with { comes first.\n" + FIVE,
        # Five sentences, but two on lines C4 removes (too few words, no end mark).
        "Too short.\nOne more sentence here. And another.\nNo end here. Nor here\nLast one is fine.",
    ]
    expected = [
        "contains {",
        None,
        None,
        None,
        "contains {",
        "contains lorem ipsum",
        "sentences < 5",
    ]
    assert verdict(C4RulesFilter(), texts) == expected
    # The same decisions after c4_lines_refiner, which keeps the lines that drop a page.
    assert verdict(C4RulesFilter(), refine(C4LinesRefiner(), texts)) == expected
    # Switching a page rule off sends its lines on to the next checks.
    no_curly = C4RulesFilter.Params(drop_curly_bracket=False)
    assert verdict(C4RulesFilter(no_curly), [policy_code, texts[4]]) == [None, "contains lorem ipsum"]


def test_c4_rules_port_datatrove_cases():
    # Behaviour checks ported from datatrove's C4QualityFilter tests (tests/pipeline/filters).
    good = (
        "This is a well-written paragraph with several sentences.\n"
        "The content continues with more good information here.\n"
        "Another important point is being made in this line.\n"
        "We can see that this document has quality content.\n"
        "Finally, the conclusion wraps everything up nicely.\n"
        "An additional sentence to ensure we pass the threshold."
    )
    tail = (
        "Another sentence with proper punctuation.\nMore content to fill out the document.\n"
        "Even more content is needed to pass the check.\nThe final sentence of the document."
    )
    lorem = "This is a sentence with lorem ipsum dolor sit amet.\n" + tail
    curly = "This is some code with a { bracket.\n" + tail
    assert verdict(C4RulesFilter(), [good, lorem, curly, "Just one sentence."]) == [
        None,
        "contains lorem ipsum",
        "contains {",
        "sentences < 5",
    ]
    lenient = C4LinesRefiner.Params(min_words=None)
    cleaned = refine(
        C4LinesRefiner(lenient), ["This site uses cookies for tracking.\nAnother valid line here today."]
    )
    assert cleaned == ["Another valid line here today."]


def test_c4_rules_bad_words_and_switches(tmp_path, monkeypatch):
    texts = [
        "Visit our Casino now. Two. Three. Four. Five.",
        "{ lorem ipsum } is here.",
        "One.",
        "casino\nOne. Two. Three. Four. Five.",  # the bad word is on a line C4 removes
    ]
    op = C4RulesFilter(C4RulesFilter.Params(bad_words=["casino"]))
    assert verdict(op, texts) == ["contains a bad word", "contains lorem ipsum", "sentences < 5", None]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.txt").write_text("# list\nvisit\n", encoding="utf-8")
    op = C4RulesFilter(C4RulesFilter.Params(bad_words_file="bad.txt", min_sentences=None))
    assert verdict(op, texts) == ["contains a bad word", "contains lorem ipsum", None, None]
    assert set(op.fingerprint_extra()) == {"bad_words_file_sha256"}
    off = C4RulesFilter.Params(drop_lorem_ipsum=False, drop_curly_bracket=False, min_sentences=1)
    # "One." has one word, fewer than 3: C4 removes the line, so no sentence is left.
    assert verdict(C4RulesFilter(off), texts) == [None, None, "sentences < 1", None]
    assert C4RulesFilter().fingerprint_extra() == {}


def test_c4_rules_validation():
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        C4RulesFilter.Params(min_sentences=0)
    with pytest.raises(ValidationError, match="`a b` is not a single word"):
        C4RulesFilter.Params(bad_words=["a b"])
    with pytest.raises(ValidationError, match="word list `nope.txt` not found"):
        C4RulesFilter.Params(bad_words_file="nope.txt")


def test_c4_rules_reason_names_the_bound_column_and_huge_row():
    op = C4RulesFilter(inputs={"text": "body"})
    assert verdict(op, [None, "A. B. C. D. E. F."], column="body") == ["`body` is null", None]
    assert verdict(C4RulesFilter(), ["Fine sentence. " * (BIG // 15), "x" * BIG + "{."]) == [
        None,
        "sentences < 5",  # the line's one word is longer than 1000: removed before "{" is seen
    ]


# --- fineweb_rules_filter ---

FINEWEB_CASES = {
    "good": "\n".join(SENTENCES),
    "punct": "no punctuation at the end of this line\nnor at the end of this one here\nand none here either my friend",
    "short": "Short one.\nShort two.\nShort three.\nThis line here is long enough to not be short.",
    "dup": "This line is repeated many times over.\nThis line is repeated many times over.\nAnother fine line that is unique here.",
    "list": "Internationalization considerations.\nCounterrevolutionaries misunderstandings.\nIncomprehensibilities notwithstanding.",
}


def test_fineweb_rules_hand_computed():
    texts = [*FINEWEB_CASES.values(), "", "\n \n", None]
    # punct: 0/3 lines end with punctuation. short: 3/4 lines have <= 30 code points.
    # dup: the repeated line has 38 code points of 116 -> 0.33. list: 2 newlines / 6 words.
    assert verdict(FinewebRulesFilter(), texts) == [
        None,
        "punct_line_ratio < 0.12",
        "short_line_ratio > 0.67",
        "dup_line_char_ratio > 0.01",
        "newline_word_ratio > 0.3",
        "no non-empty lines",
        "no non-empty lines",
        "`text` is null",
    ]


def test_fineweb_bounds_are_inclusive_and_can_be_switched_off():
    half = "This line ends with a period.\nThis line does not end with one"  # 1/2 lines
    assert verdict(FinewebRulesFilter(FinewebRulesFilter.Params(min_punct_line_ratio=0.5)), [half]) == [None]
    assert verdict(FinewebRulesFilter(FinewebRulesFilter.Params(min_punct_line_ratio=0.51)), [half]) == [
        "punct_line_ratio < 0.51"
    ]
    off = FinewebRulesFilter.Params(
        min_punct_line_ratio=None,
        max_short_line_ratio=None,
        max_dup_line_char_ratio=None,
        max_newline_word_ratio=None,
    )
    assert verdict(FinewebRulesFilter(off), list(FINEWEB_CASES.values())) == [None] * 5
    short = FinewebRulesFilter.Params(short_line_chars=10)  # "Short one." is short, "Short three." not
    assert verdict(FinewebRulesFilter(short), [FINEWEB_CASES["short"]]) == [None]
    with pytest.raises(ValidationError, match="`max_short_line_ratio` must not be negative"):
        FinewebRulesFilter.Params(max_short_line_ratio=-0.1)


def test_fineweb_terminal_punctuation_is_the_reference_set():
    only = FinewebRulesFilter.Params(
        max_short_line_ratio=None, max_dup_line_char_ratio=None, max_newline_word_ratio=None
    )
    endings = ['He said "yes."', "It was 'fine'", "A quote that ends “here”", "And then…", "So it goes.'"]
    lines = [f"{i} {e}" for i, e in enumerate(endings)]
    # None of the 5 lines ends with terminal punctuation: quotes and "…" are not in the set.
    assert verdict(FinewebRulesFilter(only), ["\n".join(lines)]) == ["punct_line_ratio < 0.12"]
    # "...", "!" "?", CJK and Devanagari marks are: 5 of 5.
    ended = ["Wait for it...", "Stop!", "Really?", "这是一个句子。", "यह एक वाक्य है।"]
    assert verdict(FinewebRulesFilter(only), ["\n".join(ended)]) == [None]
    # 1 of 9 lines (0.11) falls below 0.12; 1 of 8 (0.125) does not.
    assert verdict(FinewebRulesFilter(only), ["\n".join(lines + lines[:3] + ["Done."])]) == [
        "punct_line_ratio < 0.12"
    ]
    assert verdict(FinewebRulesFilter(only), ["\n".join(lines + lines[:2] + ["Done."])]) == [None]


def test_fineweb_duplicate_characters_exclude_newlines():
    # The repeated line has 22 code points; the text 68, of which 2 are newlines: 22 / 66 = 1/3
    # (22 / 68 = 0.3235 would pass a bound of 0.33).
    text = "This line is repeated.\nThis line is repeated.\nAnother line here now."
    bound = FinewebRulesFilter.Params(max_dup_line_char_ratio=0.33, max_short_line_ratio=None)
    assert verdict(FinewebRulesFilter(bound), [text]) == ["dup_line_char_ratio > 0.33"]
    exact = FinewebRulesFilter.Params(max_dup_line_char_ratio=1 / 3, max_short_line_ratio=None)
    assert verdict(FinewebRulesFilter(exact), [text]) == [None]  # equal to the bound: kept


def test_fineweb_port_datatrove_cases():
    # Behaviour checks ported from datatrove's FineWebQualityFilter tests.
    assert verdict(FinewebRulesFilter(), [""]) == ["no non-empty lines"]
    low = FinewebRulesFilter(FinewebRulesFilter.Params(min_punct_line_ratio=0.5))
    assert verdict(low, ["No punctuation here\nAnother line without any\nStill nothing"]) == [
        "punct_line_ratio < 0.5"
    ]
    short = FinewebRulesFilter(FinewebRulesFilter.Params(max_short_line_ratio=0.5, min_punct_line_ratio=0.0))
    assert verdict(short, ["hi.\nbye.\nok.\nno.\nyes."]) == ["short_line_ratio > 0.5"]
    good = (
        "This is a well-written paragraph that ends with proper punctuation.\n"
        "The content here is substantial and has meaningful information.\n"
        "Quality filtering ensures that only the best documents pass through.\n"
        "Each line here is long enough and ends with a terminal punctuation mark.\n"
        "This document should pass all the quality checks applied by the filter."
    )
    assert verdict(FinewebRulesFilter(), [good]) == [None]
    listy = FinewebRulesFilter(
        FinewebRulesFilter.Params(
            max_newline_word_ratio=0.1, min_punct_line_ratio=None, max_short_line_ratio=None
        )
    )
    assert verdict(listy, ["\n".join(["a"] * 50)]) == ["dup_line_char_ratio > 0.01"]
    lists = FinewebRulesFilter.Params(
        max_newline_word_ratio=0.1,
        min_punct_line_ratio=None,
        max_short_line_ratio=None,
        max_dup_line_char_ratio=None,
    )
    assert verdict(FinewebRulesFilter(lists), ["\n".join(["a"] * 50)]) == ["newline_word_ratio > 0.1"]


def test_fineweb_unicode_and_huge_row():
    cjk = (
        "这是第一行，内容足够长，而且以句号结束，没有问题。\n这是第二行，内容也足够长，同样以句号结束，很好。"
    )
    assert verdict(FinewebRulesFilter(), [cjk]) == ["short_line_ratio > 0.67"]  # 25 code points each
    # Unsegmented CJK lines are one whitespace word each: 1 newline per 2 words.
    short = FinewebRulesFilter.Params(short_line_chars=10)
    assert verdict(FinewebRulesFilter(short), [cjk]) == ["newline_word_ratio > 0.3"]
    cjk_ok = FinewebRulesFilter.Params(short_line_chars=10, max_newline_word_ratio=None)
    assert verdict(FinewebRulesFilter(cjk_ok), [cjk]) == [None]
    big = "\n".join(SENTENCES) * (BIG // len(GOOD))
    assert verdict(FinewebRulesFilter(), [big]) == ["dup_line_char_ratio > 0.01"]


# --- gopher_rules_filter ---


def test_gopher_rules_hand_computed():
    lines = "\n".join(SENTENCES)
    texts = {
        "good": GOOD,
        "short": "Too short a text to pass.",
        "tiny words": " ".join(["a", "to", "be"] * 20),  # mean length 5/3
        "long words": " ".join(["internationalization"] * 60),  # mean length 20
        "hashes": GOOD + " #tag" * 12,  # 12 "#" / 90 words
        "bullets": "\n".join("• " + s for s in SENTENCES),  # 4/4 lines
        "ellipses": "\n".join(s + ".." for s in SENTENCES),  # 4/4 lines end with "..."
        "numbers": GOOD + " 123" * 25,  # 78 of 103 words contain a letter
        "no stop words": " ".join(["data", "model", "quality", "pipeline", "filter"] * 12),
        "one stop word, 30 times": " ".join(f"word{i} to" for i in range(30)),  # "at least two of"
        "dup lines": "\n".join([SENTENCES[0], SENTENCES[1], SENTENCES[0], SENTENCES[0]]),  # 2 of 4
        "top 2-gram": GOOD + " buy now" * 30,
        "dup 5-gram": GOOD + " " + GOOD,
        "null": None,
        "empty": "",
    }
    assert verdict(GopherRulesFilter(), list(texts.values())) == [
        None,
        "words < 50",
        "mean_word_length < 3",
        "mean_word_length > 10",
        "symbol_word_ratio > 0.1",
        "bullet_line_ratio > 0.9",
        "ellipsis_line_ratio > 0.3",
        "alpha_word_ratio < 0.8",
        "distinct_stop_words < 2",
        "distinct_stop_words < 2",
        "dup_line_ratio > 0.3",
        "top_2_gram_char_ratio > 0.2",
        "dup_5_gram_char_ratio > 0.15",  # every 2-gram occurs twice: the top one covers little
        "`text` is null",
        "words < 50",
    ]
    assert verdict(GopherRulesFilter(), [lines]) == [None]


def test_gopher_rule_switches_and_bounds():
    doubled = GOOD + " " + GOOD
    no_top = GopherRulesFilter.Params(max_top_ngram_char_ratio={})
    assert verdict(GopherRulesFilter(no_top), [doubled]) == ["dup_5_gram_char_ratio > 0.15"]
    # Only the second copy counts, over every code point: len(GOOD) / (2 * len(GOOD) + 1) ~ 0.4994.
    for bound, reason in ((0.49, ["dup_10_gram_char_ratio > 0.49"]), (0.5, [None])):
        only_10 = GopherRulesFilter.Params(max_top_ngram_char_ratio={}, max_dup_ngram_char_ratio={10: bound})
        assert verdict(GopherRulesFilter(only_10), [doubled]) == reason
    paragraphs = "\n\n".join(
        [SENTENCES[0] + "\n" + SENTENCES[1], SENTENCES[2], SENTENCES[0] + "\n" + SENTENCES[1]]
    )
    lines_off = GopherRulesFilter.Params(max_dup_line_ratio=None, max_dup_line_char_ratio=None)
    assert verdict(GopherRulesFilter(lines_off), [paragraphs]) == ["dup_para_ratio > 0.3"]  # 1 of 3
    # Bounds are inclusive: "the cat and" has 3 words, mean length 3, 2 stop words.
    three = GopherRulesFilter.Params(min_words=3)
    assert verdict(GopherRulesFilter(three), ["the cat and"]) == [None]
    four = GopherRulesFilter.Params(min_words=4)
    assert verdict(GopherRulesFilter(four), ["the cat and"]) == ["words < 4"]
    everything_off = GopherRulesFilter.Params(
        **{
            name: None
            for name, field in GopherRulesFilter.Params.model_fields.items()
            if field.default is not None and not isinstance(field.default, dict)
        },
        max_top_ngram_char_ratio={},
        max_dup_ngram_char_ratio={},
    )
    assert verdict(GopherRulesFilter(everything_off), ["", "x", None]) == [None, None, "`text` is null"]


# TEXT_LF_1 of datatrove's filter tests (a quotation from The Lord of the Rings).
FRODO = (
    "I wish it need not have happened in my time,' said Frodo. 'So do I,' said Gandalf, 'and so do all who "
    "live to see such times. But that is not for them to decide. All we have to decide is what to do with "
    "the time that is given us.'"
)


def test_gopher_quality_port_datatrove_cases():
    # Behaviour checks ported from datatrove's GopherQualityFilter tests (min 10, max 1000 words).
    op = GopherRulesFilter(
        GopherRulesFilter.Params(
            min_words=10, max_words=1000, max_top_ngram_char_ratio={}, max_dup_ngram_char_ratio={}
        )
    )
    texts = [
        "I am too small...",
        "I am " * 20,
        "interconnection " * 20,
        "# comment " * 20,
        "... comment " * 20,
        "the ./!*?<><> apple <?////> orange  ++ interconnection !<>??? have" * 20,
        FRODO,
    ]
    assert verdict(op, texts) == [
        "words < 10",
        "mean_word_length < 3",
        "mean_word_length > 10",
        "symbol_word_ratio > 0.1",
        "symbol_word_ratio > 0.1",
        "alpha_word_ratio < 0.8",
        None,
    ]


def test_gopher_repetition_port_datatrove_cases():
    # Behaviour checks ported from datatrove's GopherRepetitionFilter tests; the quality rules off.
    op = GopherRulesFilter(
        GopherRulesFilter.Params(
            min_words=None,
            max_words=None,
            min_mean_word_length=None,
            max_mean_word_length=None,
            max_symbol_word_ratio=None,
            max_bullet_line_ratio=None,
            max_ellipsis_line_ratio=None,
            min_alpha_word_ratio=None,
            min_stop_words=None,
        )
    )
    texts = [
        "I am your father.\n" * 4,  # 3 of 4 lines repeat
        "I am your father.\n\n" * 4,  # 3 of 4 paragraphs repeat (checked before lines)
        # 1 of 5 paragraphs repeats (0.2), but it holds 31 of 117 code points.
        "I am groot.\n\nYou are a wizard.\n\nI am your father.\n\n" + f"{'x' * 30}.\n\n" * 2,
        # 1 of 5 lines repeats, 41 of 132 code points.
        "I am groot.\nYou are a wizard.\nI am your father.\n" + f"{'x' * 40}.\n" * 2,
        "I am Frank, I am Frank, I am Frank",  # "I am" x 3: 12 of 34
        # "I am" 12/61 passes (ties go to the first 2-gram), "I am Frank" x 3: 30/61.
        "I am Frank, you are Jhon. I am Frank. I am Frank you are Jhon",
        "I am a solo traveller " * 4 + FRODO,  # 3 later copies of the 5-grams: 67 of 318
        FRODO,
    ]
    assert verdict(op, texts) == [
        "dup_line_ratio > 0.3",
        "dup_para_ratio > 0.3",
        "dup_para_char_ratio > 0.2",
        "dup_line_char_ratio > 0.2",
        "top_2_gram_char_ratio > 0.2",
        "top_3_gram_char_ratio > 0.18",
        "dup_5_gram_char_ratio > 0.15",
        None,
    ]


def test_gopher_params_validation():
    with pytest.raises(ValidationError, match=r"`min_words` \(60\) is greater than `max_words` \(50\)"):
        GopherRulesFilter.Params(min_words=60, max_words=50)
    with pytest.raises(ValidationError, match="n-gram size 5 is not one of 2, 3, 4"):
        GopherRulesFilter.Params(max_top_ngram_char_ratio={5: 0.1})
    with pytest.raises(ValidationError, match="n-gram size 11 is not one of 5, 6, 7, 8, 9, 10"):
        GopherRulesFilter.Params(max_dup_ngram_char_ratio={11: 0.1})
    with pytest.raises(ValidationError, match="must not be negative"):
        GopherRulesFilter.Params(max_dup_ngram_char_ratio={5: -1})
    with pytest.raises(ValidationError, match="`max_symbol_word_ratio` must not be negative"):
        GopherRulesFilter.Params(max_symbol_word_ratio=-0.5)
    assert GopherRulesFilter.Params(max_top_ngram_char_ratio={4: 0.1, 2: 0.3}).max_top_ngram_char_ratio == {
        2: 0.3,
        4: 0.1,
    }


def test_gopher_unicode_and_huge_row():
    cjk = "这是一个没有空格的中文句子。" * 10  # one "word": fewer than 50
    emoji = " ".join(["the 😀😀😀 cat"] * 30)  # the emoji word has no letter: 60/90 alphabetic words
    assert verdict(GopherRulesFilter(), [cjk, emoji]) == ["words < 50", "alpha_word_ratio < 0.8"]
    big = (GOOD + "\n") * (BIG // len(GOOD))
    assert verdict(GopherRulesFilter(), [big, GOOD]) == ["words > 100000", None]
    unbounded = GopherRulesFilter(GopherRulesFilter.Params(max_words=None))
    assert verdict(unbounded, [big, GOOD]) == ["dup_line_ratio > 0.3", None]


def test_rule_filters_reject_non_text_columns():
    for op in (C4RulesFilter(), FinewebRulesFilter(), GopherRulesFilter()):
        with pytest.raises(DataflowError, match="must be text"):
            op.process(Batch(pa.table({"text": [1], "_id": ["0"]}), op.input_columns))


# --- end to end through the CLI ---


def test_rule_sets_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"text": "\n".join(SENTENCES) + "\nEnable JavaScript to continue reading please."},
        {"text": "Lorem ipsum dolor sit amet, consectetur.\n" + "\n".join(SENTENCES)},
        {"text": "Only three words.\nToo short."},
        {"text": "\n".join(SENTENCES[:3]) + "\n" + "\n".join(SENTENCES[:3])},
        {"text": "\n".join("• " + s for s in SENTENCES)},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: rules\ninput: {path: in.jsonl}\noutput: {path: out/o.jsonl}\nstages:\n"
        "  - {name: c4_lines, op: c4_lines_refiner}\n"
        "  - {name: c4, op: c4_rules_filter, params: {min_sentences: 3}}\n"
        "  - {name: fineweb, op: fineweb_rules_filter}\n"
        "  - name: gopher\n    op: gopher_rules_filter\n"
        "    params: {min_words: 40, max_top_ngram_char_ratio: {2: 0.3}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["rows_read"], stats["rows_written"], stats["rows_rejected"]) == (5, 1, 4)
    kept = [json.loads(line) for line in (tmp_path / "out" / "o.jsonl").read_text().splitlines()]
    assert kept == [{"text": "\n".join(SENTENCES)}]  # the JavaScript line is gone
    rejects = [
        json.loads(line)
        for line in (tmp_path / "out" / "rejects" / "o.rejects.jsonl").read_text().splitlines()
    ]
    assert {(r["_id"], r["_stage"], r["_reason"]) for r in rejects} == {
        ("1", "c4", "contains lorem ipsum"),
        ("2", "c4", "sentences < 3"),
        ("3", "fineweb", "dup_line_char_ratio > 0.01"),
        ("4", "gopher", "bullet_line_ratio > 0.9"),
    }
