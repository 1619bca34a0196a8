"""sympy checks run in worker processes with a time limit that really interrupts, from any thread."""

from __future__ import annotations

import threading
import time

import pytest
from dataflow_operators.math.pool import VerifyPool
from dataflow_operators.math.verifier import AnswerVerifier

LIMIT = 2.0


@pytest.fixture(scope="module")
def verifier():
    v = AnswerVerifier(time_limit=LIMIT, workers=2)
    # Start the workers (importing sympy takes a moment) so timings below measure checks only.
    assert v.verify(r"\boxed{\int_0^1 x\,dx}", "1/2").passed
    return v


def in_thread(fn):
    """Run fn on a worker thread, as the executor runs operators; return (result, seconds)."""
    box = {}

    def run():
        start = time.monotonic()
        box["result"] = fn()
        box["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the check was not interrupted"
    return box["result"], box["seconds"]


def test_answers_the_in_process_parser_cannot_read_go_to_sympy(verifier):
    passed, failed = verifier.verify_many([r"\boxed{\int_0^1 x\,dx}"] * 2, ["1/2", "1/3"])
    assert (passed.passed, passed.method) == (True, "sympy")
    assert (failed.passed, failed.reason, failed.method) == (False, "different values", "sympy")
    assert verifier.verify(r"\boxed{\sum_{k=1}^{3} k}", "6").passed


def test_a_runaway_check_is_killed_at_its_limit_off_the_main_thread(verifier):
    kills = verifier_pool_kills()
    verdict, seconds = in_thread(lambda: verifier.verify(r"\boxed{10^{10^{10}}}", "5"))
    assert (verdict.passed, verdict.reason, verdict.method) == (False, f"timeout after {LIMIT:g}s", "sympy")
    assert LIMIT <= seconds < LIMIT + 3  # slack for a loaded machine; without the kill it never returns
    assert verifier_pool_kills() == kills + 1
    # The killed worker was replaced: the next checks work.
    again, _ = in_thread(lambda: verifier.verify(r"\boxed{\int_0^2 x\,dx}", "2"))
    assert again.passed and again.method == "sympy"


def test_one_pathological_answer_does_not_stall_the_others(verifier):
    outputs = [r"\boxed{10^{10^{10}}}", r"\boxed{\int_0^1 x\,dx}", r"\boxed{7}", r"\boxed{2^{2^{40}}}"]
    golds = ["5", "1/2", "7", "3"]
    verdicts, seconds = in_thread(lambda: verifier.verify_many(outputs, golds))
    assert [v.passed for v in verdicts] == [False, True, True, False]
    assert verdicts[0].reason == verdicts[3].reason == f"timeout after {LIMIT:g}s"
    assert verdicts[2].method == "fast"
    # Two workers: the two runaway checks overlap; the bound includes restarting a killed worker.
    assert seconds < 2 * LIMIT + 5


def verifier_pool_kills() -> int:
    from dataflow_operators.math.pool import shared_pool

    return shared_pool(2, 2048).kills


def test_a_pool_is_usable_from_several_threads_at_once():
    pool = VerifyPool(workers=1)
    task = {
        "answer": r"\int_0^1 x\,dx",
        "gold": "1/2",
        "options": {"rel_tol": 1e-9, "percent": "either", "strip_units": True},
    }
    results = [None] * 3

    def run(i):
        results[i] = pool.run([task], 30)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [[{"equal": True, "reason": "equal"}]] * 3
    # The worker outlives the thread that first needed it (it is not tied to that thread).
    pid = pool.workers[0].proc.pid
    assert pool.run([task], 30) == [{"equal": True, "reason": "equal"}]
    assert pool.workers[0].proc.pid == pid and pool.kills == 0
    pool.close()
