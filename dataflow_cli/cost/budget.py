"""Budgets: caps on what a run may spend (`budget:` in the spec, `--max-usd/--max-tokens/
--max-requests` on `dataflow run`).

The request engine asks `admit` before it sends each request (after the rate limits, where
nothing else can delay it any more) and reports every answer to `settle`. A request is sent only
while every cap has something left, counting what requests in flight may still cost: each one
reserves its estimate (prompt estimate + `max_tokens`, or 256) until its answer arrives. So the
request cap is never exceeded, and token and USD caps at most by the last answers' excess over
their estimates. Answers from the cache are free.

Once a cap is reached the engine sends nothing new; requests in flight finish and are cached,
finished batches stay checkpointed, and the run ends with `BudgetExhausted` (exit code 3)
without writing its output. Spending of a run that did not complete carries over to the run
that resumes it (`budget.json` in the run directory), so a cap bounds the run as a whole and a
rerun with a higher cap continues where the last one stopped.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dataflow_cli.cost.prices import Price, fmt_usd
from dataflow_cli.llm.engine import FatalLLMError
from dataflow_cli.llm.types import Completion, Request

CAPS = ("max_usd", "max_tokens", "max_requests")
EXIT_CODE = 3  # a run stopped by a budget cap (documented in the README's exit codes)
STATE_FILE = "budget.json"
DEFAULT_COMPLETION_ESTIMATE = 256  # tokens reserved for an answer without `max_tokens`


WAIT = "wait"  # `Budget.admit`: ask again once requests in flight have finished


class BudgetExhausted(FatalLLMError):
    """A budget cap was reached: the run stopped cleanly and can be resumed with a higher cap."""

    exit_code = EXIT_CODE

    def __init__(self, cap: str, limit: float, spent: float, message: str):
        super().__init__(
            message,
            hint="finished batches are checkpointed and answers cached: rerun with a higher cap "
            f"(--{cap.replace('_', '-')} or budget.{cap}) to continue where it stopped",
        )
        self.cap = cap
        self.limit = limit
        self.spent = spent


@dataclass
class Spent:
    usd: float = 0.0
    tokens: int = 0
    requests: int = 0

    def value(self, cap: str) -> float:
        return {"max_usd": self.usd, "max_tokens": self.tokens, "max_requests": self.requests}[cap]


@dataclass
class Ticket:
    """What one admitted request reserved until its answer arrives."""

    backend: str
    tokens: int
    usd: float
    batch: bool = False


class Budget:
    def __init__(
        self,
        limits: dict[str, float],
        prices: dict[str, Price | None],
        carried: Spent | None = None,
    ):
        self.limits = {cap: limits[cap] for cap in CAPS if limits.get(cap) is not None}
        self.prices = prices
        self.carried = carried or Spent()
        self.spent = Spent(**asdict(self.carried))
        self._reserved = Spent()
        self._lock = threading.Lock()
        self.stopped: BudgetExhausted | None = None

    # Admission ------------------------------------------------------------------------
    def admit(self, backend: str, request: Request, *, batch: bool = False) -> Ticket | BudgetExhausted | str:
        """Reserve what `request` may cost; or say which cap stops it (then nothing is sent); or
        WAIT when only requests in flight stand between the spending and a cap."""
        prompt = request.approx_prompt_tokens()
        completion = request.sampling.max_tokens or DEFAULT_COMPLETION_ESTIMATE
        price = self.prices.get(backend)
        usd = price.cost(prompt, completion, batch=batch) if price is not None else 0.0
        with self._lock:
            if self.stopped is not None:
                return self.stopped
            wait = False
            for cap, limit in self.limits.items():
                spent, held = self.spent.value(cap), self._reserved.value(cap)
                if cap == "max_requests" and spent + held + 1 > limit or spent >= limit:
                    self.stopped = self._exhausted(cap, limit)
                    return self.stopped
                # What requests in flight will cost is known only when they finish: wait for
                # them rather than stop short of the cap (or send and overshoot it).
                wait = wait or spent + held >= limit
            if wait:
                return WAIT
            self._reserved.requests += 1
            self._reserved.tokens += prompt + completion
            self._reserved.usd += usd
        return Ticket(backend, prompt + completion, usd, batch)

    def settle(self, ticket: Ticket, answer: Any) -> None:
        """Release the reservation and count what the request really cost."""
        with self._lock:
            self._reserved.requests -= 1
            self._reserved.tokens -= ticket.tokens
            self._reserved.usd -= ticket.usd
        self.charge(ticket.backend, answer, batch=ticket.batch)

    def charge(self, backend: str, answer: Any, *, batch: bool = False) -> None:
        """Count one request that was sent (a failed one counts as a request; its tokens,
        unbilled, do not)."""
        cost = self.cost_of(backend, answer, batch=batch) if isinstance(answer, Completion) else None
        with self._lock:
            self.spent.requests += 1
            if isinstance(answer, Completion):
                self.spent.tokens += answer.prompt_tokens + answer.completion_tokens
                self.spent.usd += cost or 0.0

    def cost_of(self, backend: str, answer: Completion, *, batch: bool = False) -> float | None:
        if answer.cost is not None:  # set by the engine or the batch client at the right price
            return answer.cost
        price = self.prices.get(backend)
        if price is None:
            return None
        return price.cost(answer.prompt_tokens, answer.completion_tokens, batch=batch)

    def _exhausted(self, cap: str, limit: float) -> BudgetExhausted:
        spent = self.spent.value(cap) + self._reserved.value(cap)  # requests in flight included
        what = {
            "max_usd": f"{fmt_usd(spent)} of {fmt_usd(limit)} spent or held by requests in flight",
            "max_tokens": f"{spent:,} of {limit:,} tokens used or held by requests in flight",
            "max_requests": f"{spent:,} of {limit:,} requests sent",
        }[cap]
        return BudgetExhausted(
            cap, limit, spent, f"budget cap `{cap}` reached: {what}; no new request is sent"
        )

    # Reporting ------------------------------------------------------------------------
    def stopped_by(self) -> dict[str, Any] | None:
        """`stats.json`'s `stopped_by` (spent as of now, in-flight answers included)."""
        if self.stopped is None:
            return None
        cap = self.stopped.cap
        spent = self.spent.value(cap)
        return {
            "cap": cap,
            "limit": self.stopped.limit,
            "spent": round(spent, 6) if cap == "max_usd" else spent,
            "message": self.stopped.reason,
        }

    def to_dict(self) -> dict[str, Any]:
        spent = asdict(self.spent)
        spent["usd"] = round(spent["usd"], 6)
        left = {cap: max(0, limit - self.spent.value(cap)) for cap, limit in self.limits.items()}
        if "max_usd" in left:
            left["max_usd"] = round(left["max_usd"], 6)
        this_run = {k: spent[k] - v for k, v in asdict(self.carried).items()}
        this_run["usd"] = round(this_run["usd"], 6)
        return {"limits": dict(self.limits), "spent": spent, "this_run": this_run, "left": left}

    def summary(self) -> str:
        return summary_line(self.to_dict())

    # Persistence ----------------------------------------------------------------------
    def save(self, run_dir: Path, complete: bool) -> None:
        from dataflow_cli.io.writers import atomic_write_text

        payload = {"spent": asdict(self.spent), "complete": complete}
        atomic_write_text(run_dir / STATE_FILE, json.dumps(payload) + "\n")


def carried_over(run_dir: Path, fresh: bool) -> Spent:
    """Spending of an earlier run in `run_dir` that did not complete (it is being resumed)."""
    path = run_dir / STATE_FILE
    if fresh or not path.is_file():
        return Spent()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("complete"):
            return Spent()
        spent = state["spent"]
        return Spent(float(spent["usd"]), int(spent["tokens"]), int(spent["requests"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Spent()  # unreadable: count from zero rather than refuse to run


def summary_line(budget: dict[str, Any]) -> str:
    """One line for people, from `stats.json`'s `budget`: each cap's spending and what is left."""
    parts = []
    spent = {"max_usd": budget["spent"]["usd"], "max_tokens": budget["spent"]["tokens"]}
    spent["max_requests"] = budget["spent"]["requests"]
    for cap, limit in budget["limits"].items():
        left = budget["left"][cap]
        if cap == "max_usd":
            parts.append(f"{fmt_usd(spent[cap])} of {fmt_usd(limit)} spent, {fmt_usd(left)} left")
        else:
            unit = "tokens" if cap == "max_tokens" else "requests"
            parts.append(f"{spent[cap]:,} of {limit:,} {unit} used, {left:,} left")
    return "; ".join(parts)
