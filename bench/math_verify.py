"""Math answer verification: accuracy on the labelled set, speed, and a runaway check's bound.

    python bench/math_verify.py              # all three parts
    python bench/math_verify.py --accuracy   # labelled set: ours vs plain math-verify vs string equality
    python bench/math_verify.py --speed      # 20k (output, gold) pairs, checks/s
    python bench/math_verify.py --timeout    # one pathological answer among normal ones

Figures go to stdout. Plain math-verify runs on the main thread here (its `signal.alarm`
timeout needs that); ours runs the same way the executor runs operators, on a worker thread.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file's name would shadow the `math_verify` package: drop its folder from the path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(ROOT), str(ROOT / "operators")]

from dataflow_operators.math.verifier import AnswerVerifier  # noqa: E402

from tests.unit.operators.math.labelled_answers import CASES  # noqa: E402


def on_thread(fn):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", fn()))
    thread.start()
    thread.join()
    return box["result"]


# Accuracy ----------------------------------------------------------------------------------
def plain_math_verify(output: str, gold: str) -> bool:
    from math_verify import parse, verify

    # Its LaTeX extraction reads math inside delimiters or a box: give the gold one, as its README advises.
    if "$" not in gold and "\\boxed" not in gold:
        gold = f"${gold}$"
    try:
        return bool(verify(parse(gold), parse(output)))
    except Exception:  # noqa: BLE001  the baseline as users call it: any failure is "not equal"
        return False


def string_equality(output: str, gold: str) -> bool:
    """The naive baseline: the last box (or the whole reply) equals the gold text, spaces and $ aside."""
    boxed = re.findall(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}", output)
    answer = boxed[-1] if boxed else output
    norm = lambda s: re.sub(r"[\s$]", "", s)  # noqa: E731
    return norm(answer) == norm(gold)


def accuracy() -> None:
    verifier = AnswerVerifier(time_limit=5)
    ours = on_thread(lambda: verifier.verify_many([c[1] for c in CASES], [c[2] for c in CASES]))
    scorers = {
        "ours": [v.passed for v in ours],
        "math-verify": [plain_math_verify(c[1], c[2]) for c in CASES],
        "string": [string_equality(c[1], c[2]) for c in CASES],
    }
    total, right = Counter(), {name: Counter() for name in scorers}
    for i, (form, _, _, expected) in enumerate(CASES):
        total[form] += 1
        for name, results in scorers.items():
            right[name][form] += results[i] == expected
    print(f"labelled set: {len(CASES)} cases, {sum(not c[3] for c in CASES)} not equivalent")
    print(f"{'form':14} {'cases':>5} " + " ".join(f"{name:>11}" for name in scorers))
    for form in sorted(total):
        print(
            f"{form:14} {total[form]:5d} "
            + " ".join(f"{right[n][form] / total[form]:11.3f}" for n in scorers)
        )
    print(
        f"{'all':14} {len(CASES):5d} "
        + " ".join(f"{sum(right[n].values()) / len(CASES):11.3f}" for n in scorers)
    )
    for name, results in scorers.items():
        false_pos = sum(r and not c[3] for r, c in zip(results, CASES, strict=True))
        false_neg = sum(not r and c[3] for r, c in zip(results, CASES, strict=True))
        print(f"  {name}: {false_pos} false positives (wrong answers accepted), {false_neg} false negatives")
    print(f"  ours: {verifier.sympy_checks} of {len(CASES)} pairs needed the sympy workers")


# Speed -------------------------------------------------------------------------------------
def number_pairs(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """Boxed numeric answers in the forms solutions use, half of them right."""
    pairs = []
    for _ in range(n):
        a, b = rng.randint(1, 999), rng.randint(2, 99)
        value = rng.choice(
            [str(a), f"\\frac{{{a}}}{{{b}}}", f"{a / 8:g}", f"{a},{rng.randint(100, 999)}", f"-{a}"]
        )
        gold = value if rng.random() < 0.5 else str(a + 1)
        solution = f"We compute step by step.\nFirst {a} and {b}.\nSo the answer is $\\boxed{{{value}}}$."
        pairs.append((solution, gold))
    return pairs


def speed(n: int = 20_000) -> None:
    rng = random.Random(7)
    numbers = number_pairs(n, rng)
    mixed = numbers[: n * 7 // 10] + [rng.choice(CASES)[1:3] for _ in range(n - n * 7 // 10)]
    rng.shuffle(mixed)
    for label, pairs in (("plain numbers", numbers), ("mixed (70% numbers, 30% labelled-set forms)", mixed)):
        verifier = AnswerVerifier(time_limit=5, workers=2)
        start = time.perf_counter()
        verdicts = on_thread(lambda p=pairs, v=verifier: v.verify_many([a for a, _ in p], [g for _, g in p]))
        seconds = time.perf_counter() - start
        print(
            f"{label}: {len(pairs)} pairs in {seconds:.2f} s = {len(pairs) / seconds:,.0f} checks/s; "
            f"{verifier.sympy_checks} sent to sympy workers; {sum(v.passed for v in verdicts)} equal"
        )


# Timeout -----------------------------------------------------------------------------------
def timeout(limit: float = 2.0) -> None:
    verifier = AnswerVerifier(time_limit=limit, workers=2)
    on_thread(lambda: verifier.verify(r"\boxed{\int_0^1 x\,dx}", "1/2"))  # start the workers
    normal = [(rf"\boxed{{\int_0^{{{k}}} x\,dx}}", str(k * k / 2)) for k in range(1, 21)]
    for label, pairs in (
        ("20 sympy checks", normal),
        ("the same + 10^{10^{10}}", normal[:10] + [(r"\boxed{10^{10^{10}}}", "5")] + normal[10:]),
    ):
        start = time.perf_counter()
        verdicts = on_thread(lambda p=pairs: verifier.verify_many([a for a, _ in p], [g for _, g in p]))
        seconds = time.perf_counter() - start
        reasons = Counter(v.reason for v in verdicts)
        print(
            f"{label}: {seconds:.2f} s on a worker thread, time limit {limit:g} s; verdicts {dict(reasons)}"
        )
    print(f"  workers killed at their limit: {shared_kills()}")


def shared_kills() -> int:
    from dataflow_operators.math.pool import _pools

    return sum(p.kills for p in _pools.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--timeout", action="store_true")
    parser.add_argument("--pairs", type=int, default=20_000)
    args = parser.parse_args()
    everything = not (args.accuracy or args.speed or args.timeout)
    if args.accuracy or everything:
        accuracy()
    if args.speed or everything:
        speed(args.pairs)
    if args.timeout or everything:
        timeout()


if __name__ == "__main__":
    main()
