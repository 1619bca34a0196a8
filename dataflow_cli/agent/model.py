"""The model the agent asks, and how it asks: strict JSON answers, validated and retried.

Every question is a JSON schema. The answer is parsed and validated with `jsonschema` here,
whatever the backend did (the local backend already constrains answers with a grammar built
from the schema; API models may not). An invalid answer is sent back with the validation
error and asked again, at most `retries` times; then `ModelGaveUp` says what was asked and
what came back. Every attempt goes into the trace.

Two modes, because a 135M-parameter model cannot write a plan:

- `small` (the embedded SmolLM2-135M, and the fake backend unless told otherwise): only
  constrained choices: pick one of N (an `enum`), yes/no, a value of a given schema.
- `full` (API models, `--model`): whole plans and JSON-patch repairs.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.agent.trace import Timer, Trace
from dataflow_cli.errors import DataflowError, SpecError

MODES = ("small", "full")
LOCAL = {"provider": "local", "max_concurrency": 1}


class ModelGaveUp(DataflowError):
    """The model gave no valid answer within the retry bound."""


@dataclass
class BackendChoice:
    """Which backend the agent asks (`agent`) and which ones the spec it writes uses."""

    agent: dict[str, Any]
    pipeline: dict[str, dict[str, Any]]
    mode: str
    label: str
    notes: list[str] = field(default_factory=list)


def resolve_backend(backend: str | None, model: str | None) -> BackendChoice:
    """`--backend NAME|FILE` / `--model M` -> the backends to use (default: the embedded model).

    NAME is `local` (embedded SmolLM2, offline) or `fake` (deterministic, for tests and demos).
    FILE is a YAML mapping of backend configs: `agent` is asked by the agent (else `default`),
    every other entry goes into the spec's `backends:`; an optional `mode: small|full`.
    `--model M` is a litellm model id (plain OpenAI-compatible client when litellm is absent).
    """
    if backend and model:
        raise SpecError("give `--backend` or `--model`, not both")
    if model:
        provider = "litellm" if importlib.util.find_spec("litellm") is not None else "openai"
        config: dict[str, Any] = {"provider": provider, "model": model}
        if provider == "openai":
            config["api_key_env"] = "OPENAI_API_KEY"
        return BackendChoice(config, {"default": config}, "full", f"{provider}:{model}")
    name = backend or "local"
    if name == "local":
        return BackendChoice(dict(LOCAL), {"default": dict(LOCAL)}, "small", "local (SmolLM2-135M, offline)")
    if name == "fake":
        fake = {"provider": "fake"}
        return BackendChoice(fake, {"default": fake}, "small", "fake (deterministic)")
    path = Path(name)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        return _from_file(path)
    raise SpecError(
        f"unknown backend `{name}`",
        hint="use `--backend local` (embedded model), `--backend fake`, `--backend FILE.yaml` "
        "(a mapping of backend configs) or `--model MODEL_ID`",
    )


def _from_file(path: Path) -> BackendChoice:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"backend file `{path}` not found") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"backend file `{path}` is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"backend file `{path}` must be a mapping of backend name -> config")
    mode = data.pop("mode", None)
    if mode is not None and mode not in MODES:
        raise SpecError(f"`mode` in `{path}` must be one of {', '.join(MODES)}, got `{mode}`")
    for key, value in data.items():
        if not isinstance(value, dict) or not isinstance(value.get("provider"), str):
            raise SpecError(f"backend `{key}` in `{path}` needs a mapping with a `provider`")
    agent = data.get("agent") or data.get("default")
    if agent is None:
        raise SpecError(f"backend file `{path}` defines neither `agent` nor `default`")
    pipeline = {k: v for k, v in data.items() if k != "agent"} or {"default": agent}
    pipeline.setdefault("default", agent)
    if mode is None:
        mode = "small" if agent["provider"] in ("local", "fake") else "full"
    return BackendChoice(agent, pipeline, mode, f"{path} ({agent['provider']})")


class ModelClient:
    """Asks one backend questions with JSON-schema answers (see the module docstring)."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        backend: Any = None,
        mode: str = "small",
        trace: Trace | None = None,
        retries: int = 2,
    ):
        from dataflow_cli.llm.engine import LLMEngine

        if backend is None:
            from dataflow_cli.llm.registry import backend_class

            config = dict(config or LOCAL)
            cls = backend_class(config["provider"])
            try:
                settings = cls.Config.model_validate(config)
            except ValueError as exc:  # pydantic's ValidationError
                raise SpecError(f"invalid backend settings for the agent: {exc}") from None
            backend = cls(settings)
        self.backend = backend
        self.mode = mode
        self.trace = trace or Trace(None)
        self.retries = retries
        self.calls = 0
        self.tokens = 0
        self.seconds = 0.0
        self._engine = LLMEngine({"agent": backend}, cache=None)

    def close(self) -> None:
        self._engine.close()

    # Questions -----------------------------------------------------------------------
    def ask(
        self,
        purpose: str,
        prompt: str,
        schema: dict[str, Any],
        *,
        system: str | None = None,
        max_tokens: int = 300,
    ) -> Any:
        """A value matching `schema`, or `ModelGaveUp` after `retries` invalid answers."""
        from jsonschema import Draft202012Validator

        from dataflow_cli.llm.engine import LLMStats, Policy, strip_code_fence
        from dataflow_cli.llm.types import Completion, Request, Sampling

        validator = Draft202012Validator(schema)
        messages: list[dict[str, str]] = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        problem: str | None = "no answer"
        for attempt in range(self.retries + 1):
            request = Request(
                tuple(messages),
                Sampling(temperature=0.0, max_tokens=max_tokens, seed=attempt),
                json_schema=schema,
            )
            with Timer() as timer:
                (result,) = self._engine.complete(
                    "agent", [request], LLMStats(), Policy(schema_retries=0, max_error_rate=1.0), "agent"
                )
            self.calls += 1
            self.seconds += timer.seconds
            text = result.text if isinstance(result, Completion) else result.raw
            if isinstance(result, Completion):
                self.tokens += result.prompt_tokens + result.completion_tokens
            value: Any = None
            problem = None
            if text is None:
                reason = result.reason() if not isinstance(result, Completion) else "no text"
                problem = f"request failed: {reason}: {getattr(result, 'message', '')}"
            else:
                try:
                    value = json.loads(strip_code_fence(text))
                except ValueError as exc:
                    problem = f"answer is not JSON ({exc})"
                else:
                    error = next(iter(validator.iter_errors(value)), None)
                    if error is not None:
                        where = "/".join(str(p) for p in error.absolute_path) or "answer"
                        problem = f"{where}: {error.message}"[:400]
            self.trace.record(
                "model",
                purpose=purpose,
                attempt=attempt,
                messages=messages,
                schema=schema,
                answer=text,
                valid=problem is None,
                problem=problem,
                seconds=timer.seconds,
            )
            if problem is None:
                return value
            if text is None:
                continue  # nothing to show the model: ask the same again
            messages = [
                *messages,
                {"role": "assistant", "content": text},
                {
                    "role": "user",
                    "content": f"That answer is invalid ({problem}). Answer again with valid JSON.",
                },
            ]
        raise ModelGaveUp(
            f"the model gave no valid answer for {purpose} after {self.retries + 1} attempts (last: {problem})",
            hint="try a more capable model (`--model ...`) or simplify the request",
        )

    def choose(
        self, purpose: str, question: str, options: list[str], notes: dict[str, str] | None = None
    ) -> str:
        """Pick one of `options` (listed in order; the first is the retrieval's best guess)."""
        if len(options) == 1:
            return options[0]
        listing = "\n".join(f"- {o}" + (f": {notes[o]}" if notes and notes.get(o) else "") for o in options)
        schema = {
            "type": "object",
            "properties": {"choice": {"type": "string", "enum": list(options)}},
            "required": ["choice"],
            "additionalProperties": False,
        }
        answer = self.ask(
            purpose,
            f'{question}\n\nOptions:\n{listing}\n\nAnswer as JSON: {{"choice": ...}}',
            schema,
            max_tokens=48,
        )
        return answer["choice"]

    def pick(
        self, purpose: str, question: str, options: list[str], tries: int = 3, always_ask: bool = False
    ) -> str:
        """One of `options` (best first, as the agent ranked them). A `small` model is asked
        yes/no about each of the first `tries` in turn and the first yes wins, else the agent's
        best: a 135M model picks from a list at random but its yes/no tracks the question
        somewhat. A `full` model picks from the whole list. `always_ask`: ask about a single
        option too (the repair loop shows the model every error, even one with one fix)."""
        if len(options) == 1 and not always_ask:
            return options[0]
        if self.mode != "small":
            return self.choose(purpose, question, options)
        for option in options[:tries]:
            if self.confirm(purpose, f"{question}\nProposed: {option}\nIs this right?"):
                return option
        return options[0]

    def confirm(self, purpose: str, question: str) -> bool:
        schema = {
            "type": "object",
            "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
            "required": ["answer"],
            "additionalProperties": False,
        }
        answer = self.ask(
            purpose,
            f'{question}\nAnswer as JSON: {{"answer": "yes"}} or {{"answer": "no"}}',
            schema,
            max_tokens=16,
        )
        return answer["answer"] == "yes"
