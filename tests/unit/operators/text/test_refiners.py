import json

import pyarrow as pa
import pytest
from dataflow_operators.text.emoji import EmojiRemovalRefiner
from dataflow_operators.text.html import HtmlToTextRefiner, html_to_text
from dataflow_operators.text.lines import BoilerplateLineRefiner, RepeatedLineRefiner
from dataflow_operators.text.punctuation import PunctuationNormalizeRefiner
from dataflow_operators.text.truncate import TruncateRefiner
from dataflow_operators.text.unicode_fix import UnicodeFixRefiner, fix_mojibake
from dataflow_operators.text.urls import UrlRemovalRefiner
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli import registry
from dataflow_cli.cli.app import app
from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch

BIG = 5 * 1024 * 1024
NAMES = [
    "html_to_text_refiner",
    "url_removal_refiner",
    "unicode_fix_refiner",
    "punctuation_normalize_refiner",
    "emoji_removal_refiner",
    "boilerplate_line_refiner",
    "repeated_line_refiner",
    "truncate_refiner",
]


def refine(op, texts, column="text", type=pa.string()):
    table = pa.table({column: pa.array(texts, type), "_id": [str(i) for i in range(len(texts))]})
    result = op.process(Batch(table, op.input_columns))
    assert set(result) == {"text"}
    out = pa.array(result["text"])
    assert out.type == type and len(out) == len(texts)
    return out.to_pylist()


def make(cls, **params):
    return cls(cls.Params(**params)) if cls.Params.model_fields else cls()


# --- conventions (as tests/unit/operators/test_conventions.py checks for the core built-ins) ---


@pytest.mark.parametrize("name", NAMES)
def test_nulls_empty_and_bound_column(name):
    cls = registry.load(name)
    op = cls(cls.Params(max_chars=5)) if cls is TruncateRefiner else cls()
    assert refine(op, [None, "", None]) == [None, "", None]
    assert refine(op, [], type=pa.large_string()) == []
    bound = cls(op.params, inputs={"text": "body"})
    assert bound.required_columns() == ["body"] and bound.written_columns() == ["body"]
    assert refine(bound, ["", None], column="body") == ["", None]
    with pytest.raises(DataflowError, match="must be text"):
        op.process(Batch(pa.table({"text": [1], "_id": ["0"]}), op.input_columns))


# --- html_to_text_refiner ---

PAGE = """<!DOCTYPE html>
<html><head><title>Page title</title><style>p { color: red }</style>
<script>var x = "<p>not text</p>";</script></head>
<body><noscript>Enable JS</noscript>
<h1>Caf&eacute; &amp; Bar</h1>
<p>First   paragraph,
spread over <b>two</b> lines.<br>After a break.</p>
<ul><li>one</li><li>two <a href="https://example.org/x">link</a>
<ol><li>nested</li></ol></li></ul>
<table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>30</td></tr></table>
<div>block</div><div>another</div>
<pre>  code
    indented</pre>
<p>&lt;tag&gt; &quot;q&quot; &#x263A; &nbsp;end</p>
</body></html>"""


def test_html_page():
    expected = (
        "Café & Bar\n\n"
        "First paragraph, spread over two lines.\nAfter a break.\n\n"
        "- one\n- two link\n  - nested\n\n"
        "Name | Age\nAnn | 30\n\n"
        "block\nanother\n\n"
        "  code\n    indented\n\n"
        '<tag> "q" ☺ \u00a0end'
    )
    assert refine(HtmlToTextRefiner(), [PAGE]) == [expected]


def test_html_keep_links():
    html = (
        '<p>See <a href="https://a.example/x?y=1">the docs</a>, <a href="#top">top</a>, '
        '<a href="javascript:void(0)">js</a>, <a href="https://b.example">https://b.example</a>'
        ' and <a href="/rel">rel</a>.</p>'
    )
    assert html_to_text(html) == "See the docs, top, js, https://b.example and rel."
    assert refine(make(HtmlToTextRefiner, keep_links=True), [html]) == [
        "See the docs (https://a.example/x?y=1), top, js, https://b.example and rel (/rel)."
    ]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("plain text\n\nwithout   tags", "plain text\n\nwithout   tags"),  # no < or &: unchanged
        ("a &amp; b", "a & b"),
        ("<p>a</p><p></p><p></p><p>b</p>", "a\n\nb"),
        ("a<br><br><br><br>b", "a\n\nb"),  # blank lines collapse to one
        ("<div>x</div>\n\n\n<div>y</div>", "x\ny"),
        ("<html><head><title>T</title><p>body text", "body text"),  # <p> closes an unclosed head
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("<p>日本語の<b>テキスト</b>😀</p>", "日本語のテキスト😀"),
        ("<script>only script</script>", ""),
        ("a < b and c > d", "a < b and c > d"),
        ("<![weird marked section", "<![weird marked section"),  # the parser gives up: tags stripped
        ("<p>x</p><!-- comment --><p>y</p>", "x\n\ny"),
        ("<svg><text>drawn</text></svg>seen", "seen"),
        ("<img src=a.png alt=pic>text<hr>after", "text\n\nafter"),
    ],
)
def test_html_cases(html, expected):
    assert html_to_text(html) == expected


def test_html_huge_row():
    html = "<p>" + "word " * (BIG // 5) + "</p>"
    out = refine(HtmlToTextRefiner(), [html, "<b>x</b>"])
    assert out[1] == "x"
    assert len(out[0]) == BIG // 5 * 5 - 1 and out[0].startswith("word word")


# --- url_removal_refiner ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://example.com/a?b=1&c=2 for more", "see for more"),
        ("Go to https://example.com.", "Go to."),
        ("(https://example.com) and [www.example.org] and <http://x.y/z>", "and and"),
        ("visit www.example.com today", "visit today"),
        ("ftp://files.example.net/pub/file.tar.gz", ""),
        ("HTTPS://EXAMPLE.COM/PATH works", "works"),
        ("https://en.wikipedia.org/wiki/Foo_(bar), next", ", next"),
        ("line one\nhttp://a.example\nline three", "line one\nline three"),
        ("links: https://a.example https://b.example end", "links: end"),
        ("no url here: example.com or http:// alone", "no url here: example.com or http:// alone"),
        ("mail john@example.com", "mail john@example.com"),
        ("日本語 https://例え.jp/パス です", "日本語 です"),
        ("😀 https://x.example 😀", "😀 😀"),
        ("wwwsite.com and xhttp://a.b", "wwwsite.com and xhttp://a.b"),
    ],
)
def test_url_removal(text, expected):
    assert refine(UrlRemovalRefiner(), [text]) == [expected]


def test_url_removal_emails_and_replacement():
    text = "Mail john.doe+x@mail.example.co.uk or mailto:ann@ex.org, see https://ex.org."
    assert refine(make(UrlRemovalRefiner, remove_emails=True), [text]) == ["Mail or, see."]
    assert refine(make(UrlRemovalRefiner, remove_emails=True, replacement="<URL>"), [text]) == [
        "Mail <URL> or <URL>, see <URL>."
    ]
    assert refine(make(UrlRemovalRefiner, replacement="[\\1 link]"), ["a http://x.y b"]) == ["a [\\1 link] b"]


def test_url_removal_huge_row():
    text = "plain words " * (BIG // 12) + "https://example.com/end"
    out = refine(UrlRemovalRefiner(), [text, "x"])
    assert out == [text[: -len(" https://example.com/end")], "x"]


def test_url_removal_when_the_markers_occur_in_the_text():
    markers = "".join(chr(c) for c in range(0xFDD0, 0xFDF0))
    assert refine(UrlRemovalRefiner(), [markers + " see http://a.b now"]) == [markers + " see now"]


# --- unicode_fix_refiner ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cafÃ©", "café"),
        ("itâ€™s â€œquotedâ€\x9d", "it’s “quoted”"),
        ("Ã¼ber naÃ¯ve", "über naïve"),
        ("ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Привет"),
        ("æ—¥æœ¬èªž", "日本語"),
        ("emoji ðŸ˜€", "emoji 😀"),
        ("cafÃƒÂ©", "café"),  # encoded twice
        ("café and cafÃ©", "café and café"),  # correct and broken text mixed
        ("Fuß“ steht", "Fuß“ steht"),  # a lone ß+quote is German, not mojibake
        ("Â£5", "£5"),
        ("plain ASCII", "plain ASCII"),
        ("日本語 😀 ÀÉÎ", "日本語 😀 ÀÉÎ"),
    ],
)
def test_mojibake(text, expected):
    assert fix_mojibake(text) == expected
    assert refine(make(UnicodeFixRefiner, form=None, remove_control=False), [text]) == [expected]


def test_unicode_fix_normalization_and_controls():
    texts = ["e\u0301\ufb01", "a\r\nb\rc\x00d\x1b[0m\x7fe\x85f\ufeffg\th\n", "cafÃ©\u00a0"]
    assert refine(UnicodeFixRefiner(), texts) == ["\u00e9\ufb01", "a\nb\ncd[0mefg\th\n", "café\u00a0"]
    assert refine(make(UnicodeFixRefiner, form="NFKC"), texts[:1]) == ["\u00e9fi"]
    assert refine(make(UnicodeFixRefiner, fix_mojibake=False, remove_control=False), ["cafÃ©\x00"]) == [
        "cafÃ©\x00"
    ]


def test_unicode_fix_huge_row():
    text = "normal text " * (BIG // 12) + "cafÃ©\x00"
    assert refine(UnicodeFixRefiner(), [text]) == ["normal text " * (BIG // 12) + "café"]


# --- punctuation_normalize_refiner ---


def test_punctuation_defaults():
    texts = [
        "“Hello,” she said — ‘it’s fine’…",
        "Wait!!!!!! Really?????? ok.... -----",
        "你好！（测试）：１２３？",
        "range 1–5, minus −3, „Zitat“",
        "😀😀😀😀😀 ★★★★★ «guillemets»",
        "...",
    ]
    assert refine(PunctuationNormalizeRefiner(), texts) == [
        "\"Hello,\" she said - 'it's fine'...",
        "Wait!!! Really??? ok... ---",
        "你好!(测试):１２３?",  # fullwidth digits are left to NFKC
        'range 1-5, minus -3, "Zitat"',
        "😀😀😀😀😀 ★★★★★ «guillemets»",
        "...",
    ]


def test_punctuation_switches():
    text = "“a” – b… ！！！！！"
    assert refine(make(PunctuationNormalizeRefiner, quotes=False), [text]) == ["“a” - b... !!!"]
    assert refine(make(PunctuationNormalizeRefiner, dashes=False, ellipsis=False), [text]) == ['"a" – b… !!!']
    assert refine(make(PunctuationNormalizeRefiner, fullwidth=False, max_repeat=None), [text]) == [
        '"a" - b... ！！！！！'
    ]
    assert refine(make(PunctuationNormalizeRefiner, max_repeat=1), ["Hi!!! ...", "a--b"]) == ["Hi! .", "a-b"]
    off = make(
        PunctuationNormalizeRefiner,
        quotes=False,
        dashes=False,
        ellipsis=False,
        fullwidth=False,
        max_repeat=None,
    )
    assert refine(off, [text]) == [text]
    with pytest.raises(ValidationError):
        PunctuationNormalizeRefiner.Params(max_repeat=0)


def test_punctuation_huge_row():
    text = "word " * (BIG // 5) + "“end”!!!!"
    assert refine(PunctuationNormalizeRefiner(), [text]) == ["word " * (BIG // 5) + '"end"!!!']


# --- emoji_removal_refiner ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello 😀 world", "Hello world"),
        ("Great job 👍", "Great job"),
        ("👋 Hi", "Hi"),
        ("Hi😀 there", "Hi there"),
        ("fun 😀, right", "fun, right"),
        ("family 👨\u200d👩\u200d👧\u200d👦 photo", "family photo"),
        ("thumbs 👍🏽 up", "thumbs up"),
        ("flags 🇫🇷🇯🇵 here", "flags here"),
        ("scotland 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f!", "scotland!"),
        ("keycap 1\ufe0f\u20e3 and #\ufe0f\u20e3 done", "keycap and done"),
        ("rainbow 🏳\ufe0f\u200d🌈 flag", "rainbow flag"),
        ("I ❤️ NY", "I NY"),
        ("heart ❤ text-style", "heart text-style"),
        ("sun ☀️ and ✔ check ⭐ star", "sun and check star"),
        ("© 2024 Acme™ ® ‼ ↔ ▶", "© 2024 Acme™ ® ‼ ↔ ▶"),  # text symbols stay
        ("©\ufe0f as emoji", "as emoji"),
        ("line\n🎉🎉\nnext", "line\nnext"),
        ("🎉", ""),
        ("日本語😀テキスト", "日本語テキスト"),
        ("क्\u200dष", "क्\u200dष"),  # a joiner in Devanagari stays
        ("digits 1 2 # * stay", "digits 1 2 # * stay"),
        ("arrows → ← and ♪ kept? no: ♪ is pictographic", "arrows → ← and kept? no: is pictographic"),
    ],
)
def test_emoji_removal(text, expected):
    assert refine(EmojiRemovalRefiner(), [text]) == [expected]


def test_emoji_removal_huge_row():
    text = "Hello world. " * (BIG // 13)
    assert refine(EmojiRemovalRefiner(), [text + "😀", "😀 x"]) == [text.rstrip(), "x"]


# --- boilerplate_line_refiner ---

CONTENT = "The river flooded the lower town twice in the last decade."


@pytest.mark.parametrize(
    "line",
    [
        "We use cookies to improve your experience.",
        "This site uses cookies.",
        "Accept all cookies",
        "© 2024 Example Inc. All rights reserved.",
        "Copyright 2019-2024 Foo",
        "Subscribe to our newsletter",
        "Sign up for our weekly newsletter!",
        "Share on Facebook",
        "Share this article on Twitter",
        "Share:",
        "Follow us on Instagram",
        "Click here to download the file",
        "Terms of Use | Privacy Policy",
        "Terms and Conditions",
        "Skip to main content",
        "Log in / Sign up",
        "  Login | Register  ",
        "Sign in",
        "JavaScript must be enabled to view this page.",
        "Please enable JavaScript in your browser.",
        "Back to top",
        "Read more »",
    ],
)
def test_boilerplate_lines_are_dropped(line):
    assert refine(BoilerplateLineRefiner(), [f"{CONTENT}\n{line}\n{CONTENT}"]) == [f"{CONTENT}\n{CONTENT}"]


@pytest.mark.parametrize(
    "line",
    [
        "You can sign up at the front desk before noon.",
        "The cookies were baked with brown sugar.",
        "He shared his lunch with a friend.",
        "Reading more books is a good habit.",
        "Our JavaScript course starts on Monday.",
    ],
)
def test_ordinary_lines_are_kept(line):
    text = f"{CONTENT}\n{line}"
    assert refine(BoilerplateLineRefiner(), [text]) == [text]


def test_boilerplate_keeps_lines_untouched_and_long_lines():
    long_line = "A long article paragraph about the privacy policy of the company. " * 4
    text = f"  indented line\t\r\nWe use cookies.\r\n{long_line}\n\n日本語 😀\nAll rights reserved"
    assert refine(BoilerplateLineRefiner(), [text]) == [f"  indented line\t\r\n{long_line}\n\n日本語 😀"]
    assert refine(make(BoilerplateLineRefiner, max_line_chars=None), [text]) == [
        "  indented line\t\r\n\n日本語 😀"
    ]
    assert refine(BoilerplateLineRefiner(), ["Click here", "a\nShare on Twitter"]) == ["", "a"]


def test_boilerplate_custom_patterns():
    text = "Advertisement\nReal text.\nSponsored content\nPrivacy policy"
    assert refine(make(BoilerplateLineRefiner, patterns=["^advertisement$", "sponsored"]), [text]) == [
        "Real text."
    ]
    only = make(BoilerplateLineRefiner, patterns=["^advertisement$"], replace_defaults=True)
    assert refine(only, [text]) == ["Real text.\nSponsored content\nPrivacy policy"]
    with pytest.raises(ValidationError, match="invalid regular expression"):
        BoilerplateLineRefiner.Params(patterns=["(a"])
    with pytest.raises(ValidationError, match="needs at least one pattern"):
        BoilerplateLineRefiner.Params(replace_defaults=True)


def test_boilerplate_huge_row():
    text = (CONTENT + "\n") * (BIG // 60)
    assert refine(BoilerplateLineRefiner(), [text + "Share on Facebook"]) == [text[:-1]]


# --- repeated_line_refiner ---


def test_repeated_lines():
    text = "Header of the site\nFirst paragraph text.\n\n---\nHeader of the site\n\n---\nfirst  PARAGRAPH text.\nok\nok"
    assert refine(RepeatedLineRefiner(), [text]) == [
        "Header of the site\nFirst paragraph text.\n\n---\n\n---\nfirst  PARAGRAPH text.\nok\nok"
    ]
    assert refine(make(RepeatedLineRefiner, normalize=True), [text]) == [
        "Header of the site\nFirst paragraph text.\n\n---\n\n---\nok\nok"
    ]
    assert refine(make(RepeatedLineRefiner, min_chars=0), [text]) == [
        "Header of the site\nFirst paragraph text.\n\n---\nfirst  PARAGRAPH text.\nok"
    ]


def test_repeated_lines_are_per_document_and_stripped():
    docs = [
        "same line of text\nother line here",
        "same line of text",
        "  same line of text  \nsame line of text",
    ]
    assert refine(RepeatedLineRefiner(), docs) == [docs[0], docs[1], "  same line of text  "]
    cjk = "日本語のテキストです。長い文。\n日本語のテキストです。長い文。\n😀😀😀😀😀😀😀😀😀😀\n😀😀😀😀😀😀😀😀😀😀"
    assert refine(RepeatedLineRefiner(), [cjk]) == ["日本語のテキストです。長い文。\n😀😀😀😀😀😀😀😀😀😀"]
    assert refine(RepeatedLineRefiner(), ["no newline at all"]) == ["no newline at all"]


def test_repeated_lines_huge_row():
    text = "".join(f"line number {i % 1000:04d}\n" for i in range(BIG // 17))
    out = refine(RepeatedLineRefiner(), [text])[0]
    assert out == "".join(f"line number {i:04d}\n" for i in range(1000))


# --- truncate_refiner ---


@pytest.mark.parametrize(
    ("params", "text", "expected"),
    [
        ({"max_chars": 12}, "The quick brown fox", "The quick"),
        ({"max_chars": 19}, "The quick brown fox", "The quick brown fox"),
        ({"max_chars": 12, "suffix": "…"}, "The quick brown fox", "The quick…"),
        ({"max_chars": 10, "suffix": " [...]"}, "The quick brown fox", "The [...]"),
        ({"max_chars": 4}, "Supercalifragilistic", "Supe"),  # no boundary: a hard cut
        ({"max_chars": 5}, "日本語のテキストです", "日本語のテ"),  # CJK characters are boundaries
        ({"max_chars": 6}, "Hello, world", "Hello,"),
        ({"max_chars": 8}, "Hello, world", "Hello,"),
        ({"max_words": 3}, "one two\nthree  four five", "one two\nthree"),
        ({"max_words": 5}, "one two three", "one two three"),
        ({"max_tokens": 3}, "Hello, world! How are you?", "Hello, world"),
        ({"max_tokens": 3}, "don't stop", "don't"),
        ({"max_tokens": 2}, "don't stop", "don'"),  # no boundary before: hard cut at the token end
        ({"max_tokens": 4}, "日本語のテキスト", "日本語の"),
        ({"max_tokens": 4}, "I ❤️ NY 😀", "I ❤️ NY"),
        ({"max_words": 2, "max_chars": 100}, "a b c", "a b"),
        ({"max_words": 100, "max_chars": 3}, "ab cd ef", "ab"),
    ],
)
def test_truncate(params, text, expected):
    assert refine(make(TruncateRefiner, **params), [text]) == [expected]


def test_truncate_params():
    with pytest.raises(ValidationError, match="at least one of"):
        TruncateRefiner.Params()
    with pytest.raises(ValidationError, match="shorter than `max_chars`"):
        TruncateRefiner.Params(max_chars=3, suffix="...")
    with pytest.raises(ValidationError):
        TruncateRefiner.Params(max_words=0)


def test_truncate_huge_row():
    text = "word " * (BIG // 5)
    for params in ({"max_chars": 14}, {"max_words": 3}, {"max_tokens": 3}):
        assert refine(make(TruncateRefiner, **params), [text, "short"]) == ["word word word", "short"]
    assert refine(make(TruncateRefiner, max_chars=BIG), [text]) == [text]


# --- end to end through the CLI ---


def test_refiners_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"text": "<p>Caf&eacute; “news” — see https://example.com 😀</p><p>We use cookies.</p>"},
        {"text": "Line that repeats here\nLine that repeats here\nitâ€™s fine!!!!!!"},
        {"text": None},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: refine\ninput: {path: in.jsonl}\noutput: {path: out/o.jsonl}\nstages:\n"
        "  - {name: html, op: html_to_text_refiner}\n"
        "  - {name: fix, op: unicode_fix_refiner}\n"
        "  - {name: urls, op: url_removal_refiner}\n"
        "  - {name: emoji, op: emoji_removal_refiner}\n"
        "  - {name: punct, op: punctuation_normalize_refiner}\n"
        "  - {name: boiler, op: boilerplate_line_refiner}\n"
        "  - {name: repeated, op: repeated_line_refiner}\n"
        "  - {name: cut, op: truncate_refiner, params: {max_words: 6}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["rows_read"], stats["rows_written"]) == (3, 3)
    out = [json.loads(line) for line in (tmp_path / "out" / "o.jsonl").read_text().splitlines()]
    assert [r["text"] for r in out] == [
        'Café "news" - see\n',  # the blank line before the dropped cookie line stays
        "Line that repeats here\nit's fine!!!",
        None,
    ]
