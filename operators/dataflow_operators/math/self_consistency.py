"""Majority answer and agreement over several sampled solutions (pseudo-gold without a gold answer)."""

from __future__ import annotations

from dataflow_cli.operator import Batch, Evaluator, Port
from dataflow_operators.math.answer_verify import VerifyParams, make_verifier
from dataflow_operators.math.verifier import majority


class MathSelfConsistencyEvaluator(Evaluator):
    """Find the majority final answer among sampled solutions and how many samples agree on it.

    For data without gold answers: the majority answer is a pseudo-gold, and the agreement rate
    says how far to trust it (self-consistency, Wang et al. 2023). Answers are extracted and
    grouped with the same rules as `math_answer_verify_filter`, so 0.5 and \\frac{1}{2} vote
    together while 0.333 and 1/3 do not. Ties go to the answer sampled first. A sample with no
    final answer counts against the agreement.

    Inputs:
        outputs: a list of sampled solutions (or answers) for one question.
    Outputs:
        majority_answer: the majority answer as written in its first sample (null when no sample has an answer).
        majority_canonical: its value as compared.
        agreement: samples agreeing with the majority / samples (0 for an empty list).
        votes: samples agreeing with the majority.
        distinct_answers: different answers among the samples.
    Params:
        rel_tol: relative tolerance of numeric equality (0: exact).
        percent: what 50% equals: either, fraction (0.5) or number (50).
        strip_units: ignore units and words after a number.
        bare_max_chars: longest one-line reply taken as an answer without a box or statement.
        time_limit: seconds per sympy check before its worker is killed.
        workers: sympy worker processes.
        memory_mb: memory cap of each worker in MiB.
    """

    name = "math_self_consistency_evaluator"
    requires = ("math-verify",)
    inputs = {"outputs": Port("list of sampled solutions")}
    outputs = {
        "majority_answer": Port("the majority final answer"),
        "majority_canonical": Port("the majority answer's value as compared"),
        "agreement": Port("samples agreeing with the majority / samples", "float64"),
        "votes": Port("samples agreeing with the majority", "int64"),
        "distinct_answers": Port("different answers among the samples", "int64"),
    }
    Params = VerifyParams

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self.verifier = make_verifier(self.params)

    def evaluate(self, batch: Batch):
        out: dict[str, list] = {name: [] for name in self.outputs}
        for samples in batch.values("outputs"):
            samples = list(samples or [])
            m = majority(self.verifier, samples)
            out["majority_answer"].append(m.answer)
            out["majority_canonical"].append(m.canonical)
            out["agreement"].append(m.agreement if samples else 0.0)
            out["votes"].append(m.votes)
            out["distinct_answers"].append(m.distinct)
        return out
