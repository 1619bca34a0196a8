"""Finding the final answer: boxes with matched braces, statements, bare answers, failures."""

from __future__ import annotations

import pytest
from dataflow_operators.math.extract import extract_answer, find_boxes, match_brace


def answer(text, **kw):
    return extract_answer(text, **kw).answer


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"so \boxed{5}.", "5"),
        (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"),  # nested braces
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),  # escaped braces do not count
        (r"\boxed{\left\{ x \right\}}", r"\left\{ x \right\}"),
        (r"\fbox{7}", "7"),
        (r"\framebox[2cm]{7}", "7"),
        (r"$\boxed 7$", "7"),
        (r"\boxed{\boxed{5}}", "5"),
        ("\\boxed{3}\n\nlater \\boxed{4}", "4"),  # the last box
        (r"$\boxed{2}$ and $\boxed{3}$", "2, 3"),  # one statement, two parts
        (r"$x=\boxed{2}$ or $x=\boxed{3}$", "2, 3"),
        (r"\boxed{2} \boxed{2}", "2"),  # repeated: one answer
    ],
)
def test_boxes(text, expected):
    extraction = extract_answer(text)
    assert extraction.answer == expected and extraction.source == "boxed"


def test_grouped_boxes_count_their_parts():
    assert extract_answer(r"$\boxed{2}$ and $\boxed{3}$").parts == 2
    assert extract_answer("\\boxed{2}.\n\nThen \\boxed{3}").parts == 1


@pytest.mark.parametrize(
    "text, reason",
    [
        ("so the answer is \\boxed{12", "truncated \\boxed{}"),
        ("\\boxed{5}\nWait, actually \\boxed{", "truncated \\boxed{}"),
        ("\\boxed{}", "empty \\boxed{}"),
        ("Line one of the work.\nLine two, and then we stop", "no final answer"),
        ("The final answer is", "no final answer"),
        ("", "empty reply"),
        (None, "empty reply"),
        ("Step one.\nThe answer is probably 5.", "hedged answer"),
        ("Step one.\nI'm not sure, but the answer is 5.", "hedged answer"),
        ("Step one.\nThe answer is either 3 or 4.", "hedged answer"),
    ],
)
def test_no_answer(text, reason):
    extraction = extract_answer(text)
    assert (extraction.answer, extraction.reason) == (None, reason)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Work.\nThe final answer is 5.", "5"),
        ("Work.\nFinal Answer: The final answer is $\\frac{2}{3}$. I hope it is correct.", "\\frac{2}{3}"),
        ("48/2 = 24\n#### 72", "72"),
        ("Work.\nAnswer: 12", "12"),
        ("Work.\n**Final Answer:** 9", "9"),
        ("Work.\n**Final Answer**\n$$\\frac{7}{2}$$", "\\frac{7}{2}"),
        ("Work.\nSo the answer is \\(\\frac{1}{4}\\).", "\\frac{1}{4}"),
        ("The answer is 7. Let me double-check: 3 + 4 = 7.", "7"),
        ("The answer is 3.\nWait. Recomputing, the answer is 4.", "4"),  # the last statement
        ("The answer is $\\frac{1}{2}$, which is 0.5.", "\\frac{1}{2}"),
        ("The answer is $x = 3$ or $x = 4$.", "x = 3 or x = 4"),
        ("The answer is 12 (a dozen).", "12"),
        ("The answer is approximately 3.14.", "3.14"),
    ],
)
def test_statements(text, expected):
    extraction = extract_answer(text)
    assert extraction.answer == expected and extraction.source == "statement"


def test_bare_answers_only_on_one_short_line():
    assert extract_answer("42").source == "bare"
    assert answer("$\\frac{1}{2}$") == "\\frac{1}{2}"
    assert answer("x" * 121) is None
    assert answer("x" * 121, bare_max_chars=200) == "x" * 121
    assert answer("42", bare_max_chars=0) is None
    assert answer("first line\nsecond line", bare_max_chars=None) == "first line\nsecond line"


def test_overlong_answers_are_refused():
    assert extract_answer("\\boxed{" + "1+" * 600 + "1}").reason == "answer too long"


def test_find_boxes_positions_and_truncation():
    text = r"a \boxed{1} b \boxed{\frac{2}{3}} c \boxed{4"
    boxes = find_boxes(text)
    assert [(b.content, text[b.start : b.start + 6]) for b in boxes] == [
        ("1", r"\boxed"),
        (r"\frac{2}{3}", r"\boxed"),
        (None, r"\boxed"),
    ]
    assert match_brace("{a{b}\\}c}", 0) == 8
    assert match_brace("{a{b}", 0) is None
