"""Values passed between LLM operators, the request engine and backends."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# The cache key's JSON: keys sorted, no ASCII escaping, no spaces. One encoder for every key
# (json.dumps with options builds a new one per call).
_KEY_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters sent with a request (None = backend default)."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        values = dict(self._parts()[0])  # a copy: callers may change it
        if "stop" in values:
            values["stop"] = list(values["stop"])
        return values

    def _parts(self) -> tuple[dict[str, Any], str]:
        """The set values and their key JSON, built once per instance (a stage has one; its
        requests share it). Not memoized by value: 0 and 0.0 are equal but differ in JSON."""
        parts = self.__dict__.get("_memo")
        if parts is None:
            values = {
                k: (list(v) if isinstance(v, tuple) else v)
                for k in self.__dataclass_fields__
                if (v := getattr(self, k)) is not None
            }
            parts = (values, _KEY_JSON.encode(values))
            object.__setattr__(self, "_memo", parts)  # not a field: equality and hash ignore it
        return parts


@lru_cache(maxsize=256)
def _key_tail(model_identity: str, sampling_json: str, sample_index: int) -> str:
    """What follows the messages in the key's JSON when there is no schema (see `cache_key`)."""
    return (
        f',"model":{_KEY_JSON.encode(model_identity)},"sample":{_KEY_JSON.encode(sample_index)}'
        f',"sampling":{sampling_json}}}'
    )


@dataclass(frozen=True)
class Request:
    """One chat completion to make.

    `messages` is an OpenAI-style list of {"role", "content"} dicts. `json_schema`, when set,
    asks for a JSON answer matching it (native structured output where the backend has it;
    the engine validates the answer either way). `sample_index` distinguishes the n samples
    drawn for one prompt, so each gets its own cache entry.
    """

    messages: tuple[dict[str, str], ...]
    sampling: Sampling = field(default_factory=Sampling)
    json_schema: dict[str, Any] | None = None
    sample_index: int = 0

    def cache_key(self, model_identity: str) -> str:
        """sha256 of the sorted JSON of model, messages, sampling, schema and sample number."""
        if self.json_schema is None:
            # The same JSON as below, with the parts that are equal for a whole stage built once.
            blob = (
                '{"json_schema":null,"messages":'
                + _KEY_JSON.encode(list(self.messages))
                + _key_tail(model_identity, self.sampling._parts()[1], self.sample_index)
            )
            return hashlib.sha256(blob.encode("utf-8")).hexdigest()
        payload = {
            "model": model_identity,
            "messages": list(self.messages),
            "sampling": self.sampling.as_dict(),
            "json_schema": self.json_schema,
            "sample": self.sample_index,
        }
        return hashlib.sha256(_KEY_JSON.encode(payload).encode("utf-8")).hexdigest()

    def approx_prompt_tokens(self) -> int:
        """A cheap estimate (4 characters per token) for TPM budgeting before the call."""
        return sum(len(m.get("content") or "") for m in self.messages) // 4 + 4 * len(self.messages)


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    cost: float | None = None  # USD, where the provider's price is known
    cached: bool = False


@dataclass(frozen=True)
class Answer:
    """One answer as an operator sees it: the model's text, or why there is none.

    `failure` is a short, low-cardinality reason ("llm timeout", "null `text` in prompt") when
    the answer is unusable, else None. `raw` is the model's text whenever the model answered
    (also for an answer the engine rejected, e.g. one that does not match the JSON schema), so a
    rejected row keeps it.
    """

    text: str | None = None
    failure: str | None = None
    raw: str | None = None
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @classmethod
    def of(cls, result: Completion | LLMError) -> Answer:
        """The engine's result for one request, as an Answer."""
        if isinstance(result, LLMError):
            return cls(failure=result.reason(), raw=result.raw)
        return cls(result.text, raw=result.text, finish_reason=result.finish_reason)


# Error kinds. Transient ones are retried with backoff; the rest fail fast.
RETRYABLE = frozenset({"rate_limit", "server", "timeout", "connection"})
# Stop the whole run: every other request would fail the same way.
# unavailable: the model could not be loaded.
FATAL = frozenset({"auth", "unavailable"})


class LLMError(Exception):
    """A failed request, classified so the engine knows whether to retry.

    kind: rate_limit | server | timeout | connection | auth | bad_request | not_found |
          invalid_output | unavailable (model cannot load) | backend
    """

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        raw: str | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.raw = raw  # the model's text, for invalid_output

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def reason(self) -> str:
        """Short, low-cardinality text for reject reasons and stats."""
        status = f" (HTTP {self.status})" if self.status else ""
        return f"llm {self.kind}{status}"

    @classmethod
    def from_status(cls, status: int, message: str, retry_after: float | None = None) -> LLMError:
        if status == 429:
            kind = "rate_limit"
        elif status in (401, 403):
            kind = "auth"
        elif status == 404:
            kind = "not_found"
        elif status == 408:
            kind = "timeout"
        elif status >= 500:
            kind = "server"
        else:
            kind = "bad_request"
        return cls(kind, message, status=status, retry_after=retry_after)


def chat_completion(payload: Any) -> Completion | LLMError:
    """The answer in an OpenAI chat-completions response (parsed JSON), or the retryable
    `server` error a response without one is (a truncated or garbled body is a server hiccup)."""
    try:
        choice = payload["choices"][0]
        text = choice["message"]["content"]
        usage = payload.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        keys = sorted(map(str, payload))[:8] if isinstance(payload, dict) else type(payload).__name__
        return LLMError("server", f"malformed chat completion (top level: {keys})")
    if text is None:
        return LLMError("server", "response has no message content")
    return Completion(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish_reason=choice.get("finish_reason"),
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates are rare for APIs)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
