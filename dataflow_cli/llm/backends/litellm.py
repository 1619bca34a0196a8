"""The `litellm` backend: one client for 100+ providers (OpenAI, Anthropic, Bedrock, Vertex, ...).

`import litellm` costs about 3 s, so it happens on first use, in a worker thread, never at
module level. The engine owns retries, so litellm's own are switched off (`num_retries=0`,
`max_retries=0`); this module only makes the call and classifies failures as `LLMError`s.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
import time
import warnings
from typing import Any, ClassVar, Literal

from pydantic import Field

from dataflow_cli import redact
from dataflow_cli.errors import DataflowError
from dataflow_cli.llm.backends.base import Backend, BackendConfig
from dataflow_cli.llm.types import Completion, LLMError, Request, parse_retry_after

log = logging.getLogger(__name__)

_LITELLM: Any = None
_IMPORT_LOCK = threading.Lock()
_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "httpcore")
_MAX_MESSAGE = 500
_MISSING_KEY_MARKERS = ("Missing credentials", "api_key client option must be set")


def _import_litellm() -> Any:
    """Import and quiet litellm once per process (thread-safe)."""
    global _LITELLM
    with _IMPORT_LOCK:
        if _LITELLM is not None:
            return _LITELLM
        # Without this litellm downloads its model price map from GitHub at import time.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_DISABLE_BUG_REPORT_LINK", "True")
        started = time.perf_counter()
        import litellm

        litellm.suppress_debug_info = True
        litellm.set_verbose = False
        if hasattr(litellm, "telemetry"):
            litellm.telemetry = False
        # Callbacks only fire if someone registered them (e.g. via env); a data pipeline wants none.
        for name in ("success_callback", "failure_callback", "callbacks", "service_callback"):
            if isinstance(getattr(litellm, name, None), list):
                setattr(litellm, name, [])
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        # litellm's response types trip a harmless pydantic warning on first use.
        warnings.filterwarnings(
            "ignore", message=r".*is using the `ReadOnly` qualifier", category=UserWarning
        )
        log.debug(
            "imported litellm %s in %.2fs",
            getattr(litellm, "__version__", "?"),
            time.perf_counter() - started,
        )
        _LITELLM = litellm
        return litellm


class LiteLLMConfig(BackendConfig):
    api_base: str | None = Field(
        None, description="Endpoint URL, e.g. http://127.0.0.1:8000/v1 for an OpenAI-compatible server."
    )
    api_key_env: str | None = Field(
        None,
        description="NAME of the environment variable holding the API key (read at call time). "
        "Unset: litellm's provider defaults (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...).",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments passed to litellm.acompletion as they are."
    )
    structured_output: Literal["auto", "json_schema", "json_object", "none"] = Field(
        "auto",
        description="How a JSON schema is sent: json_schema (native structured output), json_object "
        "(JSON mode), none, or auto (json_schema where litellm knows the model supports it, else json_object).",
    )
    drop_params: bool = Field(
        True, description="Let litellm drop sampling parameters the provider does not accept (e.g. seed)."
    )


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts the schema: every object closed, every property required."""
    if isinstance(schema, list):
        return all(strict_compatible(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or ()) != set(props):
            return False
    return all(
        strict_compatible(v) for k, v in schema.items() if k not in ("enum", "const", "default", "examples")
    )


def _redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    text = redact.redact(text)  # e.g. a provider default key litellm found on its own
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return text


def _header(exc: BaseException, name: str) -> str | None:
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if headers is None:
            continue
        try:
            value = headers.get(name)
        except Exception:  # noqa: BLE001 - exotic header containers
            value = None
        if value:
            return str(value)
    return None


def _retry_after(exc: BaseException) -> float | None:
    seconds = parse_retry_after(_header(exc, "retry-after"))
    if seconds is None:
        millis = parse_retry_after(_header(exc, "retry-after-ms"))
        seconds = millis / 1000 if millis is not None else None
    return seconds


def _chain(exc: BaseException):
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__ or getattr(current, "original_exception", None)


def classify(litellm: Any, exc: BaseException, secret: str | None = None) -> LLMError:
    """Map a litellm (or openai / httpx) exception to an LLMError."""
    message = _redact(str(exc) or type(exc).__name__, secret)
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None

    def err(kind: str, **kw: Any) -> LLMError:
        return LLMError(kind, message, status=kw.pop("status", status), **kw)

    if any(marker in message for marker in _MISSING_KEY_MARKERS):
        return err("auth", status=None)  # litellm reports a missing provider key as a server error
    if isinstance(exc, litellm.Timeout) or isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return err("timeout", status=None)
    if isinstance(exc, litellm.RateLimitError):
        return err("rate_limit", status=429, retry_after=_retry_after(exc))
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return err("auth")
    if isinstance(exc, litellm.BadRequestError | litellm.UnprocessableEntityError):
        return err("bad_request")  # includes ContextWindowExceeded, ContentPolicyViolation, UnsupportedParams
    if isinstance(exc, litellm.NotFoundError):
        return err("not_found")
    if isinstance(exc, litellm.APIConnectionError):
        return err("connection", status=None)
    # litellm reports a refused connection or a dropped socket as InternalServerError: look for the
    # transport error underneath so it is counted as what it is.
    import openai

    for inner in list(_chain(exc))[1:]:
        if isinstance(inner, openai.APITimeoutError):
            return err("timeout", status=None)
        if isinstance(inner, openai.APIConnectionError):
            return err("connection", status=None)
    if isinstance(
        exc, litellm.InternalServerError | litellm.ServiceUnavailableError | litellm.BadGatewayError
    ):
        return err("server", status=status or 500)
    if status is not None:
        return LLMError.from_status(status, message, retry_after=_retry_after(exc))
    if isinstance(exc, openai.APIConnectionError | ConnectionError | OSError):
        return err("connection")
    return err("backend")


class LiteLLMBackend(Backend):
    provider: ClassVar[str] = "litellm"
    Config: ClassVar[type[BackendConfig]] = LiteLLMConfig

    def __init__(self, config: BackendConfig):
        super().__init__(config)
        self.config: LiteLLMConfig  # coerced by Backend.__init__
        if _LITELLM is None and importlib.util.find_spec("litellm") is None:
            raise DataflowError(
                "backend `litellm` needs the litellm package", hint="pip install 'dataflow-cli[litellm]'"
            )
        self._supports_schema: bool | None = None
        self._priced = True  # False once litellm said it has no price for this model

    async def _litellm(self) -> Any:
        if _LITELLM is not None:
            return _LITELLM
        return await asyncio.to_thread(_import_litellm)

    def _api_key(self) -> str | None:
        name = self.config.api_key_env
        if name:
            value = os.environ.get(name)
            if not value:
                raise LLMError("auth", f"environment variable {name} (api_key_env) is not set or empty")
            redact.add(value)  # read at call time: the value may have changed since the run started
            return value
        model = self.config.model
        if self.config.api_base and model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
            # Local OpenAI-compatible servers need no key, but the openai client refuses to run without one.
            return "no-key"
        return None

    def _response_format(self, litellm: Any, schema: dict[str, Any]) -> dict[str, Any] | None:
        mode = self.config.structured_output
        if mode == "none":
            return None
        if mode == "auto":
            if self._supports_schema is None:
                try:
                    self._supports_schema = bool(litellm.supports_response_schema(model=self.config.model))
                except Exception:  # noqa: BLE001 - unknown model: no native schema support
                    self._supports_schema = False
            mode = "json_schema" if self._supports_schema else "json_object"
        if mode == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": strict_compatible(schema)},
        }

    def build_kwargs(self, litellm: Any, request: Request, api_key: str | None) -> dict[str, Any]:
        cfg = self.config
        kwargs: dict[str, Any] = dict(cfg.extra)
        kwargs.update(
            model=cfg.model,
            messages=[dict(m) for m in request.messages],
            timeout=cfg.timeout,
            num_retries=0,
            max_retries=0,
        )
        if cfg.drop_params:
            kwargs.setdefault("drop_params", True)
        if cfg.api_base:
            kwargs["api_base"] = cfg.api_base
        if api_key:
            kwargs["api_key"] = api_key
        kwargs.update(request.sampling.as_dict())
        if request.json_schema is not None:
            response_format = self._response_format(litellm, request.json_schema)
            if response_format is not None:
                kwargs["response_format"] = response_format
        return kwargs

    def _cost(self, litellm: Any, response: Any) -> float | None:
        if not self._priced or self.config.price is not None:  # a price in the spec wins
            return None
        try:
            value = litellm.completion_cost(completion_response=response)
        except Exception:  # noqa: BLE001 - litellm has no price for this model
            self._priced = False
            return None
        return float(value) if value is not None else None

    async def complete(self, request: Request) -> Completion:
        api_key: str | None = None
        try:
            litellm = await self._litellm()
            api_key = self._api_key()
            kwargs = self.build_kwargs(litellm, request, api_key)
            response = await litellm.acompletion(**kwargs)
            choice = response.choices[0]
            usage = getattr(response, "usage", None)
            return Completion(
                text=getattr(choice.message, "content", None) or "",
                prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                finish_reason=getattr(choice, "finish_reason", None),
                cost=self._cost(litellm, response),
            )
        except LLMError as exc:
            exc.message = _redact(exc.message, api_key)
            exc.args = (exc.message,)
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure leaves as an LLMError
            if _LITELLM is None:
                raise LLMError("backend", _redact(f"cannot load litellm: {exc}", api_key)) from None
            raise classify(_LITELLM, exc, api_key) from None

    def cost(self, completion: Completion) -> float | None:
        return completion.cost if completion.cost is not None else super().cost(completion)
