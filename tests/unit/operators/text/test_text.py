import random
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dataflow_operators._lib.arrow import normalize_unicode, unstable_class, word_and_line_counts
from dataflow_operators.text.length import LengthEvaluator
from dataflow_operators.text.normalize import TextNormalizeRefiner
from dataflow_operators.text.regex import RegexFilter
from pydantic import ValidationError

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Verdict

BIG = 5 * 1024 * 1024


def make_batch(op, text, column="text", **extra):
    table = pa.table(
        {column: pa.array(text, pa.string()), **extra, "_id": [str(i) for i in range(len(text))]}
    )
    return Batch(table, op.input_columns)


def normalize(texts, **params):
    op = TextNormalizeRefiner(TextNormalizeRefiner.Params(**params))
    result = op.process(make_batch(op, texts))
    assert set(result) == {"text"}
    return result["text"].to_pylist()


# --- text_normalize_refiner ---


def test_normalize_defaults_on_a_messy_text():
    messy = "  Hello\u3000\u3000World\t!  \r\n\r\n\r\n  \n next\u00a0line  "
    assert normalize([messy]) == ["Hello World !\n\n next line"]


def test_normalize_null_stays_null_and_empty_stays_empty():
    assert normalize([None, "", "   ", "\n\n"]) == [None, "", "", ""]


def test_normalize_nfkc_folds_compatibility_characters():
    assert normalize(["\ufb01ne ＡＢＣ①", "x\u00b2"]) == ["fine ABC1", "x2"]


@pytest.mark.parametrize(
    ("form", "text", "expected"),
    [
        ("NFC", "e\u0301", "\u00e9"),
        ("NFC", "\ufb01", "\ufb01"),  # NFC keeps compatibility characters
        ("NFD", "\u00e9", "e\u0301"),
        ("NFKD", "\ufb01\u00e9", "fie\u0301"),
        ("NFKC", "e\u0301\ufb01", "\u00e9fi"),
        ("NFC", "\u1100\u1161\u11a8", "\uac01"),  # Hangul jamo compose
        ("NFD", "\uac01", "\u1100\u1161\u11a8"),
    ],
)
def test_normalize_forms(form, text, expected):
    assert normalize([text], form=form) == [expected]


def test_normalize_lowercase_is_off_by_default():
    assert normalize(["ÀB Ω"]) == ["ÀB Ω"]
    assert normalize(["ÀB Ω ＡＢ"], lowercase=True) == ["àb ω ab"]


def test_normalize_whitespace_rules():
    cases = {
        "a \t b": "a b",
        "a\u2000\u2003\u202f\u205f\u1680b": "a b",
        "a\r\nb\rc\u2028d\u2029e\x85f": "a\nb\nc\nd\ne\nf",
        "a  \nb \n": "a\nb",
        "a\n\nb": "a\n\nb",
        "a\n\n\n\nb": "a\n\nb",
        "a\n \n\t\n  \nb": "a\n\nb",
        "    indented": "indented",
        "x\n    indented": "x\n indented",  # indentation collapses to one space
        "\u200bzero width\u200b": "\u200bzero width\u200b",  # not whitespace
    }
    assert normalize(list(cases)) == list(cases.values())


def test_normalize_without_strip_keeps_one_leading_space_but_no_trailing_space():
    assert normalize(["  a  b  ", "\n\n\na\n\n\n"], strip=False) == [" a b", "\n\na\n\n"]


def test_normalize_without_collapse_only_strips():
    assert normalize(["  a  \n\n\n b\u00a0 "], form="NFC", collapse_whitespace=False) == ["a  \n\n\n b"]
    assert normalize(["  a  b  "], collapse_whitespace=False, strip=False) == ["  a  b  "]


def test_normalize_keeps_cjk_and_emoji():
    text = "日本語のテキスト 😀 👨\u200d👩\u200d👧 한국어"
    assert normalize([text]) == [text]


def test_normalize_only_some_rows_need_the_kernel():
    texts = ["plain ascii", "caf\u00e9", "\uff21", None, "cafe\u0301", "ok"]
    assert normalize(texts, collapse_whitespace=False, strip=False) == [
        "plain ascii",
        "caf\u00e9",
        "A",
        None,
        "caf\u00e9",
        "ok",
    ]


def test_normalize_huge_row():
    text = "ab \u3000 " * (BIG // 6)
    (out,) = normalize([text, "small"])[:1]
    assert out == " ".join(["ab"] * (BIG // 6))


def test_normalize_accepts_large_string_chunked_and_dictionary_columns():
    op = TextNormalizeRefiner(TextNormalizeRefiner.Params())
    chunked = pa.chunked_array(
        [pa.array([" a "], pa.large_string()), pa.array(["ＢＢ", None], pa.large_string())]
    )
    table = pa.table({"text": chunked, "_id": ["0", "1", "2"]})
    assert op.process(Batch(table, op.input_columns))["text"].to_pylist() == ["a", "BB", None]
    table = pa.table({"text": pa.array([" a ", " a ", None]).dictionary_encode(), "_id": ["0", "1", "2"]})
    assert op.process(Batch(table, op.input_columns))["text"].to_pylist() == ["a", "a", None]


def test_normalize_rewrites_the_bound_column():
    op = TextNormalizeRefiner(TextNormalizeRefiner.Params(), inputs={"text": "body"})
    assert op.required_columns() == ["body"]
    assert op.written_columns() == ["body"]
    assert op.transform_schema({"body": "string", "_id": "string"}) == {"body": "string", "_id": "string"}
    out = op.process(make_batch(op, [" x "], column="body"))
    assert out["text"].to_pylist() == ["x"]


def test_normalize_rejects_a_non_text_column():
    op = TextNormalizeRefiner(TextNormalizeRefiner.Params())
    batch = Batch(pa.table({"text": [1, 2], "_id": ["0", "1"]}), op.input_columns)
    with pytest.raises(DataflowError, match=r"column `text` must be text \(string\) but is int64"):
        op.process(batch)


def test_normalize_params_validation():
    with pytest.raises(ValidationError, match="NFC"):
        TextNormalizeRefiner.Params(form="NFX")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TextNormalizeRefiner.Params(collapse=True)


@pytest.mark.parametrize("form", ["NFC", "NFKC", "NFD", "NFKD"])
def test_fast_path_agrees_with_the_normalization_kernel(form):
    rng = random.Random(form)
    pool = [chr(c) for c in range(0x20, 0x3100) if not 0xD800 <= c < 0xE000]
    pool += [
        "e\u0301",
        "\u1100\u1161",
        "\uac00\u11a8",
        "\ufb01",
        "😀",
        "\U0002f800",
        "\U000e0001",
        "\u0cc6\u0cd5",
    ]
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 4))) for _ in range(20000)]
    # The fast path must give exactly what the kernel gives on every row (Python's `unicodedata`
    # may use another Unicode version than Arrow's utf8proc, so it is not the reference here).
    expected = pc.utf8_normalize(pa.array(texts), form=form).to_pylist()
    assert normalize_unicode(pa.array(texts), form).to_pylist() == expected
    assert expected[:50] == [unicodedata.normalize(form, t) for t in texts[:50]]
    assert unstable_class(form).startswith("[") and unstable_class(form) is unstable_class(form)


# --- length_evaluator ---


def lengths(texts):
    op = LengthEvaluator()
    result = op.process(make_batch(op, texts))
    assert set(result) == {"chars", "words", "lines"}
    for values in result.values():
        assert pa.array(values).type == pa.int64()
    return [
        tuple(row) for row in zip(*(result[k].to_pylist() for k in ("chars", "words", "lines")), strict=True)
    ]


def test_length_hand_computed():
    assert lengths(
        [
            "hello world",
            "",
            None,
            "a\n",
            "a\nb\n\nc",
            "\n",
            "\n\n",
            "  two\twords  ",
            "日本語テキスト",
            "😀 👨\u200d👩\u200d👧",
            "a\u00a0b\u3000c",
            "caf\u00e9 e\u0301",
            "a\x1cb",
            "\r\n",
        ]
    ) == [
        (11, 2, 1),
        (0, 0, 0),
        (None, None, None),
        (2, 1, 1),
        (6, 3, 4),
        (1, 0, 1),
        (2, 0, 2),
        (13, 2, 1),
        (7, 1, 1),  # CJK without spaces is one word
        (7, 2, 1),  # a family emoji is 5 code points
        (5, 3, 1),  # NBSP and ideographic space separate words
        (7, 2, 1),  # a combining accent is its own code point
        (3, 2, 1),  # as Python's str.split()
        (2, 0, 1),  # a lone "\r" is not a line break
    ]


def test_length_matches_python_on_random_text():
    rng = random.Random(7)
    alphabet = list("\t\n\x0b\x0c\r\x1c\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000")
    alphabet += list("ab日😀é\u200b\u00c2\u00e2\u2001\u3001")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(5000)]
    expected = [(len(t), len(t.split()), 0 if not t else t.count("\n") + 1 - t.endswith("\n")) for t in texts]
    assert lengths(texts) == expected


def test_word_and_line_counts_on_slices_and_large_strings():
    texts = ["a b", "", "x\ny\n", None, " c d e "]
    array = pa.array(texts, pa.large_string()).slice(1)
    words, lines = word_and_line_counts(array)
    assert words.to_pylist() == [0, 2, None, 3]
    assert lines.to_pylist() == [0, 2, None, 1]
    words, lines = word_and_line_counts(pa.array([None, ""], pa.string()))
    assert words.to_pylist() == [None, 0]
    assert lines.to_pylist() == [None, 0]


def test_length_of_a_huge_row():
    assert lengths(["word " * (BIG // 5), "x"]) == [(BIG // 5 * 5, BIG // 5, 1), (1, 1, 1)]


def test_length_schema_and_bound_outputs():
    op = LengthEvaluator(inputs={"text": "body"}, outputs={"chars": "body_chars"})
    assert op.required_columns() == ["body"]
    assert op.written_columns() == ["body_chars", "words", "lines"]
    assert op.transform_schema({"body": "string"}) == {
        "body": "string",
        "body_chars": "int64",
        "words": "int64",
        "lines": "int64",
    }


# --- regex_filter ---


def run_filter(op, texts, column="text"):
    verdict = op.process(make_batch(op, texts, column=column))
    assert isinstance(verdict, Verdict)
    keep = pa.array(verdict.keep)
    assert keep.type == pa.bool_() and keep.null_count == 0 and len(keep) == len(texts)
    return keep.to_pylist(), pa.array(verdict.reason, pa.string()).to_pylist()


def test_regex_keep_matching():
    op = RegexFilter(RegexFilter.Params(pattern="^Q:"))
    keep, reason = run_filter(op, ["Q: hi", "A: no", "", None, "xQ:"])
    assert keep == [True, False, False, False, False]
    no = "does not match /^Q:/"
    assert reason == [None, no, no, "`text` is null", no]


def test_regex_drop_matching_ignore_case_keeps_nulls():
    op = RegexFilter(RegexFilter.Params(pattern="lorem", mode="drop_matching", ignore_case=True))
    keep, reason = run_filter(op, ["Lorem ipsum", "ok", None, ""])
    assert keep == [False, True, True, True]
    assert reason == ["matches /lorem/i", None, None, None]


def test_regex_full_match_wraps_the_whole_pattern():
    op = RegexFilter(RegexFilter.Params(pattern=r"\d+|ab", full_match=True))
    keep, reason = run_filter(op, ["123", "12a", "ab", "xab", "", "123\n"])
    assert keep == [True, False, True, False, False, False]
    assert reason[1] == r"does not fully match /\d+|ab/"
    op = RegexFilter(RegexFilter.Params(pattern="ab", full_match=True, mode="drop_matching"))
    assert run_filter(op, ["ab", "abc"]) == ([False, True], ["fully matches /ab/", None])


def test_regex_unicode_and_cjk():
    op = RegexFilter(RegexFilter.Params(pattern=r"\p{Han}+", full_match=True))
    assert run_filter(op, ["日本語", "日本語です", "😀"])[0] == [True, False, False]
    op = RegexFilter(RegexFilter.Params(pattern="ÉTÉ", ignore_case=True))
    assert run_filter(op, ["un été chaud", "ete"])[0] == [True, False]
    op = RegexFilter(RegexFilter.Params(pattern="😀$"))
    assert run_filter(op, ["a 😀", "😀 a"])[0] == [True, False]


def test_regex_huge_row():
    op = RegexFilter(RegexFilter.Params(pattern="needle$"))
    assert run_filter(op, ["x" * BIG + "needle", "x" * BIG])[0] == [True, False]


def test_regex_reason_uses_the_bound_column_and_a_short_pattern():
    op = RegexFilter(RegexFilter.Params(pattern="a" * 100), inputs={"text": "body"})
    keep, reason = run_filter(op, [None, "b"], column="body")
    assert reason[0] == "`body` is null"
    assert reason[1] == "does not match /" + "a" * 59 + "…/"
    assert op.required_columns() == ["body"]
    assert op.written_columns() == []
    assert op.transform_schema({"body": "string"}) == {"body": "string"}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(abc", r"invalid regular expression /\(abc/: missing \): \(abc \(RE2 syntax"),
        ("a(?=b)", r"invalid regular expression /a\(\?=b\)/: invalid perl operator: \(\?="),
        (r"(a)\1", r"invalid escape sequence: \\1"),
        ("", "at least 1 character"),
    ],
)
def test_regex_invalid_patterns(pattern, message):
    with pytest.raises(ValidationError, match=message):
        RegexFilter.Params(pattern=pattern)


def test_regex_params_validation():
    with pytest.raises(ValidationError, match="keep_matching"):
        RegexFilter.Params(pattern="a", mode="keep")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        RegexFilter.Params(pattern="a", flags="i")
    with pytest.raises(ValidationError, match="Field required"):
        RegexFilter.Params()


@pytest.mark.parametrize(
    "array",
    [
        pa.array([], pa.string()),
        pa.nulls(3, pa.string()),
        pa.nulls(2),
        pa.array([None, "", None], pa.large_string()),
    ],
)
def test_empty_and_all_null_batches(array):
    table = pa.table({"text": array, "_id": [str(i) for i in range(len(array))]})
    expected = [None if v is None else "" for v in array.to_pylist()]
    counts = [None if v is None else 0 for v in array.to_pylist()]
    op = TextNormalizeRefiner(TextNormalizeRefiner.Params())
    assert op.process(Batch(table, op.input_columns))["text"].to_pylist() == expected
    op = LengthEvaluator()
    result = op.process(Batch(table, op.input_columns))
    assert {k: v.to_pylist() for k, v in result.items()} == {
        "chars": counts,
        "words": counts,
        "lines": counts,
    }
    op = RegexFilter(RegexFilter.Params(pattern="x", mode="drop_matching"))
    assert pa.array(op.process(Batch(table, op.input_columns)).keep).to_pylist() == [True] * len(array)


def test_string_view_columns_are_accepted():
    table = pa.table({"text": pa.array([" a  b ", None], pa.string_view()), "_id": ["0", "1"]})
    op = LengthEvaluator()
    assert op.process(Batch(table, op.input_columns))["words"].to_pylist() == [2, None]
    op = TextNormalizeRefiner(TextNormalizeRefiner.Params())
    assert op.process(Batch(table, op.input_columns))["text"].to_pylist() == ["a b", None]
