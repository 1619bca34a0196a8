"""The request engine shared by every LLM stage of a run.

One asyncio event loop, on a background thread, owns every backend. Executor threads hand it
whole batches of requests (`complete`), so all stages that use a backend share its
`max_concurrency` slots, its RPM/TPM token buckets and its HTTP connections. A batch's
requests go in chunks as the operator builds them, so the first calls leave while later prompts
are still rendered.

Per request: cache lookup -> rate limits -> call -> retry transient failures with exponential
backoff, jitter and Retry-After -> validate JSON answers against the schema (retrying invalid
ones) -> write to the cache, so a killed run loses at most what was in flight: a request keeps
its slot until its answer is committed. Commits run on a thread of their own (SQLite work on
the loop would hold up every request), and the answers that arrive during one commit share
the next. Batched backends (vllm, local) get every uncached request of a batch in one call
instead.

Identical requests (same cache key) share one call: a request whose key is already in flight,
in this batch or another one, waits for that call's answer instead of sending its own. Without
this, duplicates sent at once could get different answers of which the cache keeps one, and a
rerun from the cache would disagree with the run that filled it.

After the first fatal failure (401/403, a model that cannot load, `on_error: fail`, too many
errors) no new request is sent: requests already in flight finish, waiting ones fail at once.

An answer cut off by `max_tokens` (finish reason `length`) is rejected as `TruncatedAnswer`
unless the stage says `on_truncated: keep`; it is cached as it came, so a rerun decides alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import itertools
import json
import logging
import random
import re
import threading
from collections import Counter, deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
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


# Requests looked up in the cache and sent together by `complete`: small enough that the first
# calls of a batch leave soon, large enough that the hand-over to the loop stays cheap.
CHUNK = 100

# Finish reasons of an answer cut off by the token limit (litellm maps providers' own names,
# e.g. Anthropic's `max_tokens`, to OpenAI's `length`; both are accepted).
TRUNCATED = frozenset({"length", "max_tokens"})


class TruncatedAnswer(LLMError):
    """An answer cut off by `max_tokens`: unusable as text by default (`{"answer": "The answe`)."""

    def __init__(self, completion: Completion):
        super().__init__(
            "truncated",
            f"the answer was cut off by max_tokens after {completion.completion_tokens} tokens",
            raw=completion.text,
        )

    def reason(self) -> str:
        return "llm truncated (max_tokens)"


@dataclass
class Policy:
    """A stage's error policy."""

    on_error: str = "reject"  # reject: the row goes to rejects with the error; fail: stop the run
    max_error_rate: float = 0.2
    min_requests: int = 50  # the error rate is judged only after this many requests
    schema_retries: int = 2  # extra attempts when an answer does not match its JSON schema
    on_truncated: str = "reject"  # an answer cut off by max_tokens: reject: the row fails; keep: use it


@dataclass
class LLMStats:
    """Counters of one stage's requests (thread-safe: updated on the loop thread, read anywhere)."""

    requests: int = 0  # rows' requests asked for, cached or not
    cache_hits: int = 0
    shared: int = 0  # requests answered by an identical request of this run (one call for both)
    calls: int = 0  # calls actually made to the backend, retries included
    retries: int = 0
    errors: int = 0  # requests that failed for good
    errors_by_kind: Counter = field(default_factory=Counter)
    invalid_outputs: int = 0  # answers that failed schema validation (each attempt)
    truncated: int = 0  # answers cut off by max_tokens (rejected unless `on_truncated: keep`)
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


class _Job:
    """One owned request of a non-batched backend: queued, being asked, or waiting to retry."""

    __slots__ = ("key", "request", "stats", "policy", "stage", "store", "tries")

    def __init__(self, key: str, request: Request, stats: LLMStats, policy: Policy, stage: str, store: bool):
        self.key = key
        self.request = request
        self.stats = stats
        self.policy = policy
        self.stage = stage
        self.store = store  # cache the answer
        self.tries = _Tries()


class _Backend:
    """A backend plus the limits every stage using it shares."""

    def __init__(self, name: str, backend: Backend):
        self.name = name
        self.backend = backend
        self.identity = backend.identity()
        config = backend.config
        # Owned requests wait in `queue`; at most `limit` workers take them one after another
        # (a task and a semaphore wait per request cost ~25 us of CPU each, see `_pump`).
        self.limit = config.max_concurrency
        self.queue: deque[_Job] = deque()
        self.workers = 0
        self.rpm = TokenBucket(config.rpm) if config.rpm else None
        self.tpm = TokenBucket(config.tpm) if config.tpm else None
        self.batch_lock = asyncio.Lock()
        self.in_flight = 0
        # Cache key -> the answer of the call in flight for it, which identical requests share.
        self.pending: dict[str, asyncio.Future] = {}


class LLMEngine:
    def __init__(self, backends: dict[str, Backend], cache: RequestCache | None, budget: Any = None):
        # What lives now (modules, the spec, operators) lives all run: out of the cyclic garbage
        # collector's way, so its collections during the run (one per ~700 new objects, and
        # requests make many) scan only what the run creates. Full collections of the whole
        # heap took ~8% of a fast run's time.
        gc.freeze()
        self.cache = cache
        self.budget = budget  # cost.budget.Budget: asked before each request is sent
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="dataflow-llm", daemon=True)
        self._thread.start()
        self._fatal: FatalLLMError | None = None
        self._stores = 0  # answers written to the cache so far (see `_send`)
        # Answers waiting for the next commit (see `_store_later`), and how many answers the
        # commit running on the writer thread holds (0: none runs).
        self._unstored: list[tuple[_Backend, str, Completion]] = []
        self._group: asyncio.Future | None = None  # settled once `_unstored` is committed
        self._committing = 0
        # SQLite commits run on their own thread: on the loop they would hold up every request
        # (a commit costs tens of microseconds, a WAL checkpoint tens of milliseconds).
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dataflow-llm-cache") if cache else None
        self._tasks: set[asyncio.Task] = set()
        # Semaphores, buckets and events must be created on the loop that uses them.
        self._backends: dict[str, _Backend] = self._on_loop(self._make_backends(backends))

    async def _make_backends(self, backends: dict[str, Backend]) -> dict[str, _Backend]:
        self._stopped = asyncio.Event()  # set with `_fatal`: wakes requests waiting to retry
        return {name: _Backend(name, backend) for name, backend in backends.items()}

    def _on_loop(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def identity(self, backend: str) -> str:
        return self._backends[backend].identity

    def in_flight(self, backend: str) -> int:
        return self._backends[backend].in_flight

    # Entry point for executor threads ----------------------------------------------------
    def complete(
        self, backend: str, requests: Iterable[Request], stats: LLMStats, policy: Policy, stage: str
    ) -> list[Completion | LLMError]:
        """Answer every request (in order): a Completion, or the LLMError it finally failed with.

        `requests` may be a generator: every `CHUNK` of them is looked up in the cache and sent
        while the caller prepares the next ones, so the first calls leave as soon as their
        prompts exist. Raises FatalLLMError when the run must stop.
        """
        if self._fatal is not None:
            raise self._fatal
        state = self._backends[backend]
        use_cache = self.cache is not None and state.backend.config.cache
        every: list[Request] = []
        results: list[Completion | LLMError | None] = []
        sent: list[tuple[list[int], list[str], concurrent.futures.Future]] = []
        source = iter(requests)
        while chunk := list(itertools.islice(source, CHUNK)):
            base = len(every)
            every += chunk
            keys = [r.cache_key(state.identity) for r in chunk]
            stores_before = self._stores
            hits = self.cache.get_many(keys) if use_cache else {}  # type: ignore[union-attr]
            results += [hits.get(key) for key in keys]
            misses = [i for i, key in enumerate(keys) if key not in hits]
            with stats.lock:  # two executor threads may run batches of the same stage
                stats.requests += len(chunk)
                stats.cache_hits += len(chunk) - len(misses)
            if misses:
                miss_keys = [keys[i] for i in misses]
                answers = self._send(
                    state,
                    [chunk[i] for i in misses],
                    miss_keys,
                    stats,
                    policy,
                    stage,
                    use_cache,
                    stores_before,
                )
                sent.append(([base + i for i in misses], miss_keys, answers))
        for positions, keys, answers in sent:
            got = answers.result()
            for i, key in zip(positions, keys, strict=True):
                results[i] = got[key]
        return self._truncation(every, results, policy, stats)  # type: ignore[arg-type]

    def _send(
        self,
        state: _Backend,
        requests: list[Request],
        keys: list[str],
        stats: LLMStats,
        policy: Policy,
        stage: str,
        use_cache: bool,
        stores_before: int,
    ) -> concurrent.futures.Future:
        """Start answering requests the cache did not have (identical ones share one call);
        the future gives the answer per key."""
        # Claim each key: one already in flight (from any batch) is shared, the rest are ours.
        futures, owned = self._on_loop(self._claim(state, keys))
        hits: dict[str, Completion] = {}
        if use_cache and self.cache is not None and owned and self._stores != stores_before:
            # An identical request finished after this batch looked in the cache: reuse its answer.
            # (A call is cached before it stops being in flight, so nothing falls between the two.)
            try:
                hits = self.cache.get_many(list(owned))
            except BaseException as exc:
                # Futures belong to the loop: settle them there, and wait until that is done.
                async def settle(error: BaseException = exc) -> None:
                    self._settle(state, dict.fromkeys(owned), error)

                self._on_loop(settle())
                raise
        first: dict[str, Request] = {}
        for request, key in zip(requests, keys, strict=True):
            first.setdefault(key, request)
        todo = {key: first[key] for key in owned if key not in hits}
        with stats.lock:
            stats.cache_hits += sum(1 for key in keys if key in hits)
            stats.shared += sum(1 for key in keys if key not in hits) - len(todo)
        wait = self._wait(state, futures, todo, hits, stats, policy, stage, use_cache)
        return asyncio.run_coroutine_threadsafe(wait, self.loop)

    @staticmethod
    def _truncation(
        requests: list[Request], results: list[Completion | LLMError], policy: Policy, stats: LLMStats
    ) -> list[Completion | LLMError]:
        """Answers cut off by max_tokens, cached or fresh, counted and (by default) rejected."""
        cut = [i for i, r in enumerate(results) if isinstance(r, Completion) and cut_off(requests[i], r)]
        if cut:
            with stats.lock:
                stats.truncated += len(cut)
            if policy.on_truncated == "reject":
                for i in cut:
                    results[i] = TruncatedAnswer(results[i])  # type: ignore[arg-type]
        return results

    def close(self) -> None:
        async def shutdown():
            for task in list(self._tasks):  # e.g. a retry still waiting after a fatal error
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            while self._unstored or self._committing:  # answers that arrived are cached, whatever
                self._flush()  # happens to the rest
                await asyncio.sleep(0.001)
            error = self._fatal or RuntimeError("the LLM engine closed while a request was in flight")
            for state in self._backends.values():
                state.queue.clear()
                for key in list(state.pending):  # e.g. queued requests of a batch that gave up
                    _publish(state, key, None, error)
                try:
                    await state.backend.aclose()
                except Exception as exc:  # closing must not mask the run's own outcome
                    log.warning("closing backend %s failed: %s", state.name, exc)

        if self.loop.is_running():
            self._on_loop(shutdown())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()
        gc.unfreeze()
        if self._writer is not None:
            if self.cache is not None:
                self._writer.submit(self.cache.close).result()  # the writer's own connection
            self._writer.shutdown()
            self._writer = None
        if self.cache is not None:
            self.cache.close()

    # On the loop ------------------------------------------------------------------------
    async def _claim(self, state: _Backend, keys: list[str]) -> tuple[dict[str, asyncio.Future], list[str]]:
        """The future answering each key: shared when the key is in flight, else a new one we own."""
        futures: dict[str, asyncio.Future] = {}
        owned: list[str] = []
        for key in keys:
            if key in futures:
                continue
            future = state.pending.get(key)
            if future is None:
                future = state.pending[key] = self.loop.create_future()
                owned.append(key)
            futures[key] = future
        return futures, owned

    async def _wait(self, state, futures, todo, hits, stats, policy, stage, use_cache) -> dict[str, Any]:
        """Start the calls this batch owns, then wait for every answer it needs (its own and
        shared ones). Calls are not tied to this wait: a batch that stops waiting (a fatal
        error) must not cancel a call another batch shares."""
        self._settle(state, hits)
        if todo:
            if state.backend.batched:
                self._spawn(self._own_batch(state, todo, stats, policy, stage, use_cache))
            else:
                store = use_cache and self.cache is not None
                state.queue.extend(_Job(key, r, stats, policy, stage, store) for key, r in todo.items())
                self._pump(state)
        done, _ = await asyncio.wait(set(futures.values()), return_when=asyncio.FIRST_EXCEPTION)
        for future in done:
            if not future.cancelled() and (error := future.exception()) is not None:
                raise error
        return {key: future.result() for key, future in futures.items()}

    def _spawn(self, coroutine) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _settle(self, state: _Backend, answers: dict[str, Any], error: BaseException | None = None) -> None:
        """Publish the answers (a Completion or LLMError each), or `error` raised for all of
        them: the sharers wake, and the keys leave flight. A call's answer is cached before
        this, so a later identical request finds it there."""
        if isinstance(error, asyncio.CancelledError):
            error = self._fatal or RuntimeError("the LLM engine closed while a request was in flight")
        for key, answer in answers.items():
            _publish(state, key, answer, error)

    def _pump(self, state: _Backend) -> None:
        """Start a worker per queued request while the backend has free slots. A worker holds
        one slot and answers queued requests one after another until the queue is empty."""
        while state.queue and state.workers < state.limit:
            state.workers += 1
            self._spawn(self._worker(state, state.queue.popleft()))

    async def _worker(self, state: _Backend, job: _Job) -> None:
        try:
            while True:
                await self._attempt(state, job)
                if not state.queue:
                    return
                job = state.queue.popleft()
        finally:
            state.workers -= 1

    async def _attempt(self, state: _Backend, job: _Job) -> None:
        """Ask for one job's answer in the worker's slot, then publish it, cache it, or set it
        aside for a retry after a backoff (which frees the slot)."""
        try:
            while True:
                answer = await self._call(state, job.request, job.stats)
                outcome = self._judge(state, job.request, answer, job.stats, job.policy, job.stage, job.tries)
                if outcome is not RETRY_NOW:
                    break
        except BaseException as exc:  # delivered to everyone waiting for this key
            self._settle(state, {job.key: None}, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if outcome is RETRY_LATER:
            config = state.backend.config
            delay = _delay(answer, job.tries.attempts, config.backoff, config.max_backoff)
            self._spawn(self._retry_later(state, job, delay))
        elif isinstance(outcome, Completion) and job.store:
            # The slot stays taken until the answer is committed, so at any moment at most
            # `max_concurrency` answers would be lost to a crash.
            group = self._store_later(state, job.key, outcome)
            if not group.done():
                await group
        else:
            _publish(state, job.key, outcome)

    async def _retry_later(self, state: _Backend, job: _Job, seconds: float) -> None:
        try:
            await self._backoff(seconds)
        except BaseException as exc:
            self._settle(state, {job.key: None}, exc)
            raise
        state.queue.appendleft(job)  # ahead of newer requests: its batch is older
        self._pump(state)

    def _store_later(self, state: _Backend, key: str, answer: Completion) -> asyncio.Future:
        """Queue an answer for the cache; it is published once committed. Answers that arrive
        while a commit runs share the next one (a commit per answer costs ~50 us of CPU).
        Returns the future of the answer's commit."""
        if not self._unstored:
            self._group = self.loop.create_future()
            if not self._committing:
                self.loop.call_soon(self._flush)
        self._unstored.append((state, key, answer))
        return self._group  # type: ignore[return-value]

    def _flush(self) -> None:
        """Commit the queued answers on the writer thread, unless a commit runs (its end
        starts the next one)."""
        if not self._unstored or self._committing:
            return
        items, self._unstored = self._unstored, []
        group, self._group = self._group, None
        self._committing = len(items)
        self._stores += len(items)
        rows = [(key, state.identity, answer) for state, key, answer in items]
        commit = self.loop.run_in_executor(self._writer, self._put, rows)
        commit.add_done_callback(lambda _: self._committed(items, group))

    def _committed(self, items: list[tuple[_Backend, str, Completion]], group) -> None:
        """Publish committed answers: an answer leaves flight only once it is in the cache (see
        `_send`); then the workers holding their slots go on."""
        self._committing = 0
        for state, key, answer in items:
            _publish(state, key, answer)
        if group is not None and not group.done():  # cancelled when the engine closes
            group.set_result(None)
        self._flush()

    async def _own_batch(self, state, todo: dict[str, Request], stats, policy, stage, use_cache) -> None:
        keys = list(todo)
        try:
            answers = await self._batched(state, list(todo.values()), stats, policy, stage)
        except BaseException as exc:
            self._settle(state, dict.fromkeys(keys), exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if use_cache:
            rows = [
                (key, state.identity, a)
                for key, a in zip(keys, answers, strict=True)
                if isinstance(a, Completion)
            ]
            self._stores += len(rows)
            await self.loop.run_in_executor(self._writer, self._put, rows)
        self._settle(state, dict(zip(keys, answers, strict=True)))

    async def _backoff(self, seconds: float) -> None:
        """Sleep before a retry, cut short when the run stops (the retry then fails at once)."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._stopped.wait(), seconds)
        except asyncio.TimeoutError:
            pass

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
            if problem is not None and answer.finish_reason in TRUNCATED and policy.on_truncated == "reject":
                return answer  # `complete` rejects it as cut off; asking again would hit the same limit
            if problem is None:
                return answer
            stats.invalid_outputs += 1
            if tries.invalid < policy.schema_retries:
                tries.invalid += 1
                return RETRY_NOW
            answer = LLMError("invalid_output", problem, raw=answer.text)
        if answer.kind in FATAL:
            hint = {
                "auth": "check the key in the environment variable named by `api_key_env`, and the model name",
            }.get(answer.kind, "check the backend's model settings")
            raise self.stop(
                FatalLLMError(f"backend `{state.name}`: {answer.reason()}: {answer.message}", hint=hint)
            )
        if answer.retryable and tries.attempts < state.backend.config.max_retries:
            tries.attempts += 1
            stats.retries += 1
            return RETRY_LATER
        return self.failed(answer, stats, policy, stage)

    async def _call(self, state: _Backend, request: Request, stats: LLMStats) -> Completion | LLMError:
        """One call under the rate limits; never raises for a failed request (only FatalLLMError
        when the run has stopped, instead of sending)."""
        estimate = request.approx_prompt_tokens() + (request.sampling.max_tokens or 256) if state.tpm else 0
        if state.rpm is not None:
            stats.rate_limit_wait += await state.rpm.acquire(1)
        if state.tpm is not None:
            stats.rate_limit_wait += await state.tpm.acquire(estimate)
        if self._fatal is not None:  # checked after the last await: nothing new leaves after a stop
            raise self._fatal
        # A reached budget cap raises: nothing is sent. (No coroutine at all without a budget.)
        ticket = await self._admit(state, request) if self.budget is not None else None
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
        if ticket is not None:
            self.budget.settle(ticket, answer)
        if isinstance(answer, Completion):
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
                if self._fatal is not None:
                    raise self._fatal
                tickets = [await self._admit(state, requests[i]) if self.budget else None for i in pending]
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
                for i, answer, ticket in zip(pending, got, tickets, strict=True):
                    if isinstance(answer, Completion):
                        self._count_usage(state, answer, stats)
                    if ticket is not None:
                        self.budget.settle(ticket, answer)
                    outcome = self._judge(state, requests[i], answer, stats, policy, stage, tries[i])
                    if outcome is RETRY_LATER:
                        delays.append(_delay(answer, tries[i].attempts, config.backoff, config.max_backoff))
                    if outcome is RETRY_NOW or outcome is RETRY_LATER:
                        retry.append(i)
                    else:
                        answers[i] = outcome
                await self._backoff(max(delays))
                pending = retry
        return answers

    async def _admit(self, state: _Backend, request: Request):
        """The budget's reservation for one request (None without a budget); raises when a cap
        is reached, waits while requests in flight may still reach it."""
        if self.budget is None:
            return None
        while isinstance(ticket := self.budget.admit(state.name, request), str):  # WAIT
            await asyncio.sleep(0.005)
            if self._fatal is not None:
                raise self._fatal
        if isinstance(ticket, FatalLLMError):
            raise self.stop(ticket)
        return ticket

    def drain(self, timeout: float = 300.0) -> None:
        """Wait until no request is in flight (after a stop: their answers are cached)."""

        async def idle() -> None:
            # Checked on the loop: a call's answer is queued for the cache in the same step
            # that ends its flight, so no answer is left between the two when this sees zero.
            while self.uncommitted or any(state.in_flight for state in self._backends.values()):
                await asyncio.sleep(0.01)

        if self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(asyncio.wait_for(idle(), timeout), self.loop).result()
            except asyncio.TimeoutError:
                log.warning("requests still in flight after %.0f s; closing anyway", timeout)

    @property
    def uncommitted(self) -> int:
        """Answers received and not yet in the cache (lost if the process dies now)."""
        return len(self._unstored) + self._committing

    def _put(self, items: list[tuple[str, str, Completion]]) -> None:
        """On the writer thread."""
        if self.cache is None or not items:
            return
        try:
            self.cache.put_many(items)
        except Exception as exc:  # e.g. a full disk: the run goes on uncached, and says so
            log.warning("request cache write failed: %s", exc)

    def _count_usage(self, state: _Backend, answer: Completion, stats: LLMStats) -> None:
        stats.prompt_tokens += answer.prompt_tokens
        stats.completion_tokens += answer.completion_tokens
        if answer.cost is None:
            answer.cost = state.backend.cost(answer)
        stats.cost += answer.cost or 0.0

    def failed(self, error: LLMError, stats: LLMStats, policy: Policy, stage: str) -> LLMError:
        """Count a request that failed for good; raises FatalLLMError when the stage's policy
        says the run must stop (`on_error: fail`, or too many errors)."""
        stats.errors += 1
        stats.errors_by_kind[error.kind] += 1
        if policy.on_error == "fail":
            raise self.stop(
                FatalLLMError(
                    f"stage `{stage}`: request failed ({error.reason()}: {error.message})",
                    hint="set `on_error: reject` on the stage to send failing rows to the rejects file instead",
                )
            )
        if stats.requests >= policy.min_requests and stats.errors / stats.requests > policy.max_error_rate:
            raise self.stop(
                FatalLLMError(
                    f"stage `{stage}`: {stats.errors} of {stats.requests} requests failed "
                    f"({stats.errors / stats.requests:.0%} > max_error_rate {policy.max_error_rate:.0%}); "
                    f"most common: {error.reason()}: {error.message}",
                    hint="finished batches are checkpointed and answers cached: fix the cause and run again",
                )
            )
        return error

    @property
    def fatal(self) -> FatalLLMError | None:
        """The error that stopped the run, once one did: nothing new is sent after it."""
        return self._fatal

    def stop(self, error: FatalLLMError) -> FatalLLMError:
        """Stop the run (the first error wins); returns the error to raise."""
        if self._fatal is None:
            self._fatal = error
            self._stopped.set()
        return self._fatal


def _publish(state: _Backend, key: str, answer: Any, error: BaseException | None = None) -> None:
    """Resolve the future of an owned key and take the key out of flight."""
    future = state.pending.pop(key, None)
    if future is None or future.done():
        return
    if error is None:
        future.set_result(answer)
    else:
        future.set_exception(error)
        # Seen: when no batch waits for it any more (the run is stopping), asyncio would
        # otherwise log it as never retrieved.
        future.exception()


def _delay(error: Completion | LLMError, attempt: int, backoff: float, max_backoff: float) -> float:
    """Retry-After when the server gave one, else exponential backoff; jitter spreads a herd of
    retries so they do not hit the server in the same instant again."""
    retry_after = error.retry_after if isinstance(error, LLMError) else None
    if retry_after is not None:
        return retry_after * random.uniform(1.0, 1.2)
    return min(max_backoff, backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def cut_off(request: Request, answer: Completion) -> bool:
    """Whether the answer stopped at max_tokens before it was complete. An answer that satisfies
    its JSON schema is complete whatever the finish reason: grammar-constrained models (llama.cpp)
    often pad a finished JSON value with whitespace up to the limit."""
    if answer.finish_reason not in TRUNCATED:
        return False
    return request.json_schema is None or schema_problem(request, answer.text) is not None


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
