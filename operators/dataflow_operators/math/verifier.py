"""Verify answers against gold answers: extraction, fast in-process checks, sympy in a worker pool.

`AnswerVerifier(options).verify_many(outputs, golds)` returns one `Verdict` per pair. Most pairs
(numbers, fractions, intervals of numbers, text, choices, expressions evaluated numerically) are
decided in the calling thread without sympy. The rest (answers this package's parser does not
understand, values too large to evaluate safely) go to worker processes that parse with
latex2sympy and compare with sympy, each check under a time limit that kills the worker: a
runaway sympy call cannot stall the run, whatever thread the verifier runs on (math-verify's own
`signal.alarm` timeout only works on the main thread).
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache

from dataflow_operators.math.equivalence import Comparer, Options, parse_pair, render_value, within_integers
from dataflow_operators.math.extract import extract_answer


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str  # "equal", or why not: "different values", "no final answer", "timeout", ...
    answer: str | None = None  # the answer extracted from the output
    canonical: str | None = None  # the value compared, as text
    gold_canonical: str | None = None
    method: str = "fast"  # "fast" (in process) | "sympy" (worker) | "none" (nothing compared)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Pending:
    index: int
    answer: str
    gold: str
    canonical: str
    gold_canonical: str


@lru_cache(maxsize=8192)
def gold_answer(gold: str) -> str | None:
    """The answer part of a gold field: a boxed or `####` answer in a full solution, else all of it."""
    return extract_answer(gold, bare_max_chars=None).answer


_INTEGER_OR_DECIMAL = re.compile(r"([-+]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
_FRACTION = re.compile(r"([-+]?)(?:\\[dt]?frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")


def quick_number(text: str) -> Fraction | None:
    """The value of a plain number (`-12`, `1,000`, `0.25`, `3/4`, `\\frac{3}{4}`), else None.
    Most answers are plain numbers: they skip parsing altogether."""
    t = text.strip().strip("$").strip()
    m = _INTEGER_OR_DECIMAL.fullmatch(t)
    if m:
        value = Fraction(m.group(2).replace(",", "") + (m.group(3) or ""))
        return -value if m.group(1) == "-" else value
    m = _FRACTION.fullmatch(t)
    if m:
        numerator, denominator = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5))
        if int(denominator) == 0:
            return None
        value = Fraction(int(numerator), int(denominator))
        return -value if m.group(1) == "-" else value
    return None


def compare_fast(answer: str, gold: str, options: Options) -> tuple[bool | None, str, str, str]:
    """(equal or None if sympy must decide, reason, canonical answer, canonical gold)."""
    a, b = quick_number(answer), quick_number(gold)
    if a is not None and b is not None:
        equal = a == b or (
            not within_integers(a, b) and abs(a - b) <= Fraction(options.rel_tol) * max(abs(a), abs(b))
        )
        return equal, "equal" if equal else "different values", str(a), str(b)
    g, p = parse_pair(answer, gold, options)
    comparer = Comparer(options)
    try:
        result = comparer.equal(g, p)
    except RecursionError:
        result = None
    reason = "equal" if result else (comparer.why if result is False else "undecided")
    return result, reason, render_value(p), render_value(g)


class AnswerVerifier:
    """Extract, parse and compare; thread-safe. `pool` is started on first need."""

    def __init__(self, options: Options | None = None, time_limit: float = 5.0, workers: int = 2,
                 memory_mb: int = 2048, bare_max_chars: int = 120):  # fmt: skip
        self.options = options or Options()
        self.time_limit = time_limit
        self.workers = workers
        self.memory_mb = memory_mb
        self.bare_max_chars = bare_max_chars
        self.sympy_checks = 0  # how many pairs needed the worker pool (for stats and benches)
        self._lock = threading.Lock()

    def verify(self, output: str | None, gold: str | None) -> Verdict:
        return self.verify_many([output], [gold])[0]

    def verify_many(self, outputs: list[str | None], golds: list[str | None]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(outputs)
        pending: list[_Pending] = []
        for i, (output, gold) in enumerate(zip(outputs, golds, strict=True)):
            if gold is None or not str(gold).strip():
                verdicts[i] = Verdict(False, "no gold answer", method="none")
                continue
            extraction = extract_answer(output, self.bare_max_chars)
            if extraction.answer is None:
                verdicts[i] = Verdict(False, extraction.reason or "no final answer", method="none")
                continue
            gold_text = gold_answer(str(gold))
            if gold_text is None:
                verdicts[i] = Verdict(False, "no gold answer", extraction.answer, method="none")
                continue
            result, reason, canonical, gold_canonical = compare_fast(
                extraction.answer, gold_text, self.options
            )
            if result is None:
                pending.append(_Pending(i, extraction.answer, gold_text, canonical, gold_canonical))
                continue
            verdicts[i] = Verdict(result, reason, extraction.answer, canonical, gold_canonical)
        if pending:
            from dataflow_operators.math.pool import shared_pool

            pool = shared_pool(self.workers, self.memory_mb)
            tasks = [{"answer": p.answer, "gold": p.gold, "options": asdict(self.options)} for p in pending]
            with self._lock:
                self.sympy_checks += len(tasks)
            for p, result in zip(pending, pool.run(tasks, self.time_limit), strict=True):
                verdicts[p.index] = Verdict(
                    bool(result["equal"]), result["reason"], p.answer, p.canonical, p.gold_canonical, "sympy"
                )
        return verdicts  # type: ignore[return-value]


@dataclass(frozen=True)
class Majority:
    answer: str | None  # the majority answer's text (its first occurrence), None when no sample has one
    canonical: str | None
    votes: int  # samples whose answer equals it
    agreement: float  # votes / samples (samples without an answer count against it)
    distinct: int  # different answers among the samples
    members: tuple[int, ...]  # indices of the samples that voted for it


def majority(verifier: AnswerVerifier, outputs: list[str | None]) -> Majority:
    """The most common final answer among `outputs`, answers grouped by the verifier's equality.

    Ties go to the answer seen first. Each new answer is compared with one member of every group
    found so far (the comparison is the verifier's, so 0.5 and 1/2 vote together).
    """
    answers = [extract_answer(o, verifier.bare_max_chars).answer for o in outputs]
    groups: list[list[int]] = []
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        home = next((g for g in groups if answers[g[0]] == answer), None)
        if home is None and groups:
            verdicts = verifier.verify_many([answer] * len(groups), [answers[g[0]] for g in groups])
            home = next((g for g, v in zip(groups, verdicts, strict=True) if v.passed), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    if not groups:
        return Majority(None, None, 0, 0.0, 0, ())
    best = max(groups, key=lambda g: (len(g), -g[0]))
    answer = answers[best[0]]
    canonical = verifier.verify(answer, answer).canonical
    return Majority(answer, canonical, len(best), len(best) / len(outputs), len(groups), tuple(best))
