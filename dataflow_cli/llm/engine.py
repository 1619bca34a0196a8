"""The request engine shared by every LLM stage of a run.

One asyncio event loop, on a background thread, owns every backend. Executor threads hand it
whole batches of requests (`complete`), so all stages that use a backend share its
`max_concurrency` semaphore, its RPM/TPM token buckets and its HTTP connections.

Per request: cache lookup -> rate limits -> call -> retry transient failures with exponential
backoff, jitter and Retry-After -> validate JSON answers against the schema (retrying invalid
ones) -> write to the cache at once, so a killed run loses at most what was in flight.
Batched backends (vllm, local) get every uncached request of a batch in one call instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dataflow_cli.errors import DataflowError
from dataflow_cli.llm.backends.base import Backend
from dataflow_cli.llm.cache import RequestCache
from dataflow_cli.llm.ratelimit import TokenBucket
from dataflow_cli.llm.types import FATAL, Completion, LLMError, Request

log = logging.getLogger(__name__)


class FatalLLMError(DataflowError):
    """A failure that stops the run: bad credentials, `on_error: fail`, or too many errors."""


@dataclass
class Policy:
    """A stage's error policy."""

    on_error: str = "reject"  # reject: the row goes to rejects with the error; fail: stop the run
    max_error_rate: float = 0.2
    min_requests: int = 50  # the error rate is judged only after this many requests
    schema_retries: int = 2  # extra attempts when an answer does not match its JSON schema


@dataclass
class LLMStats:
    """Counters of one stage's requests (thread-safe: updated on the loop thread, read anywhere)."""

    requests: int = 0  # rows' requests asked for, cached or not
    cache_hits: int = 0
    calls: int = 0  # calls actually made to the backend, retries included
    retries: int = 0
    errors: int = 0  # requests that failed for good
    errors_by_kind: Counter = field(default_factory=Counter)
    invalid_outputs: int = 0  # answers that failed schema validation (each attempt)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    rate_limit_wait: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "lock"}
        out["errors_by_kind"] = dict(self.errors_by_kind)
        out["cost"] = round(self.cost, 6)
        out["rate_limit_wait"] = round(self.rate_limit_wait, 3)
        return out


# `_judge` outcomes besides a Completion or a final LLMError.
RETRY_NOW = object()  # the answer broke its JSON schema: ask again
RETRY_LATER = object()  # a transient failure: ask again after a backoff


@dataclass
class _Tries:
    """How often one request has been retried, per reason."""

    attempts: int = 0  # transient failures
    invalid: int = 0  # answers that broke the schema


class _Backend:
    """A backend plus the limits every stage using it shares."""

    def __init__(self, name: str, backend: Backend):
        self.name = name
        self.backend = backend
        self.identity = backend.identity()
        config = backend.config
        self.semaphore = asyncio.Semaphore(config.max_concurrency)
        self.rpm = TokenBucket(config.rpm) if config.rpm else None
        self.tpm = TokenBucket(config.tpm) if config.tpm else None
        self.batch_lock = asyncio.Lock()
        self.in_flight = 0


class LLMEngine:
    def __init__(self, backends: dict[str, Backend], cache: RequestCache | None):
        self.cache = cache
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="dataflow-llm", daemon=True)
        self._thread.start()
        # Semaphores and buckets must be created on the loop that uses them.
        self._backends: dict[str, _Backend] = self._on_loop(self._make_backends(backends))
        self._fatal: FatalLLMError | None = None

    async def _make_backends(self, backends: dict[str, Backend]) -> dict[str, _Backend]:
        return {name: _Backend(name, backend) for name, backend in backends.items()}

    def _on_loop(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def identity(self, backend: str) -> str:
        return self._backends[backend].identity

    def in_flight(self, backend: str) -> int:
        return self._backends[backend].in_flight

    # Entry point for executor threads ----------------------------------------------------
    def complete(
        self, backend: str, requests: list[Request], stats: LLMStats, policy: Policy, stage: str
    ) -> list[Completion | LLMError]:
        """Answer every request (in order): a Completion, or the LLMError it finally failed with.

        Raises FatalLLMError when the run must stop.
        """
        if self._fatal is not None:
            raise self._fatal
        state = self._backends[backend]
        use_cache = self.cache is not None and state.backend.config.cache
        keys = [r.cache_key(state.identity) for r in requests]
        results: list[Completion | LLMError | None] = [None] * len(requests)
        if use_cache:
            hits = self.cache.get_many(keys)
            for i, key in enumerate(keys):
                if key in hits:
                    results[i] = hits[key]
        misses = [i for i, r in enumerate(results) if r is None]
        with stats.lock:  # two executor threads may run batches of the same stage
            stats.requests += len(requests)
            stats.cache_hits += len(requests) - len(misses)
        if misses:
            answers = self._on_loop(
                self._complete_misses(
                    state,
                    [requests[i] for i in misses],
                    [keys[i] for i in misses],
                    stats,
                    policy,
                    stage,
                    use_cache,
                )
            )
            for i, answer in zip(misses, answers, strict=True):
                results[i] = answer
        return results  # type: ignore[return-value]

    def close(self) -> None:
        async def shutdown():
            for state in self._backends.values():
                try:
                    await state.backend.aclose()
                except Exception as exc:  # closing must not mask the run's own outcome
                    log.warning("closing backend %s failed: %s", state.name, exc)

        if self.loop.is_running():
            self._on_loop(shutdown())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()
        if self.cache is not None:
            self.cache.close()

    # On the loop ------------------------------------------------------------------------
    async def _complete_misses(self, state, requests, keys, stats, policy, stage, use_cache):
        store = self._store if use_cache and self.cache is not None else None
        if state.backend.batched:
            answers = await self._batched(state, requests, stats, policy, stage)
            if store is not None:
                for key, answer in zip(keys, answers, strict=True):
                    if isinstance(answer, Completion):
                        store(key, state.identity, answer)
            return answers
        tasks = [
            asyncio.ensure_future(self._one(state, r, stats, policy, stage, key if store else None))
            for r, key in zip(requests, keys, strict=True)
        ]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _one(
        self, state: _Backend, request: Request, stats: LLMStats, policy: Policy, stage: str, key: str | None
    ):
        config = state.backend.config
        tries = _Tries()
        while True:
            async with state.semaphore:
                answer = await self._call(state, request, stats)
                outcome = self._judge(state, request, answer, stats, policy, stage, tries)
                if isinstance(outcome, Completion) and key is not None:
                    # Committed while the slot is held (a WAL commit takes ~30 us), so at any
                    # moment at most `max_concurrency` answers would be lost to a crash.
                    self._store(key, state.identity, outcome)
            if outcome is RETRY_LATER:
                await asyncio.sleep(_delay(answer, tries.attempts, config.backoff, config.max_backoff))
            elif outcome is not RETRY_NOW:
                return outcome

    def _judge(
        self,
        state: _Backend,
        request: Request,
        answer: Completion | LLMError,
        stats: LLMStats,
        policy: Policy,
        stage: str,
        tries: _Tries,
    ) -> Completion | LLMError | object:
        """What to do with one answer: keep it (the Completion), try again (RETRY_NOW for an
        answer that broke its schema, RETRY_LATER for a transient failure), or give up (the
        LLMError the request failed with). Raises FatalLLMError when the run must stop."""
        if isinstance(answer, Completion):
            problem = schema_problem(request, answer.text)
            if problem is None:
                return answer
            stats.invalid_outputs += 1
            if tries.invalid < policy.schema_retries:
                tries.invalid += 1
                return RETRY_NOW
            answer = LLMError("invalid_output", problem, raw=answer.text)
        if answer.kind in FATAL:
            hint = (
                "check the key in the environment variable named by `api_key_env`, and the model name"
                if answer.kind == "auth"
                else "check the backend's model settings"
            )
            raise self._stop(
                FatalLLMError(f"backend `{state.name}`: {answer.reason()}: {answer.message}", hint=hint)
            )
        if answer.retryable and tries.attempts < state.backend.config.max_retries:
            tries.attempts += 1
            stats.retries += 1
            return RETRY_LATER
        return self._failed(answer, stats, policy, stage)

    async def _call(self, state: _Backend, request: Request, stats: LLMStats) -> Completion | LLMError:
        """One call under the rate limits; never raises for a failed request."""
        estimate = request.approx_prompt_tokens() + (request.sampling.max_tokens or 256)
        if state.rpm is not None:
            stats.rate_limit_wait += await state.rpm.acquire(1)
        if state.tpm is not None:
            stats.rate_limit_wait += await state.tpm.acquire(estimate)
        state.in_flight += 1
        stats.calls += 1
        try:
            answer: Completion | LLMError = await state.backend.complete(request)
        except LLMError as exc:
            answer = exc
        except Exception as exc:  # a backend bug must not take the run down silently
            answer = LLMError("backend", f"{type(exc).__name__}: {exc}")
        finally:
            state.in_flight -= 1
        if isinstance(answer, Completion):
            self._count_usage(state, answer, stats)
            if state.tpm is not None:
                used = answer.prompt_tokens + answer.completion_tokens
                if used and used < estimate:
                    state.tpm.refund(estimate - used)
        return answer

    async def _batched(self, state: _Backend, requests: list[Request], stats, policy, stage):
        """Batched backends: one call for the whole batch; failed items are retried together."""
        config = state.backend.config
        answers: list[Any] = [None] * len(requests)
        tries = [_Tries() for _ in requests]
        pending = list(range(len(requests)))
        async with state.batch_lock:
            while pending:
                state.in_flight += len(pending)
                stats.calls += len(pending)
                try:
                    got = await state.backend.complete_batch([requests[i] for i in pending])
                except LLMError as exc:
                    got = [exc] * len(pending)
                except Exception as exc:  # see _call
                    got = [LLMError("backend", f"{type(exc).__name__}: {exc}")] * len(pending)
                finally:
                    state.in_flight -= len(pending)
                retry, delays = [], [0.0]
                for i, answer in zip(pending, got, strict=True):
                    if isinstance(answer, Completion):
                        self._count_usage(state, answer, stats)
                    outcome = self._judge(state, requests[i], answer, stats, policy, stage, tries[i])
                    if outcome is RETRY_LATER:
                        delays.append(_delay(answer, tries[i].attempts, config.backoff, config.max_backoff))
                    if outcome is RETRY_NOW or outcome is RETRY_LATER:
                        retry.append(i)
                    else:
                        answers[i] = outcome
                await asyncio.sleep(max(delays))
                pending = retry
        return answers

    def _store(self, key: str, model: str, answer: Completion) -> None:
        try:
            self.cache.put(key, model, answer)
        except Exception as exc:  # e.g. a full disk: the run goes on uncached, and says so
            log.warning("request cache write failed: %s", exc)

    def _count_usage(self, state: _Backend, answer: Completion, stats: LLMStats) -> None:
        stats.prompt_tokens += answer.prompt_tokens
        stats.completion_tokens += answer.completion_tokens
        if answer.cost is None:
            answer.cost = state.backend.cost(answer)
        stats.cost += answer.cost or 0.0

    def _failed(self, error: LLMError, stats: LLMStats, policy: Policy, stage: str) -> LLMError:
        stats.errors += 1
        stats.errors_by_kind[error.kind] += 1
        if policy.on_error == "fail":
            raise self._stop(
                FatalLLMError(
                    f"stage `{stage}`: request failed ({error.reason()}: {error.message})",
                    hint="set `on_error: reject` on the stage to send failing rows to the rejects file instead",
                )
            )
        if stats.requests >= policy.min_requests and stats.errors / stats.requests > policy.max_error_rate:
            raise self._stop(
                FatalLLMError(
                    f"stage `{stage}`: {stats.errors} of {stats.requests} requests failed "
                    f"({stats.errors / stats.requests:.0%} > max_error_rate {policy.max_error_rate:.0%}); "
                    f"most common: {error.reason()}: {error.message}",
                    hint="finished batches are checkpointed and answers cached: fix the cause and run again",
                )
            )
        return error

    def _stop(self, error: FatalLLMError) -> FatalLLMError:
        if self._fatal is None:
            self._fatal = error
        return self._fatal


def _delay(error: LLMError, attempt: int, backoff: float, max_backoff: float) -> float:
    """Retry-After when the server gave one, else exponential backoff; jitter spreads a herd of
    retries so they do not hit the server in the same instant again."""
    if error.retry_after is not None:
        return error.retry_after * random.uniform(1.0, 1.2)
    return min(max_backoff, backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def schema_problem(request: Request, text: str) -> str | None:
    """Why `text` does not satisfy the request's JSON schema, or None."""
    if request.json_schema is None:
        return None
    try:
        value = json.loads(strip_code_fence(text))
    except ValueError as exc:
        return f"answer is not JSON ({exc})"
    from jsonschema import Draft202012Validator

    error = next(iter(Draft202012Validator(request.json_schema).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "answer"
    return f"{where}: {error.message}"


_FENCE = re.compile(r"^```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)\n?[ \t]*```$", re.DOTALL)


def strip_code_fence(text: str) -> str:
    """Models often wrap JSON in ```json fences (even on one line) when asked not to."""
    stripped = text.strip()
    match = _FENCE.match(stripped)
    return match.group(1).strip() if match else stripped
