"""Verify a solution's final answer against a gold answer: an evaluator and a filter."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.operator import Batch, Evaluator, Filter, Port, Verdict
from dataflow_operators.math.equivalence import Options
from dataflow_operators.math.verifier import AnswerVerifier


class VerifyParams(BaseModel):
    """How answers are extracted and compared (shared by every math operator that verifies)."""

    model_config = ConfigDict(extra="forbid")

    rel_tol: float = Field(
        1e-9,
        ge=0,
        le=0.01,
        description="Relative tolerance of numeric equality (0: exact). Rounding never passes.",
    )
    percent: Literal["either", "fraction", "number"] = Field(
        "either",
        description="What `50%` equals: 0.5 or 50 (`either`), only 0.5 (`fraction`), only 50 (`number`).",
    )
    strip_units: bool = Field(True, description="Ignore units and words after a number (`5 cm` is 5).")
    bare_max_chars: int = Field(
        120,
        ge=0,
        description="A reply with no box or answer statement counts as its answer when it is one line of at most this many characters (0: never).",
    )
    time_limit: float = Field(
        5.0,
        gt=0,
        le=600,
        description="Seconds per sympy check; a worker still busy then is killed and the row fails with `timeout`.",
    )
    workers: int = Field(2, ge=1, le=64, description="Worker processes for sympy checks.")
    memory_mb: int = Field(2048, ge=256, description="Address-space cap of each sympy worker, in MiB.")


def make_verifier(params: VerifyParams) -> AnswerVerifier:
    return AnswerVerifier(
        Options(rel_tol=params.rel_tol, percent=params.percent, strip_units=params.strip_units),
        time_limit=params.time_limit,
        workers=params.workers,
        memory_mb=params.memory_mb,
        bare_max_chars=params.bare_max_chars,
    )


_DOC_RULES = """The final answer is the last `\\boxed{}`/`\\fbox{}` (braces matched; boxes that close one
    statement together are one answer with several parts), else the last explicit statement
    ("the final answer is", "Answer:", `####`), else a one-line reply; a reply cut off inside a box,
    a hedged statement ("probably 5") or one with no answer fails. The gold field may be a bare
    answer or a whole solution (its box or `####` line is used). Values are compared exactly:
    integers with separators, decimals, fractions, mixed numbers, percentages, scientific
    notation, LaTeX expressions, expressions in variables, equations (`x = 3` matches 3),
    intervals (brackets must match), sets (unordered), tuples (ordered), matrices, complex
    numbers, units, text (case and articles ignored) and multiple-choice letters; several
    answers never match one. Rounding never passes (0.333 is not 1/3): `rel_tol` is the only slack.
    Most pairs are decided in process; the rest go to sympy worker processes, each check under
    `time_limit` (the worker is killed when it overruns, from any thread)."""


class MathAnswerVerifyEvaluator(Evaluator):
    __doc__ = f"""Check the final answer of each solution against the gold answer and write the verdict.

    {_DOC_RULES}

    Inputs:
        output: the model's reply (a solution or just an answer).
        gold: the gold answer (or a gold solution with a boxed / `####` answer).
    Outputs:
        verified: true when the answers are equal.
        verify_reason: "equal", or why not ("different values", "no final answer", "timeout after 5s", ...).
        extracted_answer: the final answer found in the output (null when none).
        canonical_answer: the extracted answer's value as compared.
        canonical_gold: the gold answer's value as compared.
    Params:
        rel_tol: relative tolerance of numeric equality (0: exact).
        percent: what 50% equals: either, fraction (0.5) or number (50).
        strip_units: ignore units and words after a number.
        bare_max_chars: longest one-line reply taken as an answer without a box or statement.
        time_limit: seconds per sympy check before its worker is killed.
        workers: sympy worker processes.
        memory_mb: memory cap of each worker in MiB.
    """

    name = "math_answer_verify_evaluator"
    requires = ("math-verify",)
    inputs = {"output": Port("the model's reply"), "gold": Port("the gold answer")}
    outputs = {
        "verified": Port("true when the final answer equals the gold answer", "bool"),
        "verify_reason": Port('"equal" or why not'),
        "extracted_answer": Port("the final answer found in the output"),
        "canonical_answer": Port("the extracted answer's value as compared"),
        "canonical_gold": Port("the gold answer's value as compared"),
    }
    Params = VerifyParams

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.verifier = make_verifier(self.params)

    def evaluate(self, batch: Batch):
        verdicts = self.verifier.verify_many(batch.values("output"), batch.values("gold"))
        return {
            "verified": [v.passed for v in verdicts],
            "verify_reason": [v.reason for v in verdicts],
            "extracted_answer": [v.answer for v in verdicts],
            "canonical_answer": [v.canonical for v in verdicts],
            "canonical_gold": [v.gold_canonical for v in verdicts],
        }


class MathAnswerVerifyFilter(Filter):
    __doc__ = f"""Keep rows whose final answer equals the gold answer; drop the rest with the reason.

    {_DOC_RULES}

    A dropped row's reason is short ("different values", "no final answer", "several answers for
    one", "timeout after 5s", ...); its detail names the extracted answer and both canonical
    values, so the rejects file shows what was compared.

    Inputs:
        output: the model's reply (a solution or just an answer).
        gold: the gold answer (or a gold solution with a boxed / `####` answer).
    Outputs:
        (none: rows are kept or dropped)
    Params:
        rel_tol: relative tolerance of numeric equality (0: exact).
        percent: what 50% equals: either, fraction (0.5) or number (50).
        strip_units: ignore units and words after a number.
        bare_max_chars: longest one-line reply taken as an answer without a box or statement.
        time_limit: seconds per sympy check before its worker is killed.
        workers: sympy worker processes.
        memory_mb: memory cap of each worker in MiB.
    """

    name = "math_answer_verify_filter"
    requires = ("math-verify",)
    inputs = {"output": Port("the model's reply"), "gold": Port("the gold answer")}
    Params = VerifyParams

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.verifier = make_verifier(self.params)

    def filter(self, batch: Batch) -> Verdict:
        verdicts = self.verifier.verify_many(batch.values("output"), batch.values("gold"))
        return Verdict(
            keep=[v.passed for v in verdicts],
            reason=[None if v.passed else v.reason for v in verdicts],
            detail=[None if v.passed else detail(v) for v in verdicts],
        )


def detail(verdict) -> str | None:
    if verdict.answer is None:
        return None
    text = f"answer `{_short(verdict.answer)}`"
    if verdict.canonical is not None:
        text += f" = {_short(verdict.canonical)} vs gold {_short(verdict.gold_canonical or '')}"
    return text


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
