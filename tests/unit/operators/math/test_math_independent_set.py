"""An independent labelled set for the answer verifier, written apart from labelled_answers.py.

It plays the hidden set: whole model replies (chain of thought ending in a box, "The answer is",
`####`), every answer form of issue 9, and as many tricky negatives (near misses, rounding,
wrong brackets, extra answers, hedges, truncation) as positives. Hostile inputs must get a
verdict, never a crash or a hang. Per-form table: `pytest -s -k independent`.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from dataflow_operators.math.verifier import AnswerVerifier


def cot(final: str, lead: str = "") -> str:
    """A realistic multi-line solution with distracting intermediate numbers, ending in `final`."""
    return (
        "Let's solve this step by step.\n\n"
        "First, we compute the intermediate quantity: $3 \\times 4 = 12$ and $12 - 5 = 7$.\n"
        "Next, substituting back gives $2 \\cdot 7 = 14$, so $\\frac{14}{2} = 7$.\n"
        f"{lead}"
        "Checking our work, everything is consistent.\n\n"
        f"{final}"
    )


# (form, model output, gold, equivalent?)
CASES: list[tuple[str, str, str, bool]] = [
    # integers -------------------------------------------------------------------------------
    ("integer", cot("Therefore the answer is $\\boxed{42}$."), "42", True),
    ("integer", cot("So the final answer is $\\boxed{41}$."), "42", False),
    ("integer", "The answer is 17.", "17", True),
    ("integer", "The answer is 17.", "71", False),
    ("integer", "#### 250", "250", True),
    ("integer", "She has 20 left.\n#### 25", "25", True),
    ("integer", "She has 25 left.\n#### 20", "25", False),
    ("integer", "\\boxed{007}", "7", True),
    ("integer", "\\boxed{+5}", "5", True),
    ("integer", "\\boxed{5.0}", "5", True),
    ("integer", "\\boxed{5.01}", "5", False),
    ("integer", "\\boxed{50}", "5", False),
    ("integer", "Final Answer: The final answer is $12$. I hope it is correct.", "12", True),
    ("integer", "Final Answer: The final answer is $21$. I hope it is correct.", "12", False),
    ("integer", "**Answer:** 9", "9", True),
    ("integer", "**Answer:** 8", "9", False),
    # negatives ------------------------------------------------------------------------------
    ("negative", "\\boxed{-3}", "-3", True),
    ("negative", "\\boxed{3}", "-3", False),
    ("negative", "\\boxed{-3}", "3", False),
    ("negative", "\\boxed{- 3}", "-3", True),
    ("negative", "\\boxed{-\\frac{1}{2}}", "-1/2", True),
    ("negative", "\\boxed{\\frac{-1}{2}}", "-\\frac{1}{2}", True),
    ("negative", "\\boxed{\\frac{1}{-2}}", "-0.5", True),
    ("negative", "\\boxed{\\frac{1}{2}}", "-0.5", False),
    ("negative", "The answer is \u22127.", "-7", True),
    ("negative", "The answer is \u22127.", "7", False),
    ("negative", "\\boxed{-(-4)}", "4", True),
    ("negative", "\\boxed{-0}", "0", True),
    # thousands separators -------------------------------------------------------------------
    ("separators", "\\boxed{1,000}", "1000", True),
    ("separators", "\\boxed{1{,}000{,}000}", "1000000", True),
    ("separators", "\\boxed{1\\,000}", "1000", True),
    ("separators", "The answer is 12,345.", "12345", True),
    ("separators", "The answer is 12,354.", "12345", False),
    ("separators", "\\boxed{1,000}", "100", False),
    ("separators", "\\boxed{10,000}", "1000", False),
    ("separators", "#### 1,250", "1250", True),
    ("separators", "\\boxed{\\$1,250}", "1250", True),
    ("separators", "\\boxed{1,250.50}", "1250.5", True),
    ("separators", "\\boxed{1,250.05}", "1250.5", False),
    # decimals -------------------------------------------------------------------------------
    ("decimal", "\\boxed{0.5}", "0.50", True),
    ("decimal", "\\boxed{.5}", "0.5", True),
    ("decimal", "\\boxed{0.05}", "0.5", False),
    ("decimal", "\\boxed{2.50}", "2.5", True),
    ("decimal", "\\boxed{2.05}", "2.5", False),
    ("decimal", "\\boxed{3.14}", "3.14", True),
    ("decimal", "\\boxed{3.141}", "3.14", False),
    ("decimal", "\\boxed{0.125}", "\\frac{1}{8}", True),
    ("decimal", "\\boxed{0.12}", "\\frac{1}{8}", False),
    # fractions ------------------------------------------------------------------------------
    ("fraction", "\\boxed{\\frac{3}{4}}", "3/4", True),
    ("fraction", "\\boxed{\\dfrac{3}{4}}", "\\frac34", True),
    ("fraction", "\\boxed{\\tfrac{3}{4}}", "0.75", True),
    ("fraction", "\\boxed{\\frac34}", "\\frac{3}{4}", True),
    ("fraction", "\\boxed{\\frac43}", "\\frac{3}{4}", False),
    ("fraction", "\\boxed{\\frac{6}{8}}", "\\frac{3}{4}", True),
    ("fraction", "\\boxed{\\frac{3}{5}}", "\\frac{3}{4}", False),
    ("fraction", "\\boxed{3/4}", "\\dfrac{3}{4}", True),
    ("fraction", "\\boxed{\\frac{1}{3}}", "0.333", False),
    ("fraction", "\\boxed{0.3333}", "\\frac{1}{3}", False),
    ("fraction", "\\boxed{0.\\overline{3}}", "\\frac{1}{3}", True),
    ("fraction", "\\boxed{\\frac{2}{3}}", "0.67", False),
    ("fraction", "\\boxed{\\frac{\\frac{1}{2}}{2}}", "\\frac{1}{4}", True),
    ("fraction", "\\boxed{{\\frac{1}{2}}}", "1/2", True),
    ("fraction", "\\boxed{\\frac{1}{2}}", "2", False),
    ("fraction", "\\boxed{\\frac 12}", "0.5", True),
    # mixed numbers --------------------------------------------------------------------------
    ("mixed", "\\boxed{2\\frac{1}{2}}", "5/2", True),
    ("mixed", "\\boxed{2\\frac{1}{2}}", "1", False),
    ("mixed", "\\boxed{2 \\frac{1}{2}}", "2.5", True),
    ("mixed", "The answer is 3 1/4.", "13/4", True),
    ("mixed", "The answer is 3 1/4.", "3/4", False),
    ("mixed", "\\boxed{-1\\frac{1}{2}}", "-3/2", True),
    ("mixed", "\\boxed{-1\\frac{1}{2}}", "-1/2", False),
    ("mixed", "\\boxed{\\frac{7}{2}}", "3\\frac{1}{2}", True),
    ("mixed", "\\boxed{\\frac{7}{2}}", "3\\frac{1}{3}", False),
    # percentages ----------------------------------------------------------------------------
    ("percent", "\\boxed{25\\%}", "25", True),
    ("percent", "\\boxed{25\\%}", "25\\%", True),
    ("percent", "\\boxed{25\\%}", "0.25", True),
    ("percent", "\\boxed{25\\%}", "2.5", False),
    ("percent", "\\boxed{25\\%}", "35\\%", False),
    ("percent", "The answer is 12.5%.", "12.5\\%", True),
    ("percent", "The answer is 12.5%.", "1.25\\%", False),
    ("percent", "\\boxed{50}", "50\\%", True),
    ("percent", "\\boxed{5}", "50\\%", False),
    ("percent", "\\boxed{\\frac{1}{2}}", "50\\%", True),
    # degrees --------------------------------------------------------------------------------
    ("degrees", "\\boxed{30^\\circ}", "30", True),
    ("degrees", "\\boxed{30^{\\circ}}", "30^\\circ", True),
    ("degrees", "\\boxed{30\u00b0}", "30", True),
    ("degrees", "\\boxed{60^\\circ}", "30", False),
    ("degrees", "The angle measures $45^\\circ$.\n\nThe answer is $45^\\circ$.", "45", True),
    ("degrees", "\\boxed{135^\\circ}", "45", False),
    ("degrees", "\\boxed{30 \\text{ degrees}}", "30", True),
    # units and trailing text ----------------------------------------------------------------
    ("units", "\\boxed{5 \\text{ cm}}", "5", True),
    ("units", "\\boxed{5\\text{cm}}", "5", True),
    ("units", "\\boxed{5 \\text{ cm}}", "6", False),
    ("units", "\\boxed{5 \\text{ cm}^2}", "5", True),
    ("units", "The answer is 5 apples.", "5", True),
    ("units", "The answer is 6 apples.", "5", False),
    ("units", "\\boxed{\\$18.90}", "18.9", True),
    ("units", "\\boxed{\\$18.09}", "18.9", False),
    ("units", "#### 36 dollars", "36", True),
    ("units", "\\boxed{12 \\mbox{ meters}}", "12", True),
    ("units", "\\boxed{12 \\mbox{ meters}}", "21", False),
    ("units", "\\boxed{3 \\text{ hours}}", "3", True),
    ("units", "\\boxed{3.5 \\text{ km/h}}", "3.5", True),
    ("units", "\\boxed{3.5 \\text{ km/h}}", "35", False),
    # scientific notation --------------------------------------------------------------------
    ("scientific", "\\boxed{3 \\times 10^{5}}", "300000", True),
    ("scientific", "\\boxed{3 \\times 10^{4}}", "300000", False),
    ("scientific", "\\boxed{3\\cdot 10^5}", "3e5", True),
    ("scientific", "\\boxed{1.2 \\times 10^{-3}}", "0.0012", True),
    ("scientific", "\\boxed{1.2 \\times 10^{-3}}", "0.012", False),
    ("scientific", "\\boxed{2.5e3}", "2500", True),
    ("scientific", "\\boxed{2.5e-3}", "2500", False),
    ("scientific", "\\boxed{6.02 \\times 10^{23}}", "6.02 \\times 10^{23}", True),
    ("scientific", "\\boxed{6.02 \\times 10^{23}}", "6.02 \\times 10^{22}", False),
    # radicals, pi, e ------------------------------------------------------------------------
    ("symbolic", "\\boxed{2\\sqrt{2}}", "\\sqrt{8}", True),
    ("symbolic", "\\boxed{2\\sqrt{3}}", "\\sqrt{8}", False),
    ("symbolic", "\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}", True),
    ("symbolic", "\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{1}{\\sqrt{2}}", False),
    ("symbolic", "\\boxed{\\sqrt2}", "\\sqrt{2}", True),
    ("symbolic", "\\boxed{1.414}", "\\sqrt{2}", False),
    ("symbolic", "\\boxed{\\sqrt[3]{27}}", "3", True),
    ("symbolic", "\\boxed{\\sqrt[3]{9}}", "3", False),
    ("symbolic", "\\boxed{2\\pi}", "2\\pi", True),
    ("symbolic", "\\boxed{\\pi}", "2\\pi", False),
    ("symbolic", "\\boxed{3.14}", "\\pi", False),
    ("symbolic", "\\boxed{\\frac{\\pi}{2}}", "\\pi/2", True),
    ("symbolic", "\\boxed{\\frac{\\pi}{3}}", "\\pi/2", False),
    ("symbolic", "\\boxed{4\\pi r^2}", "4 \\pi r^{2}", True),
    ("symbolic", "\\boxed{e^2}", "e^{2}", True),
    ("symbolic", "\\boxed{e^3}", "e^{2}", False),
    ("symbolic", "\\boxed{2.718}", "e", False),
    ("symbolic", "\\boxed{\\ln(e^3)}", "3", True),
    ("symbolic", "\\boxed{\\sin\\frac{\\pi}{6}}", "\\frac{1}{2}", True),
    ("symbolic", "\\boxed{\\cos\\frac{\\pi}{6}}", "\\frac{1}{2}", False),
    ("symbolic", "\\boxed{\\binom{5}{2}}", "10", True),
    ("symbolic", "\\boxed{5!}", "120", True),
    ("symbolic", "\\boxed{4!}", "120", False),
    ("symbolic", "\\boxed{2^{10}}", "1024", True),
    ("symbolic", "\\boxed{2^{11}}", "1024", False),
    ("symbolic", "\\boxed{\\log_2 8}", "3", True),
    # complex numbers ------------------------------------------------------------------------
    ("complex", "\\boxed{3+4i}", "3+4i", True),
    ("complex", "\\boxed{4i+3}", "3+4i", True),
    ("complex", "\\boxed{3-4i}", "3+4i", False),
    ("complex", "\\boxed{i}", "\\sqrt{-1}", True),
    ("complex", "\\boxed{-i}", "i", False),
    ("complex", "\\boxed{\\frac{1+i}{2}}", "\\frac{1}{2}+\\frac{1}{2}i", True),
    ("complex", "\\boxed{\\frac{1-i}{2}}", "\\frac{1}{2}+\\frac{1}{2}i", False),
    ("complex", "\\boxed{i^2}", "-1", True),
    # expressions ----------------------------------------------------------------------------
    ("expression", "\\boxed{(x-1)(x+1)}", "x^2-1", True),
    ("expression", "\\boxed{(x-1)^2}", "x^2-1", False),
    ("expression", "\\boxed{x^2+2x+1}", "(x+1)^2", True),
    ("expression", "\\boxed{x^2+x+1}", "(x+1)^2", False),
    ("expression", "\\boxed{\\frac{x^2-1}{x-1}}", "x+1", True),
    ("expression", "\\boxed{2(a+b)}", "2a+2b", True),
    ("expression", "\\boxed{2a+b}", "2a+2b", False),
    ("expression", "\\boxed{\\frac{1}{x}+\\frac{1}{y}}", "\\frac{x+y}{xy}", True),
    ("expression", "\\boxed{\\frac{1}{x+y}}", "\\frac{x+y}{xy}", False),
    ("expression", "\\boxed{3x^{2}}", "3x^2", True),
    ("expression", "\\boxed{3x^{3}}", "3x^2", False),
    ("expression", "\\boxed{x^{2}y}", "yx^2", True),
    ("expression", "\\boxed{\\sin^2 x + \\cos^2 x}", "1", True),
    ("expression", "\\boxed{2\\sin x\\cos x}", "\\sin 2x", True),
    ("expression", "\\boxed{\\sin x\\cos x}", "\\sin 2x", False),
    ("expression", "\\boxed{n(n+1)/2}", "\\frac{n^2+n}{2}", True),
    ("expression", "\\boxed{n(n-1)/2}", "\\frac{n^2+n}{2}", False),
    # equations ------------------------------------------------------------------------------
    ("equation", "\\boxed{y=2x+1}", "2x+1", True),
    ("equation", "\\boxed{y=2x+1}", "y=2x+1", True),
    ("equation", "\\boxed{y=2x-1}", "y=2x+1", False),
    ("equation", "\\boxed{y = 1 + 2x}", "y=2x+1", True),
    ("equation", "\\boxed{x=5}", "5", True),
    ("equation", "\\boxed{x=5}", "6", False),
    ("equation", "\\boxed{5}", "x=5", True),
    ("equation", "\\boxed{2x+y=3}", "4x+2y=6", True),
    ("equation", "\\boxed{2x+y=3}", "4x+2y=3", False),
    ("equation", "\\boxed{x^2+y^2=25}", "x^2+y^2=25", True),
    ("equation", "\\boxed{x^2+y^2=5}", "x^2+y^2=25", False),
    ("equation", "\\boxed{f(x)=x^2}", "x^2", True),
    ("equation", "\\boxed{a=3, b=4}", "a=3, b=4", True),
    ("equation", "\\boxed{a=4, b=3}", "a=3, b=4", False),
    # intervals and inequalities -------------------------------------------------------------
    ("interval", "\\boxed{(3,\\infty)}", "(3,\\infty)", True),
    ("interval", "\\boxed{[3,\\infty)}", "(3,\\infty)", False),
    ("interval", "\\boxed{x>3}", "(3,\\infty)", True),
    ("interval", "\\boxed{x\\geq 3}", "(3,\\infty)", False),
    ("interval", "\\boxed{x \\ge 3}", "[3,\\infty)", True),
    ("interval", "\\boxed{(-\\infty, 2]}", "x \\le 2", True),
    ("interval", "\\boxed{(-\\infty, 2)}", "x \\le 2", False),
    ("interval", "\\boxed{-1 < x < 2}", "(-1, 2)", True),
    ("interval", "\\boxed{-1 \\le x < 2}", "(-1, 2)", False),
    ("interval", "\\boxed{[1, 5]}", "[1,5]", True),
    ("interval", "\\boxed{[1, 5)}", "[1,5]", False),
    ("interval", "\\boxed{\\left[1, 5\\right]}", "[1,5]", True),
    ("interval", "\\boxed{(-\\infty,1)\\cup(2,\\infty)}", "(-\\infty,1)\\cup(2,\\infty)", True),
    ("interval", "\\boxed{(2,\\infty)\\cup(-\\infty,1)}", "(-\\infty,1)\\cup(2,\\infty)", True),
    ("interval", "\\boxed{(-\\infty,1]\\cup(2,\\infty)}", "(-\\infty,1)\\cup(2,\\infty)", False),
    ("interval", "\\boxed{(-\\infty,1)}", "(-\\infty,1)\\cup(2,\\infty)", False),
    ("interval", "\\boxed{x<1 \\text{ or } x>2}", "(-\\infty,1)\\cup(2,\\infty)", True),
    ("interval", "\\boxed{(-\\infty, \\infty)}", "\\mathbb{R}", True),
    ("interval", "\\boxed{(0, \\infty)}", "\\mathbb{R}", False),
    ("interval", "\\boxed{(\\frac{1}{2}, 3]}", "(0.5, 3]", True),
    ("interval", "\\boxed{(\\frac{1}{3}, 3]}", "(0.5, 3]", False),
    # infinity -------------------------------------------------------------------------------
    ("infinity", "\\boxed{\\infty}", "\\infty", True),
    ("infinity", "\\boxed{-\\infty}", "\\infty", False),
    ("infinity", "The limit is infinite, so the answer is $\\infty$.", "\\infty", True),
    ("infinity", "\\boxed{+\\infty}", "\\infty", True),
    ("infinity", "\\boxed{0}", "\\infty", False),
    # sets -----------------------------------------------------------------------------------
    ("set", "\\boxed{\\{1, 2, 3\\}}", "\\{3, 2, 1\\}", True),
    ("set", "\\boxed{\\{1, 2\\}}", "\\{1, 2, 3\\}", False),
    ("set", "\\boxed{\\{1, 2, 4\\}}", "\\{1, 2, 3\\}", False),
    ("set", "\\boxed{1, 2, 3}", "\\{1,2,3\\}", True),
    ("set", "\\boxed{x=1 \\text{ or } x=2}", "\\{1,2\\}", True),
    ("set", "\\boxed{x=1 \\text{ or } x=3}", "\\{1,2\\}", False),
    ("set", "The solutions are $x = -2$ and $x = 3$, so the answer is $\\boxed{-2, 3}$.", "3, -2", True),
    ("set", "\\boxed{2, 3}", "3, -2", False),
    ("set", "\\boxed{\\{\\frac{1}{2}, -1\\}}", "\\{-1, 0.5\\}", True),
    ("set", "\\boxed{\\pm 2}", "2, -2", True),
    ("set", "\\boxed{\\pm 2}", "2", False),
    # empty / no solution --------------------------------------------------------------------
    ("empty", "\\boxed{\\emptyset}", "\\varnothing", True),
    ("empty", "\\boxed{\\text{no solution}}", "\\emptyset", True),
    ("empty", "\\boxed{\\{\\}}", "\\emptyset", True),
    ("empty", "\\boxed{0}", "\\emptyset", False),
    ("empty", "\\boxed{\\{0\\}}", "\\emptyset", False),
    ("empty", "There is no real solution. The answer is: no solution.", "No solution", True),
    ("empty", "\\boxed{\\emptyset}", "\\{1\\}", False),
    # tuples / ordered pairs -----------------------------------------------------------------
    ("tuple", "\\boxed{(1, 2)}", "(1,2)", True),
    ("tuple", "\\boxed{(2, 1)}", "(1,2)", False),
    ("tuple", "\\boxed{(1, 2, 3)}", "(1,2)", False),
    ("tuple", "\\boxed{\\left(\\frac{1}{2}, -3\\right)}", "(0.5, -3)", True),
    ("tuple", "\\boxed{\\left(\\frac{1}{2}, 3\\right)}", "(0.5, -3)", False),
    ("tuple", "\\boxed{(x, y) = (3, 4)}", "(3,4)", True),
    ("tuple", "\\boxed{x=3, y=4}", "(3,4)", True),
    ("tuple", "\\boxed{x=4, y=3}", "(3,4)", False),
    ("tuple", "\\boxed{(1,2),(3,4)}", "(3,4),(1,2)", True),
    ("tuple", "\\boxed{(1,2),(4,3)}", "(3,4),(1,2)", False),
    ("tuple", "\\boxed{\\langle 1, 2, 3\\rangle}", "(1,2,3)", True),
    # matrices / vectors ---------------------------------------------------------------------
    ("matrix", "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}",
     "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    ("matrix", "\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 4 & 3 \\end{pmatrix}}",
     "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", False),
    ("matrix", "\\boxed{\\begin{bmatrix} 0.5 & 1 \\\\ 0 & 1 \\end{bmatrix}}",
     "\\begin{pmatrix}\\frac12&1\\\\0&1\\end{pmatrix}", True),
    ("matrix", "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
    ("matrix", "\\boxed{\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
    ("matrix", "\\boxed{\\begin{pmatrix} 1 & 2 \\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
    # multiple choice ------------------------------------------------------------------------
    ("choice", "\\boxed{B}", "B", True),
    ("choice", "\\boxed{(B)}", "B", True),
    ("choice", "The answer is (B).", "B", True),
    ("choice", "The answer is (C).", "B", False),
    ("choice", "\\boxed{\\text{(B)}}", "(B)", True),
    ("choice", "\\boxed{b}", "B", True),
    ("choice", "\\boxed{D}", "B", False),
    ("choice", "The correct option is C.", "C", True),
    ("choice", "The correct option is C.", "A", False),
    ("choice", "\\boxed{B \\text{ and } C}", "B", False),
    ("choice", "Answer: (A) 12", "A", True),
    ("choice", "Answer: (D) 12", "A", False),
    # text answers ---------------------------------------------------------------------------
    ("text", "\\boxed{\\text{Tuesday}}", "Tuesday", True),
    ("text", "\\boxed{\\text{tuesday}}", "Tuesday", True),
    ("text", "\\boxed{\\text{Wednesday}}", "Tuesday", False),
    ("text", "\\boxed{\\text{the circle}}", "circle", True),
    ("text", "\\boxed{\\text{an ellipse}}", "circle", False),
    ("text", "The answer is yes.", "Yes", True),
    ("text", "The answer is no.", "Yes", False),
    ("text", "\\boxed{\\text{even}}", "\\text{even}", True),
    ("text", "\\boxed{\\text{odd}}", "\\text{even}", False),
    # trailing period / \text wrapper --------------------------------------------------------
    ("trailing", "The answer is 8.", "8", True),
    ("trailing", "The answer is 8.5.", "8.5", True),
    ("trailing", "The answer is 8.5.", "8", False),
    ("trailing", "\\boxed{8.}", "8", True),
    ("trailing", "\\boxed{\\text{8}}", "8", True),
    ("trailing", "\\boxed{\\textbf{8}}", "8", True),
    ("trailing", "\\boxed{\\mathbf{9}}", "8", False),
    ("trailing", "The answer is $\\frac{3}{2}$.", "1.5", True),
    # answer statements ----------------------------------------------------------------------
    ("statement", cot("The answer is 7."), "7", True),
    ("statement", cot("The answer is 14."), "7", False),
    ("statement", cot("Final answer: 3/8"), "0.375", True),
    ("statement", cot("Final answer: 5/8"), "0.375", False),
    ("statement", "Answer: $\\dfrac{5}{6}$", "5/6", True),
    ("statement", "So the answer is **24**.", "24", True),
    ("statement", "So the answer is **42**.", "24", False),
    ("statement", "The final answer is\n\n$$\n\\frac{7}{3}\n$$", "7/3", True),
    ("statement", "Thus, the answer is $x = 4$.", "4", True),
    ("statement", "Thus, the answer is $x = 4$.", "-4", False),
    ("statement", "We get 10 apples.\nThe answer is 12.", "12", True),
    ("statement", "We get 12 apples.\nThe answer is 10.", "12", False),
    # multiple boxes -------------------------------------------------------------------------
    ("boxes", "First $\\boxed{3}$ is wrong; recompute.\n\nThe correct value is $\\boxed{5}$.", "5", True),
    ("boxes", "First $\\boxed{5}$ is right? No, recompute.\n\nThe value is $\\boxed{3}$.", "5", False),
    ("boxes", "$x = \\boxed{2}$ or $x = \\boxed{3}$", "2, 3", True),
    ("boxes", "$x = \\boxed{2}$ or $x = \\boxed{3}$", "2", False),
    ("boxes", "\\boxed{2} and \\boxed{-3}", "\\{-3, 2\\}", True),
    ("boxes", "\\boxed{2} and \\boxed{3}", "\\{-3, 2\\}", False),
    ("boxes", "The answer is 4, i.e. $\\boxed{4}$.", "4", True),
    ("boxes", "\\fbox{12}", "12", True),
    ("boxes", "\\boxed 7", "7", True),
    ("boxes", "\\boxed 7", "8", False),
    # nested braces --------------------------------------------------------------------------
    ("nested", "\\boxed{\\frac{\\sqrt{2}}{\\sqrt{8}}}", "\\frac{1}{2}", True),
    ("nested", "\\boxed{\\boxed{5}}", "5", True),
    ("nested", "\\boxed{{{{5}}}}", "5", True),
    ("nested", "\\boxed{\\{\\{1\\}\\}}", "\\{\\{1\\}\\}", True),
    ("nested", "\\boxed{\\frac{{1}}{{3}}}", "1/3", True),
    ("nested", "\\boxed{\\frac{{1}}{{3}}}", "1/4", False),
    ("nested", "\\boxed{2^{2^{2}}}", "16", True),
    ("nested", "\\boxed{2^{2^{3}}}", "64", False),
    # whole solutions ------------------------------------------------------------------------
    ("solution",
     "To find the sum of the roots of $x^2 - 5x + 6 = 0$, we use Vieta's formulas.\n"
     "The sum is $-b/a = 5$ and the product is $c/a = 6$.\n\n"
     "**Step 2.** Indeed, factoring gives $(x-2)(x-3) = 0$, so $x = 2$ or $x = 3$.\n\n"
     "Therefore the sum of the roots is $\\boxed{5}$.", "5", True),
    ("solution",
     "To find the product of the roots of $x^2 - 5x + 6 = 0$, we use Vieta's formulas.\n"
     "The sum is $-b/a = 5$.\n\nTherefore the product is $\\boxed{5}$.", "6", False),
    ("solution",
     "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
     "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18", "18", True),
    ("solution",
     "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
     "She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 9", "18", False),
    ("solution", cot("$$\\boxed{\\dfrac{14}{3}}$$"), "\\frac{14}{3}", True),
    ("solution", cot("$$\\boxed{\\dfrac{14}{3}}$$"), "14", False),
    ("solution", "<think>\nMaybe 4? Let me check: 2+2=4. Yes.\n</think>\n\nThe answer is $\\boxed{4}$.", "4", True),
    ("solution", cot("## Final Answer\n\n\\[\n\\boxed{(2, -1)}\n\\]"), "(2,-1)", True),
    ("solution", cot("## Final Answer\n\n\\[\n\\boxed{(2, -1)}\n\\]"), "(-1,2)", False),
    # truncated / no answer ------------------------------------------------------------------
    ("truncated", cot("So the answer is $\\boxed{\\frac{3}{"), "\\frac{3}{4}", False),
    ("truncated", "We first compute 3+4=7, and then multiply by", "7", False),
    ("truncated", cot("Earlier guess $\\boxed{7}$ but let me redo it: the answer is $\\boxed{1"), "7", False),
    ("truncated", "\\boxed{}", "0", False),
    ("truncated", "", "0", False),
    # hedged / multiple answers --------------------------------------------------------------
    ("hedged", "The answer is probably 5.", "5", False),
    ("hedged", "I think the answer is maybe 5 or 6.", "5", False),
    ("hedged", "The answer is 5 or 6.", "5", False),
    ("hedged", "\\boxed{5 \\text{ or } 6}", "5", False),
    ("hedged", "\\boxed{5, 6}", "5", False),
    ("hedged", "The answer could be 5.", "5", False),
    ("hedged", "The answer is either 5 or 6.", "5", False),
    # gold fields with full solutions --------------------------------------------------------
    ("gold_solution", "\\boxed{18}", "Janet has 9 eggs, 9*2 = 18.\n#### 18", True),
    ("gold_solution", "\\boxed{9}", "Janet has 9 eggs, 9*2 = 18.\n#### 18", False),
    ("gold_solution", "\\boxed{\\frac{1}{2}}", "The probability is $\\boxed{\\frac12}$.", True),
    ("gold_solution", "\\boxed{\\frac{1}{3}}", "The probability is $\\boxed{\\frac12}$.", False),
    # fullwidth / unicode --------------------------------------------------------------------
    ("unicode", "\\boxed{\uff14\uff12}", "42", True),
    ("unicode", "\\boxed{\uff14\uff13}", "42", False),
    ("unicode", "The answer is \u221a2.", "\\sqrt{2}", True),
    ("unicode", "The answer is \u03c0/2.", "\\frac{\\pi}{2}", True),
    ("unicode", "The answer is 2\u03c0.", "\\frac{\\pi}{2}", False),
    ("unicode", "The answer is \u00bd.", "1/2", True),
]  # fmt: skip


# Tricky negatives and the rules around them (near misses, wrong kinds, rounding traps).
CASES += [
    ("rounding", "\\boxed{0.51}", "1/2", False),
    ("rounding", "\\boxed{3.14159265}", "\\pi", False),
    ("rounding", "\\boxed{\\frac{22}{7}}", "\\pi", False),
    ("rounding", "\\boxed{0.99999}", "1", False),
    ("rounding", "\\boxed{0.\\overline{9}}", "1", True),
    ("rounding", "\\boxed{1.0000001}", "1", False),
    ("rounding", "\\boxed{1e-10}", "0", False),
    ("rounding", "\\boxed{0}", "0.0000000001", False),
    ("rounding", "\\boxed{0.33}", "\\frac13", False),
    ("rounding", "\\boxed{33.3\\%}", "\\frac13", False),
    ("rounding", "\\boxed{33\\frac{1}{3}\\%}", "\\frac13", True),
    ("rounding", "The answer is $\\frac{1}{3}$, which is about 0.33.", "0.33", False),
    ("rounding", "\\boxed{\\frac{1}{3} \\approx 0.33}", "\\frac13", True),
    ("rounding", "\\boxed{\\frac{1}{3} \\approx 0.33}", "0.33", False),
    ("rounding", "\\boxed{2+3=5}", "5", True),
    ("rounding", "\\boxed{2+3=5}", "6", False),
    ("rounding", "\\boxed{\\frac{1}{3}=0.\\overline{3}}", "1/3", True),
    ("big", "\\boxed{10^{100}}", "10^{100}+1", False),
    ("big", "\\boxed{2^{100}}", "1267650600228229401496703205376", True),
    ("big", "\\boxed{2^{100}}", "1267650600228229401496703205377", False),
    ("big", "\\boxed{1234567890123}", "1234567890124", False),
    ("big", "\\boxed{1,234,567,890,123}", "1234567890123", True),
    ("separators", "\\boxed{100, 200}", "100200", False),
    ("separators", "\\boxed{1,5}", "1.5", False),
    ("separators", "#### 1,234,567", "1234567", True),
    ("separators", "#### 1,234,576", "1234567", False),
    ("percent", "\\boxed{12\\%}", "0.12\\%", False),
    ("percent", "\\boxed{5\\%}", "5", True),
    ("percent", "\\boxed{0.05}", "5", False),
    ("expression", "\\boxed{x^2}", "x^3", False),
    ("expression", "\\boxed{x^2-1}", "x^2+1", False),
    ("expression", "\\boxed{\\sqrt{x^2}}", "x", False),
    ("expression", "\\boxed{|x|}", "x", False),
    ("expression", "\\boxed{\\frac{1}{2}x}", "\\frac{x}{2}", True),
    ("expression", "\\boxed{\\frac{1}{2x}}", "\\frac{x}{2}", False),
    ("expression", "\\boxed{x+1}", "x+1+0.0001", False),
    ("expression", "\\boxed{\\frac{a}{b}}", "\\frac{b}{a}", False),
    ("expression", "\\boxed{a-b}", "b-a", False),
    ("expression", "\\boxed{2ab}", "2ba", True),
    ("expression", "\\boxed{2ab}", "2", False),
    ("expression", "\\boxed{3xy}", "3", False),
    ("expression", "\\boxed{a^2b}", "ba^2", True),
    ("symbolic", "\\boxed{\\sqrt{2}+\\sqrt{3}}", "\\sqrt{5}", False),
    ("symbolic", "\\boxed{\\sqrt{2}\\sqrt{3}}", "\\sqrt{6}", True),
    ("symbolic", "\\boxed{\\log(8)}", "3\\log 2", True),
    ("symbolic", "\\boxed{\\log(6)}", "3\\log 2", False),
    ("symbolic", "\\boxed{e^{i\\pi}}", "-1", True),
    ("symbolic", "\\boxed{2e}", "2\\cdot e", True),
    ("symbolic", "\\boxed{2e}", "e^2", False),
    ("symbolic", "\\boxed{3\\sqrt{2}}", "\\sqrt{32}", False),
    ("symbolic", "\\boxed{\\sqrt{18}}", "3\\sqrt2", True),
    ("symbolic", "\\boxed{-\\sqrt{18}}", "3\\sqrt2", False),
    ("symbolic", "\\boxed{1/0}", "\\infty", False),
    ("symbolic", "\\boxed{0/0}", "0", False),
    ("symbolic", "\\boxed{\\frac{1}{0}}", "1", False),
    ("fraction", "\\boxed{-\\frac{3}{4}}", "\\frac{3}{4}", False),
    ("fraction", "\\boxed{\\frac{-3}{-4}}", "\\frac{3}{4}", True),
    ("fraction", "\\boxed{\\dfrac12}", "12", False),
    ("fraction", "\\boxed{12}", "\\frac12", False),
    ("fraction", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}\\pi", False),
    ("mixed", "\\boxed{1\\frac{1}{2}}", "1\\cdot\\frac12", False),
    ("complex", "\\boxed{\\sqrt{-4}}", "2", False),
    ("complex", "\\boxed{2i}", "\\sqrt{-4}", True),
    ("interval", "\\boxed{(1,2]}", "(1,2)", False),
    ("interval", "\\boxed{[1,2]}", "\\{1,2\\}", False),
    ("interval", "\\boxed{(1,2)}", "\\{1,2\\}", False),
    ("interval", "\\boxed{\\{1,2\\}}", "(1,2)", False),
    ("interval", "\\boxed{x<3}", "(3,\\infty)", False),
    ("interval", "\\boxed{x>-3}", "(3,\\infty)", False),
    ("interval", "\\boxed{3<x}", "(3,\\infty)", True),
    ("interval", "\\boxed{x<3}", "x>3", False),
    ("interval", "\\boxed{x>3}", "3", False),
    ("interval", "\\boxed{x \\in (1,2)}", "(1,2)", True),
    ("interval", "\\boxed{x \\in [1,2]}", "(1,2)", False),
    ("interval", "\\boxed{\\{x \\mid x > 1\\}}", "(1,\\infty)", True),
    ("interval", "\\boxed{\\{x \\mid x \\ge 1\\}}", "(1,\\infty)", False),
    ("interval", "\\boxed{-2 \\le x \\le 5}", "(-2, 5]", False),
    ("interval", "\\boxed{[-2, 5]}", "-2<x\\le5", False),
    ("interval", "\\boxed{x \\neq 2}", "(-\\infty,2)\\cup(2,\\infty)", True),
    ("interval", "\\boxed{x \\neq 3}", "(-\\infty,2)\\cup(2,\\infty)", False),
    ("equation", "\\boxed{y=2x+1}", "y=2x", False),
    ("equation", "\\boxed{y=2x+1}", "x=2y+1", False),
    ("equation", "\\boxed{2x+1}", "y=2x+2", False),
    ("equation", "\\boxed{x=\\pm 3}", "x=3, x=-3", True),
    ("equation", "\\boxed{x=3}", "x=\\pm 3", False),
    ("tuple", "\\boxed{x = 2, y = 3}", "(2,3)", True),
    ("tuple", "\\boxed{x = 3, y = 2}", "(2,3)", False),
    ("tuple", "\\boxed{(3, 2)}", "x=2, y=3", False),
    ("tuple", "\\boxed{2}", "x = 2, y = 3", False),
    ("matrix", "\\boxed{(1,2,3)}", "\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}", True),
    ("matrix", "\\boxed{(1,2,4)}", "\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}", False),
    ("matrix", "\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", False),
    ("matrix", "\\boxed{\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}}", "I", False),
    ("choice", "\\boxed{A}", "B", False),
    ("choice", "\\boxed{A}", "4", False),
    ("choice", "\\boxed{4}", "A", False),
    ("choice", "The answer is (E).", "E", True),
    ("choice", "\\boxed{\\text{(B) } 12}", "B", True),
    ("choice", "\\boxed{\\text{(C) } 12}", "B", False),
    ("text", "\\boxed{\\text{No}}", "\\text{Yes}", False),
    ("text", "\\boxed{\\text{Monday}}", "\\text{Sunday}", False),
    ("text", "\\boxed{\\text{five}}", "5", True),
    ("text", "\\boxed{\\text{six}}", "5", False),
    ("empty", "\\boxed{\\infty}", "\\text{no solution}", False),
    ("empty", "\\boxed{\\text{no solution}}", "0", False),
    ("empty", "\\boxed{\\text{all real numbers}}", "\\emptyset", False),
    ("interval", "\\boxed{\\text{all real numbers}}", "(-\\infty,\\infty)", True),
    ("units", "\\boxed{5 \\text{ cm}^2}", "25", False),
    ("units", "\\boxed{5\\text{ m}}", "50", False),
    ("units", "\\boxed{1.5 \\cdot 10^3 \\text{ kg}}", "1500", True),
    ("units", "\\boxed{3.0 \\times 10^8 \\text{ m/s}}", "3 \\times 10^8", True),
    ("scientific", "\\boxed{10^{-3}}", "0.001", True),
    ("scientific", "\\boxed{10^{3}}", "0.001", False),
    ("scientific", "\\boxed{1.5E3}", "1500", True),
    ("scientific", "\\boxed{1.5\\times10^{3}}", "15000", False),
    ("set", "\\boxed{\\{2\\}}", "2", True),
    ("set", "\\boxed{\\{3\\}}", "2", False),
    ("set", "The answer is 2, 3, and 5.", "\\{2,3,5\\}", True),
    ("set", "The answer is 2, 3, and 7.", "\\{2,3,5\\}", False),
    ("hedged", "The answer is 56.", "5", False),
    ("hedged", "The answer is 5, 6.", "5", False),
    ("hedged", "The answer is not 5.", "5", False),
    ("hedged", "\\boxed{\\text{not } 5}", "5", False),
    ("hedged", "The answer is 5 if n is odd and 6 otherwise.", "5", False),
    ("boxes", "The final answer is $\\boxed{3}$ apples and $\\boxed{4}$ oranges.", "3", False),
    ("degrees", "\\boxed{30^\\circ}", "\\frac{\\pi}{6}", False),
    ("degrees", "\\boxed{\\frac{\\pi}{6}}", "30^\\circ", False),
    ("unicode", "The answer is 2\u00bd.", "5/2", True),
    ("unicode", "The answer is 2\u00bd.", "1", False),
]  # fmt: skip


# A second blind batch: realistic variants of each form.
CASES += [
    ("choice", "\\boxed{\\text{(A)}\\ 5}", "A", True),
    ("choice", "\\boxed{\\textbf{(C)}}", "C", True),
    ("choice", "\\boxed{\\textbf{(C)}}", "D", False),
    ("choice", "\\boxed{\\mathrm{B}}", "B", True),
    ("statement", "The answer is C) 12.", "C", True),
    ("statement", "The answer is: $\\boxed{7}$", "7", True),
    ("percent", "\\boxed{10\\%}", "0.1", True),
    ("percent", "\\boxed{10\\%}", "0.01", False),
    ("units", "\\boxed{\\$1,000.00}", "1000", True),
    ("units", "\\boxed{\\$1,000.00}", "100", False),
    ("decimal", "\\boxed{1000.00}", "1000", True),
    ("negative", "\\boxed{(-3)}", "-3", True),
    ("negative", "\\boxed{(-3)}", "3", False),
    ("degrees", "\\boxed{90\u00b0}", "90^\\circ", True),
    ("interval", "\\boxed{[2,\\infty)}", "x\\geq2", True),
    ("interval", "\\boxed{(2,\\infty)}", "x\\geq2", False),
    ("set", "\\boxed{\\{-1, 1\\}}", "\\pm 1", True),
    ("set", "\\boxed{\\{-1, 2\\}}", "\\pm 1", False),
    ("units", "\\boxed{1 \\text{ and } -1}", "\\pm1", True),
    ("units", "\\boxed{(1, 2) \\text{ and } (3, 4)}", "(1,2),(3,4)", True),
    ("matrix", "\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
    ("matrix", "\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 5 \\end{array}\\right]}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", False),
    ("matrix", "\\boxed{\\langle 1,2\\rangle}", "(1,2)", True),
    ("equation", "\\boxed{k=3}", "3", True),
    ("equation", "\\boxed{k=4}", "3", False),
    ("equation", "\\boxed{f(x)=2x+3}", "2x+3", True),
    ("equation", "\\boxed{f(x)=2x-3}", "2x+3", False),
    ("text", "\\boxed{\\text{Yes}}", "yes", True),
    ("statement", "The answer is", "5", False),
    ("statement", "I'm not sure, but the answer is 5.", "5", False),
    ("trailing", "\\boxed{5}?", "5", True),
    ("units", "\\boxed{\\frac{1}{2}\\text{ or }0.5}", "1/2", False),
    ("equation", "\\boxed{x=1}", "y=1", False),
    ("equation", "\\boxed{a=1}", "1", True),
    ("equation", "\\boxed{AB=5}", "5", True),
    ("degrees", "\\boxed{\\angle A = 30^\\circ}", "30", True),
    ("degrees", "\\boxed{m\\angle ABC = 40^\\circ}", "30", False),
    ("symbolic", "\\boxed{\\frac{\\sqrt{3}}{3}}", "\\frac{1}{\\sqrt3}", True),
    ("degrees", "\\boxed{\\tan 30^\\circ}", "\\frac{\\sqrt3}{3}", True),
    ("degrees", "\\boxed{\\sin 30^\\circ}", "\\frac{\\sqrt3}{3}", False),
    ("degrees", "\\boxed{\\dfrac{\\pi}{4}}", "45^\\circ", False),
    ("interval", "\\boxed{x \\in [2, 5]}", "[2,5]", True),
    ("interval", "\\boxed{2 \\le x \\le 5}", "[2,5]", True),
    ("interval", "\\boxed{2 < x \\le 5}", "[2,5]", False),
    ("interval", "\\boxed{x \\le -1 \\text{ or } x \\ge 1}", "(-\\infty,-1]\\cup[1,\\infty)", True),
    ("interval", "\\boxed{x < -1 \\text{ or } x \\ge 1}", "(-\\infty,-1]\\cup[1,\\infty)", False),
    ("interval", "\\boxed{(-\\infty,-1] U [1,\\infty)}", "(-\\infty,-1]\\cup[1,\\infty)", True),
    ("interval", "\\boxed{\\infty}", "oo", True),
    ("mixed", "\\boxed{\\frac{3}{2}}", "1\\frac{1}{2}", True),
    ("mixed", "\\boxed{\\frac{5}{2}}", "1\\frac{1}{2}", False),
    ("units", "\\boxed{\\$ 5.50}", "5.5", True),
    ("units", "\\boxed{5.50 \\text{ dollars}}", "5.5", True),
    ("units", "\\boxed{5.05 \\text{ dollars}}", "5.5", False),
    ("units", "\\boxed{12 \\text{ square units}}", "12", True),
    ("units", "\\boxed{12 \\text{ units}^2}", "12", True),
    ("units", "\\boxed{120 \\text{ ways}}", "120", True),
    ("units", "\\boxed{210 \\text{ ways}}", "120", False),
    ("equation", "\\boxed{x^2 + y^2 = 4}", "x^2+y^2-4=0", True),
    ("equation", "\\boxed{x^2 + y^2 = 4}", "x^2+y^2+4=0", False),
    ("equation", "\\boxed{y = -\\frac{1}{2}x + 3}", "x + 2y = 6", True),
    ("equation", "\\boxed{y = -\\frac{1}{2}x + 3}", "x + 2y = 3", False),
    ("symbolic", "\\boxed{\\frac{d}{dx}}", "1", False),
    ("scientific", "\\boxed{3.5 \\times 10^{-2}}", "0.035", True),
    ("scientific", "\\boxed{35 \\times 10^{-2}}", "0.035", False),
    ("decimal", "\\boxed{6.0}", "6", True),
    ("decimal", "\\boxed{-6.0}", "6", False),
    ("units", "\\boxed{1\\frac{2}{3}\\text{ cups}}", "5/3", True),
    ("units", "\\boxed{1\\frac{2}{3}\\text{ cups}}", "2/3", False),
    ("set", "\\boxed{\\frac{1}{2}, \\frac{1}{3}}", "\\frac13, \\frac12", True),
    ("set", "\\boxed{(\\frac{1}{2}, \\frac{1}{3})}", "(\\frac13, \\frac12)", False),
    ("fraction", "\\boxed{0.5\\overline{3}}", "\\frac{8}{15}", True),
    ("fraction", "\\boxed{0.\\overline{53}}", "\\frac{8}{15}", False),
    ("units", "\\boxed{2 \\sqrt{2} \\text{ cm}}", "2\\sqrt2", True),
    ("units", "\\boxed{\\sqrt{2} \\text{ cm}}", "2\\sqrt2", False),
    ("text", "\\boxed{\\text{II}}", "\\text{II}", True),
    ("set", "\\boxed{\\text{I and III}}", "\\text{I, III}", True),
    ("set", "\\boxed{\\text{I and II}}", "\\text{I, III}", False),
    ("units", "\\boxed{x=2}\\text{ and }\\boxed{y=3}", "(2,3)", True),
    ("units", "\\boxed{3 \\text{ hours } 20 \\text{ minutes}}", "3", False),
    ("units", "\\boxed{200\\text{ m}^2}", "200", True),
    ("units", "\\boxed{20\\text{ m}^2}", "200", False),
    ("percent", "\\boxed{\\frac{100}{3}\\%}", "\\frac{1}{3}", True),
    ("ratio", "\\boxed{1:2}", "1:2", True),
    ("ratio", "\\boxed{2:1}", "1:2", False),
]  # fmt: skip


@pytest.fixture(scope="module")
def verifier():
    return AnswerVerifier(time_limit=5)


def test_the_set_is_balanced():
    assert len(CASES) >= 250
    positives = sum(1 for *_, expected in CASES if expected)
    assert len(CASES) - positives >= positives * 0.8
    for form in {form for form, *_ in CASES} - {"truncated", "hedged"}:
        assert {expected for f, _, _, expected in CASES if f == form} == {True, False}, form


def test_independent_set_accuracy(verifier):
    verdicts = verifier.verify_many([c[1] for c in CASES], [c[2] for c in CASES])
    total, right = Counter(), Counter()
    wrong = []
    for (form, output, gold, expected), verdict in zip(CASES, verdicts, strict=True):
        total[form] += 1
        if verdict.passed == expected:
            right[form] += 1
        else:
            wrong.append(f"{form}: {output[-70:]!r} vs {gold!r}: expected {expected}, got {verdict}")
    for form in sorted(total):
        print(f"{form:14} {total[form]:4d} {right[form] / total[form]:7.3f}")
    accuracy = sum(right.values()) / len(CASES)
    print(f"{'all':14} {len(CASES):4d} {accuracy:7.3f}")
    assert not wrong, "\n".join(wrong)


# Hostile inputs ---------------------------------------------------------------------------------
def _hostile_in_process(tmp_path) -> list[tuple[str, str | None, str | None]]:
    marker = tmp_path / "pwned"
    return [
        ("10k nested braces", "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}", "1"),
        ("10k nested parens", "\\boxed{" + "(" * 10_000 + "1" + ")" * 10_000 + "}", "1"),
        ("10k nested braces gold", "\\boxed{1}", "{" * 10_000 + "1" + "}" * 10_000),
        ("3k nested fractions", "\\boxed{" + "\\frac{1}{" * 3000 + "2" + "}" * 3000 + "}", "1"),
        ("1 MB reply", "x " * 500_000 + "\\boxed{5}", "5"),
        ("1 MB box", "\\boxed{" + "1+" * 500_000 + "1}", "500001"),
        ("1 MB bare text", "a" * 1_000_000, "5"),
        ("1 MB gold", "\\boxed{5}", "1+" * 500_000 + "1"),
        ("100k-digit number", "\\boxed{" + "9" * 100_000 + "}", "1"),
        ("unclosed box", "The answer is \\boxed{", "5"),
        ("10k unclosed boxes", "\\boxed{" * 10_000, "5"),
        ("20k boxes", "\\boxed{1} " * 20_000, "1"),
        ("100k backslashes", "\\" * 100_000, "1"),
        ("\\def macro", "\\def\\x{\\x\\x}\\boxed{\\x}", "1"),
        ("\\newcommand", "\\newcommand{\\a}{\\a\\a}\\boxed{\\a}", "1"),
        ("__import__", f"\\boxed{{__import__('os').system('touch {marker}')}}", "0"),
        ("subclasses", "\\boxed{().__class__.__bases__[0].__subclasses__()}", "1"),
        ("eval", f"\\boxed{{eval(\"open('{marker}', 'w')\")}}", "1"),
        ("null byte", "\\boxed{5\x00}", "5"),
        ("lone surrogate", "\\boxed{\ud800}", "5"),
        ("bidi override", "\\boxed{\u202e5}", "5"),
        ("no reply", None, "5"),
        ("no gold", "\\boxed{5}", None),
        ("blank gold", "\\boxed{5}", "   "),
    ]


def test_hostile_inputs_get_a_verdict_quickly_and_run_nothing(tmp_path):
    verifier = AnswerVerifier(time_limit=2)
    for name, output, gold in _hostile_in_process(tmp_path):
        started = time.monotonic()
        verdict = verifier.verify(output, gold)
        elapsed = time.monotonic() - started
        assert isinstance(verdict.passed, bool) and verdict.reason, name
        # Generous for a loaded 2-core machine (a sympy worker may also need to start).
        assert elapsed < 20, f"{name} took {elapsed:.1f}s"
    assert not (tmp_path / "pwned").exists()


def test_unicode_minus_and_fullwidth_digits_are_read_as_ascii(verifier):
    pairs = [("\\boxed{\u22125}", "-5"), ("\\boxed{\uff15}", "5"), ("\\boxed{\uff0d\uff15}", "-5"),
             ("\\boxed{\uff08\uff11\uff0c\uff12\uff09}", "(1,2)"), ("\\boxed{\uff13\uff0f\uff14}", "0.75")]  # fmt: skip
    verdicts = verifier.verify_many([a for a, _ in pairs], [g for _, g in pairs])
    assert [v.passed for v in verdicts] == [True] * len(pairs)
    assert not verifier.verify("\\boxed{\uff0d\uff15}", "5").passed


def test_runaway_sympy_checks_are_cut_at_the_time_limit():
    verifier = AnswerVerifier(time_limit=1.5)
    bombs = [
        ("\\boxed{10^{10^{10}}+1}", "10^{10^{10}}"),
        ("\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "2"),
        ("\\boxed{(10^{9})!}", "1"),
        ("\\boxed{\\int_0^{x} e^{t^{100}} \\sin(t^{50}) dt}", "\\int_0^{x} e^{t^{99}} \\sin(t^{50}) dt"),
    ]
    started = time.monotonic()
    verdicts = verifier.verify_many([a for a, _ in bombs] + ["\\boxed{4}"], [g for _, g in bombs] + ["4"])
    elapsed = time.monotonic() - started
    assert all(not v.passed for v in verdicts[:-1])
    assert verdicts[-1].passed  # the good pair after the bombs is still decided
    # 4 checks on 2 workers: two rounds of 1.5 s plus worker restarts on a loaded machine.
    assert elapsed < 40, f"{elapsed:.1f}s"
