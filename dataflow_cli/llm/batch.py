"""`mode: batch`: a stage's requests go through the OpenAI-compatible Batch API.

Per executor batch, the requests the cache cannot answer become one job:

1. `POST /v1/files` (multipart, `purpose=batch`): a JSONL file, one line per distinct request,
   `{"custom_id": <cache key>, "method": "POST", "url": "/v1/chat/completions", "body": ...}`
   (the body the online `openai` backend would send);
2. `POST /v1/batches` `{input_file_id, endpoint, completion_window: "24h"}`; the job id is written
   to `<run dir>/batches/<job id>.json` before the first poll;
3. `GET /v1/batches/{id}` until the status is terminal (`completed`, `failed`, `expired`,
   `cancelled`), waiting up to `batch_poll_interval` seconds between polls;
4. `GET /v1/files/{id}/content` of `output_file_id` and `error_file_id`; each line is matched to
   its request by `custom_id`.

Answers land in the request cache under the same keys an online request uses, so online and
batch runs share them. A failed line (non-200 status, an `error` object, no line at all, an
answer that breaks the JSON schema) sends its row to the rejects with the reason, like a failed
online request. A run killed while a job is pending resumes it by id (a recorded job covering
the requests is polled again, never resubmitted). Tokens are priced at the backend's batch price.

The HTTP calls are blocking (urllib) in the executor thread that owns the batch: a job takes
minutes to hours, and the thread has nothing else to do meanwhile.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from dataflow_cli import redact
from dataflow_cli.llm.engine import LLMEngine, schema_problem
from dataflow_cli.llm.operator import LLMClient
from dataflow_cli.llm.types import Completion, LLMError, Request, chat_completion

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
FIRST_POLL = 0.25  # seconds; doubles up to the stage's batch_poll_interval
MAX_JOB_REQUESTS = 50_000  # OpenAI's limit per input file; more requests make several jobs


class _JobLost(Exception):
    """The provider no longer knows a recorded job (e.g. deleted): it is submitted anew."""


class BatchClient(LLMClient):
    """What the executor binds to an LLM operator of a `mode: batch` stage."""

    def __init__(
        self,
        engine: LLMEngine,
        backend: str,
        stats: Any,
        policy: Any,
        stage: str,
        backend_obj: Any,
        run_dir: Path,
        poll_interval: float = 30.0,
    ):
        super().__init__(engine, backend, stats, policy, stage)
        self.api = backend_obj  # an OpenAIBackend: its base URL, key and request bodies
        self.jobs_dir = run_dir / "batches"
        self.poll_interval = poll_interval
        self.base = backend_obj.config.api_base.rstrip("/")
        self._tickets: dict[str, Any] = {}  # budget reservations of requests in a submitted job

    # The LLMClient contract ---------------------------------------------------------------
    def complete(self, requests: list[Request]) -> list[Completion | LLMError]:
        engine = self.engine
        if engine.fatal is not None:
            raise engine.fatal
        identity = engine.identity(self.backend)
        keys = [r.cache_key(identity) for r in requests]
        cache = engine.cache if self.api.config.cache else None
        hits = cache.get_many(keys) if cache is not None else {}
        todo: dict[str, Request] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in hits:
                todo.setdefault(key, request)
        with self.stats.lock:
            self.stats.requests += len(requests)
            self.stats.cache_hits += sum(1 for key in keys if key in hits)
        answers = self._answer(todo) if todo else {}
        results: list[Any] = [hits.get(key) or answers[key] for key in keys]
        return LLMEngine._truncation(requests, results, self.policy, self.stats)

    # One job ------------------------------------------------------------------------------
    def _answer(self, todo: dict[str, Request]) -> dict[str, Completion | LLMError]:
        answers: dict[str, Completion | LLMError] = {}
        job = self._recorded_job(set(todo))
        if job is not None:
            log.info("stage %s: resuming batch job %s", self.stage, job["batch_id"])
            try:
                answers.update(self._collect(job, todo))
            except _JobLost:
                log.warning("stage %s: batch job %s is gone; submitting again", self.stage, job["batch_id"])
                job["status"] = "lost"
                self._record(job)
        remaining = {key: r for key, r in todo.items() if key not in answers}
        stop = None
        while remaining and stop is None:
            # Near a budget cap the job holds what the budget lets through; the rest goes in
            # the next job, once this one's real cost is known.
            admitted, stop = self._admit(remaining)
            if not admitted:
                if stop is not None:
                    break
                if self.engine.fatal is not None:
                    raise self.engine.fatal
                time.sleep(0.05)  # requests of other stages in flight hold the rest of the budget
                continue
            answers.update(self._collect(self._submit(admitted), todo))
            remaining = {key: r for key, r in remaining.items() if key not in admitted}
        if stop is not None:
            raise stop  # a cap was reached: what was admitted is answered and cached, the rest waits
        for key in todo:
            answers.setdefault(key, LLMError("server", "the batch job did not include this request"))
            answer = answers[key]
            if isinstance(answer, LLMError):
                answers[key] = self.engine.failed(answer, self.stats, self.policy, self.stage)
        return answers

    def _collect(self, job: dict[str, Any], todo: dict[str, Request]) -> dict[str, Completion | LLMError]:
        """Wait for a job, cache its good answers, count its spending; the answers `todo` asked for."""
        batch = self._wait(job)
        lines = self._results(batch)
        answers: dict[str, Completion | LLMError] = {}
        store: list[tuple[str, str, Completion]] = []
        identity = self.engine.identity(self.backend)
        budget = self.engine.budget
        for key in job["keys"]:
            request = todo.get(key)
            answer = lines.get(key) or _missing(batch)
            if isinstance(answer, Completion):
                self._count(answer)
            ticket = self._tickets.pop(key, None)
            if ticket is not None:
                budget.settle(ticket, answer)
            elif budget is not None:  # a resumed job: submitted (and paid for) by a killed run
                budget.charge(self.backend, answer, batch=True)
            if isinstance(answer, Completion):
                if request is not None and (problem := schema_problem(request, answer.text)) is not None:
                    with self.stats.lock:
                        self.stats.invalid_outputs += 1
                    answer = LLMError("invalid_output", problem, raw=answer.text)
                else:
                    store.append((key, identity, answer))
            if key in todo:
                answers[key] = answer
        if store and self.engine.cache is not None and self.api.config.cache:
            self.engine.cache.put_many(store)
        self._finish(job, batch)
        return answers

    def _admit(self, todo: dict[str, Request]) -> tuple[dict[str, Request], Any]:
        """The requests the budget lets through now (all without a budget), and the stop, if any."""
        budget = self.engine.budget
        if budget is None:
            return dict(list(todo.items())[:MAX_JOB_REQUESTS]), None
        admitted: dict[str, Request] = {}
        for key, request in todo.items():
            if len(admitted) >= MAX_JOB_REQUESTS:
                break
            ticket = budget.admit(self.backend, request, batch=True)
            if ticket == "wait":
                return admitted, None
            if not hasattr(ticket, "tokens"):  # a BudgetExhausted
                return admitted, self.engine.stop(ticket)
            admitted[key] = request
            self._tickets[key] = ticket
        return admitted, None

    def _count(self, answer: Completion) -> None:
        price = self.api.price
        answer.cost = (
            price.cost(answer.prompt_tokens, answer.completion_tokens, batch=True) if price else None
        )
        with self.stats.lock:
            self.stats.prompt_tokens += answer.prompt_tokens
            self.stats.completion_tokens += answer.completion_tokens
            self.stats.cost += answer.cost or 0.0

    def _submit(self, todo: dict[str, Request]) -> dict[str, Any]:
        lines = [
            {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": self.api._body(request)}
            for key, request in todo.items()
        ]
        payload = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
        uploaded = self._call("POST", "/files", multipart={"purpose": "batch"}, file=payload)
        created = self._call(
            "POST",
            "/batches",
            body={
                "input_file_id": uploaded["id"],
                "endpoint": ENDPOINT,
                "completion_window": COMPLETION_WINDOW,
                "metadata": {"dataflow_stage": self.stage},
            },
        )
        with self.stats.lock:
            self.stats.calls += len(todo)
        job = {
            "batch_id": created["id"],
            "input_file_id": uploaded["id"],
            "stage": self.stage,
            "status": created.get("status", "validating"),
            "submitted": time.time(),
            "keys": list(todo),
        }
        self._record(job)  # before the first poll: a crash from here on resumes this job
        log.info("stage %s: submitted batch job %s with %d requests", self.stage, job["batch_id"], len(todo))
        return job

    def _wait(self, job: dict[str, Any]) -> dict[str, Any]:
        delay = min(FIRST_POLL, self.poll_interval)
        while True:
            fatal = self.engine.fatal
            if fatal is not None and not hasattr(fatal, "cap"):  # a budget stop lets jobs finish
                raise fatal
            batch = self._call("GET", f"/batches/{job['batch_id']}", missing_ok=True)
            if batch is None:
                raise _JobLost(job["batch_id"])
            if batch.get("status") in TERMINAL:
                return batch
            time.sleep(delay)
            delay = min(delay * 2, self.poll_interval)

    def _results(self, batch: dict[str, Any]) -> dict[str, Completion | LLMError]:
        found: dict[str, Completion | LLMError] = {}
        for field in ("output_file_id", "error_file_id"):
            file_id = batch.get(field)
            if not file_id:
                continue
            text = self._call("GET", f"/files/{file_id}/content", raw=True)
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                    key = item["custom_id"]
                except (ValueError, KeyError, TypeError):
                    log.warning("batch %s: unreadable line %d of %s", batch.get("id"), number, field)
                    continue
                found[key] = _line_answer(item)
        return found

    def _finish(self, job: dict[str, Any], batch: dict[str, Any]) -> None:
        job["status"] = batch.get("status")
        job["request_counts"] = batch.get("request_counts")
        self._record(job)

    # The run directory ----------------------------------------------------------------------
    def _record(self, job: dict[str, Any]) -> None:
        from dataflow_cli.io.writers import atomic_write_text

        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.jobs_dir / f"{job['batch_id']}.json", json.dumps(job, indent=1) + "\n")

    def _recorded_job(self, keys: set[str]) -> dict[str, Any] | None:
        """A pending job of this stage (a killed run's) that asked for every one of `keys`."""
        if not self.jobs_dir.is_dir():
            return None
        for path in sorted(self.jobs_dir.glob("*.json")):
            try:
                job = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if (
                job.get("stage") == self.stage
                and job.get("status") not in TERMINAL
                and keys <= set(job["keys"])
            ):
                return job
        return None

    # HTTP ---------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        multipart: dict[str, str] | None = None,
        file: bytes | None = None,
        raw: bool = False,
        missing_ok: bool = False,
    ) -> Any:
        """One API call, retrying transient failures with backoff; an auth failure stops the
        run, any other failure fails the whole job's rows."""
        config = self.api.config
        tries = 0
        while True:
            try:
                headers = {k: v for k, v in self.api._headers().items() if k != "Content-Type"}
            except LLMError as exc:
                raise self._stop_run(exc) from None
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            elif multipart is not None:
                data, headers["Content-Type"] = _multipart(multipart, file or b"")
            request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=config.timeout) as response:
                    content = response.read()
                return content.decode("utf-8") if raw else json.loads(content)
            except urllib.error.HTTPError as exc:
                if exc.code == 404 and missing_ok:
                    return None
                detail = exc.read()[:300].decode("utf-8", "replace")
                error = LLMError.from_status(exc.code, redact.redact(f"{method} {path}: {detail}"))
                error.retry_after = _retry_after(exc.headers.get("Retry-After"))
            except (urllib.error.URLError, OSError, ValueError) as exc:
                error = LLMError("connection", f"{method} {path}: {exc}")
            if error.kind in ("auth", "unavailable"):
                raise self._stop_run(error)
            if not error.retryable or tries >= config.max_retries:
                raise self._stop_run(error, job=True)
            tries += 1
            time.sleep(error.retry_after or min(config.max_backoff, config.backoff * 2 ** (tries - 1)))

    def _stop_run(self, error: LLMError, job: bool = False) -> Exception:
        from dataflow_cli.llm.engine import FatalLLMError

        what = "the Batch API call failed" if job else "the Batch API refused the key"
        return self.engine.stop(
            FatalLLMError(
                f"stage `{self.stage}`: {what} ({error.reason()}: {error.message})",
                hint="finished batches are checkpointed and submitted jobs recorded: run again to resume",
            )
        )


def _retry_after(value: str | None) -> float | None:
    from dataflow_cli.llm.types import parse_retry_after

    return parse_retry_after(value)


def _multipart(fields: dict[str, str], file: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="requests.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n".encode()
        + file
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _line_answer(item: dict[str, Any]) -> Completion | LLMError:
    """One line of an output or error file as the request's answer."""
    error = item.get("error")
    if isinstance(error, dict) and error:
        return LLMError("batch_error", str(error.get("message") or error.get("code") or "error")[:300])
    response: dict[str, Any] = item["response"] if isinstance(item.get("response"), dict) else {}
    status = response.get("status_code")
    body: dict[str, Any] = response["body"] if isinstance(response.get("body"), dict) else {}
    if status != 200:
        message = (body.get("error") or {}).get("message") if isinstance(body.get("error"), dict) else None
        return LLMError.from_status(int(status or 500), str(message or f"HTTP {status}")[:300])
    return chat_completion(body)


def _missing(batch: dict[str, Any]) -> LLMError:
    status = batch.get("status")
    if status == "failed":
        errors = (batch.get("errors") or {}).get("data") or [{}]
        return LLMError(
            "batch_failed", f"the batch job failed: {errors[0].get('message') or 'no reason given'}"
        )
    if status in ("expired", "cancelled"):
        return LLMError(f"batch_{status}", f"the batch job was {status} before this request was answered")
    return LLMError("server", "the batch output has no line for this request")
