"""The answer verifier on a labelled set written for this project (labelled_answers.py).

Accuracy must be at least 0.98 overall; the per-form table is printed (`pytest -s`). The same set
scored by plain math-verify and by string equality: `python bench/math_verify.py --accuracy`.
"""

from __future__ import annotations

from collections import Counter

from dataflow_operators.math.verifier import AnswerVerifier

from tests.unit.operators.math.labelled_answers import CASES

# Every answer form the issue lists, and the kinds of outputs the set must include.
FORMS = {
    "integer", "separators", "decimal", "fraction", "mixed", "percent", "scientific", "latex",
    "symbolic", "equation", "interval", "set", "tuple", "matrix", "units", "text", "choice",
    "multiple", "solution", "boxes", "statement", "truncated", "hedged", "near_miss", "rounding",
}  # fmt: skip


def test_the_set_is_large_and_covers_every_form_with_both_labels():
    assert len(CASES) >= 250
    forms = {form for form, *_ in CASES}
    assert FORMS <= forms, f"missing forms: {sorted(FORMS - forms)}"
    labels = {(form, expected) for form, _, _, expected in CASES}
    one_sided = {"truncated", "hedged", "near_miss", "rounding"}  # these are all negatives
    for form in FORMS - one_sided:
        assert (form, True) in labels and (form, False) in labels, f"`{form}` needs both labels"
    assert all(not expected for form, _, _, expected in CASES if form in one_sided - {"rounding"})


def test_accuracy_on_the_labelled_set():
    verifier = AnswerVerifier(time_limit=5)
    verdicts = verifier.verify_many([c[1] for c in CASES], [c[2] for c in CASES])
    total, right = Counter(), Counter()
    wrong = []
    for (form, output, gold, expected), verdict in zip(CASES, verdicts, strict=True):
        total[form] += 1
        if verdict.passed == expected:
            right[form] += 1
        else:
            wrong.append(f"{form}: {output[-60:]!r} vs {gold!r}: expected {expected}, got {verdict}")
    print(f"\n{'form':14} {'cases':>5} {'accuracy':>8}")
    for form in sorted(total):
        print(f"{form:14} {total[form]:5d} {right[form] / total[form]:8.3f}")
    accuracy = sum(right.values()) / len(CASES)
    print(f"{'all':14} {len(CASES):5d} {accuracy:8.3f}")
    assert accuracy >= 0.98, "\n".join(wrong)
    # Plain numbers, fractions, intervals and text never need sympy.
    assert verifier.sympy_checks <= len(CASES) // 50
