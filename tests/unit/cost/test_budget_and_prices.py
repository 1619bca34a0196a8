"""Budget admission and accounting, and where prices come from (spec, litellm's map, unknown)."""

from __future__ import annotations

import pytest

from dataflow_cli.cost.budget import WAIT, Budget, BudgetExhausted, Spent, carried_over, summary_line
from dataflow_cli.cost.prices import Price, map_price, resolve_price
from dataflow_cli.llm.backends.base import Backend, BackendConfig, InProcessBackend
from dataflow_cli.llm.types import Completion, LLMError, Request, Sampling


def request(words: int = 8, max_tokens: int | None = 10) -> Request:
    return Request(({"role": "user", "content": "word " * words},), Sampling(max_tokens=max_tokens))


PRICE = Price(input_per_mtok=1.0, output_per_mtok=2.0)


def test_request_cap_is_never_exceeded_counting_requests_in_flight():
    budget = Budget({"max_requests": 3}, {"b": None})
    tickets = [budget.admit("b", request()) for _ in range(3)]  # three in flight at once
    assert not any(isinstance(t, BudgetExhausted) for t in tickets)
    stop = budget.admit("b", request())
    assert isinstance(stop, BudgetExhausted) and stop.cap == "max_requests" and stop.exit_code == 3
    assert "3 of 3 requests sent" in stop.reason
    for ticket in tickets:
        budget.settle(ticket, Completion("ok", 5, 7))
    assert budget.admit("b", request()) is stop  # once stopped, nothing more is admitted
    assert budget.stopped_by() == {"cap": "max_requests", "limit": 3, "spent": 3, "message": stop.reason}
    assert budget.to_dict()["spent"] == {"usd": 0.0, "tokens": 36, "requests": 3}


def test_token_and_usd_caps_wait_for_requests_in_flight_then_stop_at_the_cap():
    # Estimate: 8 words * 5 chars // 4 + 4 = 14 prompt tokens + 10 max_tokens = 24 per request.
    budget = Budget({"max_tokens": 40}, {"b": None})
    first, second = budget.admit("b", request()), budget.admit("b", request())
    assert budget.admit("b", request()) == WAIT  # 48 held: only the answers can tell
    budget.settle(first, Completion("x", 10, 5))
    budget.settle(second, Completion("x", 10, 5))
    third = budget.admit("b", request())  # 30 spent: room left, so it is sent
    assert not isinstance(third, (BudgetExhausted, str))
    budget.settle(third, Completion("x", 10, 5))
    stop = budget.admit("b", request())
    assert isinstance(stop, BudgetExhausted) and stop.cap == "max_tokens"
    assert budget.stopped_by()["spent"] == 45  # at the cap, over it by the last answer only

    usd = Budget({"max_usd": 0.0001}, {"b": PRICE})
    ticket = usd.admit("b", request())
    usd.settle(ticket, Completion("x", prompt_tokens=40, completion_tokens=40))  # 40e-6 + 80e-6 USD
    stop = usd.admit("b", request())
    assert isinstance(stop, BudgetExhausted) and stop.cap == "max_usd"
    assert usd.stopped_by()["spent"] == pytest.approx(0.00012)


def test_failed_requests_count_as_requests_not_tokens_and_batch_is_half_price():
    budget = Budget({"max_requests": 10}, {"b": PRICE})
    budget.settle(budget.admit("b", request()), LLMError("server", "boom"))
    budget.charge("b", Completion("x", 1_000_000, 0), batch=True)  # a resumed batch job's answer
    assert budget.spent == Spent(usd=0.5, tokens=1_000_000, requests=2)


def test_spending_carries_over_only_from_a_run_that_did_not_complete(tmp_path):
    budget = Budget({"max_requests": 10}, {}, carried=Spent(1.0, 5, 4))
    budget.charge("b", Completion("x", 1, 1))
    budget.save(tmp_path, complete=False)
    assert carried_over(tmp_path, fresh=False) == Spent(1.0, 7, 5)
    assert carried_over(tmp_path, fresh=True) == Spent()
    assert budget.to_dict()["this_run"] == {"usd": 0.0, "tokens": 2, "requests": 1}
    assert summary_line(budget.to_dict()) == "5 of 10 requests used, 5 left"
    budget.save(tmp_path, complete=True)
    assert carried_over(tmp_path, fresh=False) == Spent()


def test_spec_price_wins_over_litellm_map_and_unknown_stays_unknown():
    if not map_price("gpt-4o-mini"):
        pytest.skip("litellm is not installed: no price map")  # the spec-price half still ran below
    mapped = resolve_price(BackendConfig(provider="openai", model="gpt-4o-mini"))
    assert mapped.source == "litellm" and mapped.input_per_mtok == pytest.approx(0.15)
    assert mapped.rates(batch=True) == pytest.approx((0.075, 0.3))  # the map's batch prices
    assert resolve_price(BackendConfig(provider="litellm", model="openai/gpt-4o-mini")).source == "litellm"


def test_spec_price_and_unknown_models():
    spec = BackendConfig(
        provider="openai", model="gpt-4o-mini", price={"input_per_mtok": 3, "output_per_mtok": 4}
    )
    assert resolve_price(spec).input_per_mtok == 3 and resolve_price(spec).rates(batch=True) == (1.5, 2.0)
    assert resolve_price(BackendConfig(provider="openai", model="no-such-model-xyz")) is None
    assert resolve_price(BackendConfig(provider="fake", model="gpt-4o-mini")) is None  # not an API
    backend = Backend(spec)
    assert backend.cost(Completion("x", 1_000_000, 1_000_000)) == pytest.approx(7.0)
    assert Backend(BackendConfig(provider="fake")).cost(Completion("x", 10, 10)) is None  # never 0


class CountingInProcess(InProcessBackend):
    """An in-process (batched) backend: one `_run` per batch, every request answered."""

    provider = "counting"

    def __init__(self, config):
        super().__init__(config)
        self.sent: list[int] = []

    def _run(self, requests):
        self.sent.append(len(requests))
        return [Completion("ok", 3, 2) for _ in requests]


def test_engine_admits_each_request_and_stops_at_the_cap_online_and_batched():
    from dataflow_cli.llm.backends.fake import FakeBackend
    from dataflow_cli.llm.engine import LLMEngine, LLMStats, Policy

    fake = FakeBackend()
    batched = CountingInProcess(BackendConfig(provider="counting"))
    budget = Budget({"max_requests": 5}, {"fake": None, "batched": None})
    engine = LLMEngine({"fake": fake, "batched": batched}, None, budget)
    try:
        answers = engine.complete("fake", [request(words=i + 1) for i in range(3)], LLMStats(), Policy(), "s")
        assert all(isinstance(a, Completion) for a in answers)
        assert len(engine.complete("batched", [request(1), request(2)], LLMStats(), Policy(), "b")) == 2
        with pytest.raises(BudgetExhausted, match="5 of 5 requests sent"):
            engine.complete("fake", [request(words=9)], LLMStats(), Policy(), "s")
        with pytest.raises(BudgetExhausted):
            engine.complete("batched", [request(words=10)], LLMStats(), Policy(), "b")
        assert len(fake.history) == 3 and batched.sent == [2]  # nothing was sent past the cap
        # Fake tokens are words: prompts of 1-3 words, replies "fake reply to: <prompt>"; 2 x (3 + 2).
        assert budget.spent == Spent(usd=0.0, tokens=(1 + 4) + (2 + 5) + (3 + 6) + 2 * 5, requests=5)
    finally:
        engine.close()
