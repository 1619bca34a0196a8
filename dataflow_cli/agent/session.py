"""The agent's steps in order: intent -> inspection -> retrieval -> plan -> validate/repair ->
dry run (surprises back into repair) -> synthesis for what nothing fits -> report.

Each step is a function of its own module with plain inputs and outputs, recorded in the trace
beside the spec (`<spec>.trace.jsonl`). `run_agent` only wires them together and decides the
outcome:

| outcome | exit | meaning |
|---|---|---|
| `ok` | 0 | the spec validates and its dry run kept rows |
| `incomplete` | 1 | a spec was written but it does not validate after the repair bound, its dry run failed or kept nothing, or a sub-goal is not covered (the report names it) |
| `refused` | 2 | the product cannot do this (images, audio, ...) or the request is too ambiguous; the answer says what it can do instead |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.agent.trace import Timer, Trace
from dataflow_cli.errors import DataflowError

EXIT = {"ok": 0, "incomplete": 1, "refused": 2}


class AgentRefusal(DataflowError):
    """The request cannot be served, or is too ambiguous: exit 2, with what can be done instead."""

    exit_code = 2


@dataclass
class AgentOptions:
    request: str
    sample: Path | None = None
    output: Path = Path("pipeline.yaml")
    backend: str | None = None
    model: str | None = None
    limit: int = 20
    yes: bool = False
    max_rounds: int = 4
    # Install synthesized plugins into this folder (put on sys.path) instead of the environment:
    # for tests, which must not change the shared environment.
    plugin_target: Path | None = None
    # How to ask the user (one clarifying question, a sample path, consent to install); None = never.
    ask_user: Callable[[str], str] | None = None


@dataclass
class AgentResult:
    status: str
    request: str
    spec: str | None = None
    trace: str | None = None
    subgoals: list[dict[str, str]] = field(default_factory=list)
    sample: dict[str, Any] | None = None
    retrieval: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    repair: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dry_run: dict[str, Any] | None = None
    synthesis: list[dict[str, Any]] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    nearest: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    message: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "exit_code": self.exit_code}


# Words that say nothing about what to do with the data: a request made only of these (and
# stop words) is too ambiguous to build a pipeline from ("do stuff with my file").
_VAGUE = frozenset(
    "a an the and or of to in on for with my our this that it its me us i you please can could "
    "would data dataset datasets file files stuff thing things something anything make do process "
    "handle work help better good nice improve fix use run some".split()
)


def too_vague(request: str) -> bool:
    import re

    return all(word in _VAGUE for word in re.findall(r"[a-z]+", request.lower()))


def trace_path(spec: Path) -> Path:
    return spec.with_name(spec.name + ".trace.jsonl")


def run_agent(options: AgentOptions, model: Any = None) -> AgentResult:
    """Run every step; `model` (a ModelClient) replaces the one `--backend/--model` would make."""
    from dataflow_cli.agent.model import ModelClient, resolve_backend

    spec_path = options.output
    choice = resolve_backend(options.backend, options.model)
    trace = Trace(trace_path(spec_path))
    result = AgentResult("incomplete", options.request, spec=str(spec_path), trace=str(trace.path))
    own_model = model is None
    try:
        if model is None:
            model = ModelClient(choice.agent, mode=choice.mode, trace=trace)
        else:
            model.trace = trace
        trace.record(
            "start", request=options.request, backend=choice.label, mode=model.mode, limit=options.limit
        )
        _steps(options, choice, model, trace, result)
    except AgentRefusal as exc:
        result.status, result.message = "refused", exc.reason + (f" ({exc.hint})" if exc.hint else "")
    except DataflowError as exc:
        result.status, result.message = (
            "incomplete",
            exc.reason + (f"\n  hint: {exc.hint}" if exc.hint else ""),
        )
    finally:
        if model is not None:
            result.model = {
                "backend": choice.label,
                "mode": model.mode,
                "calls": model.calls,
                "tokens": model.tokens,
                "seconds": round(model.seconds, 3),
            }
            if own_model:
                model.close()
        trace.record("result", **{k: v for k, v in result.as_dict().items() if k != "trace"})
        trace.close()
    return result


def _steps(options: AgentOptions, choice: Any, model: Any, trace: Trace, result: AgentResult) -> None:
    from dataflow_cli.agent import dryrun, plan, repair
    from dataflow_cli.agent.inspect import design_columns, inspect_sample
    from dataflow_cli.agent.intent import split_intent
    from dataflow_cli.agent.retrieve import retrieve_operators, retrieve_pipelines

    request = options.request
    spec_path = options.output
    # 1. Intent ---------------------------------------------------------------------------
    with Timer() as t:
        goals = split_intent(request)
    trace.record("intent", input=request, output=[g.__dict__ for g in goals], seconds=t.seconds)
    result.timings["intent"] = t.seconds
    unsupported = [g for g in goals if g.kind == "unsupported"]
    if unsupported:
        supported = " ".join(g.text for g in goals if g.kind not in ("unsupported", "load"))
        nearest = [
            f"`{h.name}` (ready pipeline)" for h in (retrieve_pipelines(supported, k=2) if supported else [])
        ]
        nearest += [
            "`prompted_evaluator` / `prompted_generator`: label, score or describe text with an LLM "
            "(e.g. captions or transcripts you already have)",
            "`text_clean`: clean text you already have",
        ]
        result.nearest = nearest
        raise AgentRefusal(
            "dataflow cannot do this: "
            + "; ".join(f"`{g.text}`" for g in unsupported)
            + " (it processes text, code, SQL and documents, not images, audio or video)",
            hint="nearest things it can do: " + "; ".join(nearest),
        )
    workable = [g for g in goals if g.kind != "load"]
    if too_vague(request):
        workable = []
    if not workable:
        if options.ask_user is not None and not options.yes:
            answer = options.ask_user(
                "What should the pipeline do with your data? (e.g. 'drop short answers and duplicates, then score them with an LLM')"
            )
            request = f"{request}. {answer}".strip()
            goals = split_intent(request)
            trace.record("clarify", answer=answer, output=[g.__dict__ for g in goals])
            workable = [g for g in goals if g.kind not in ("load", "unsupported")]
            if too_vague(answer):
                workable = []
        if not workable:
            result.nearest = [h.name for h in retrieve_pipelines(request, k=3)]
            raise AgentRefusal(
                "the request is too ambiguous to build a pipeline from: no step (clean, filter, dedup, generate, "
                "judge, verify, refine, format) could be read from it",
                hint="say what to do with the data, e.g. 'remove duplicates and drop answers under 20 words'; "
                "or start from a ready pipeline (`dataflow init --list-templates`)",
            )
    result.subgoals = [g.__dict__ for g in goals]
    # 2. Data inspection --------------------------------------------------------------------
    with Timer() as t:
        sample = options.sample
        if sample is None and options.ask_user is not None and not options.yes:
            answer = options.ask_user(
                "Path of a sample of your data (empty: let the agent design the input columns)"
            )
            sample = Path(answer) if answer.strip() else None
        if sample is not None:
            profile = inspect_sample(sample)
        else:
            placeholder = spec_path.with_name(spec_path.stem + ".sample.jsonl")
            profile = design_columns(request, [g.kind for g in workable], placeholder)
            result.notes += profile.notes
    result.sample = profile.as_dict()
    trace.record("inspect", input=str(sample) if sample else None, output=result.sample, seconds=t.seconds)
    result.timings["inspect"] = t.seconds
    # 3. Retrieval ----------------------------------------------------------------------------
    with Timer() as t:
        from dataflow_cli.agent import retrieve

        # `ready_pipeline` decides whether a ready pipeline fits at all (none does, e.g., for LLM
        # work no pipeline contains) and which: its measured top-1 choice is the only one offered,
        # since a small model saying "yes" to a runner-up is how a wrong pipeline gets reused.
        ready = retrieve.ready_pipeline(request)
        pipelines = [ready] if ready is not None else []
        per_goal = {
            g.text: [
                h.__dict__ for h in retrieve_operators(g.text, k=5, kinds=plan.KINDS_FOR.get(g.kind) or None)
            ]
            for g in workable
        }
    result.retrieval = {
        "pipelines": [{"name": h.name, "score": round(h.score, 3)} for h in pipelines],
        "operators": {
            k: [{"name": h["name"], "score": round(h["score"], 3)} for h in v] for k, v in per_goal.items()
        },
    }
    trace.record("retrieve", input=request, output=result.retrieval, seconds=t.seconds)
    result.timings["retrieve"] = t.seconds
    # 4. Plan -------------------------------------------------------------------------------
    decisions: list[dict[str, Any]] = []
    with Timer() as t:
        draft = plan.try_pipelines(
            request, pipelines, profile, model, spec_path, choice.pipeline, decisions, goals=workable
        )
        uncovered: list[Any] = []
        if draft is not None:
            uncovered = plan.extend_for_goals(draft, workable, request, profile, model, decisions)
        else:
            maker = plan.full_plan if model.mode == "full" else plan.compose
            made = maker(request, workable, profile, model, spec_path, choice.pipeline, decisions)
            draft, uncovered = made.draft, made.uncovered
    trace.record(
        "plan",
        output={
            "source": draft.source,
            "stages": draft.stages,
            "why": draft.why,
            "uncovered": [g.text for g in uncovered],
            "decisions": decisions,
        },
        seconds=t.seconds,
    )
    result.timings["plan"] = t.seconds
    # 7. Synthesis for what nothing fits (before validation: its stage must be validated too) ----
    if uncovered and model.mode == "full":
        uncovered = _synthesize(uncovered, draft, profile, model, options, spec_path, trace, result)
    result.uncovered = [g.text for g in uncovered]
    planned = set(draft.serves.values())  # sub-goals a stage serves: repairs must not lose them
    if not draft.stages:
        result.nearest = [h.name for h in pipelines]
        raise AgentRefusal(
            "no installed operator fits this request"
            + (" and no plugin could be written for it" if model.mode == "full" else ""),
            hint=("nearest ready pipelines: " + ", ".join(f"`{h.name}`" for h in pipelines))
            if pipelines
            else None,
        )
    draft.header = [
        f"Written by `dataflow agent` for: {request}",
        f"Trace of every decision: {trace_path(spec_path).name}",
    ]
    # 5. Validate and repair ------------------------------------------------------------------
    log = repair.RepairLog()
    with Timer() as t:
        try:
            draft = repair.repair(
                draft,
                spec_path,
                model,
                max_rounds=options.max_rounds,
                pipeline_backend=choice.pipeline.get("default"),
                log=log,
            )
        except repair.RepairFailed as exc:
            result.repair = log.rounds
            result.errors = [i.render() for i in exc.issues]
            result.stages = _stages(draft)
            raise
        finally:
            result.timings["repair"] = t.seconds
    result.repair = log.rounds
    # 6. Dry run; surprises go back into the repair loop (bounded) ---------------------------
    with Timer() as t:
        dry = dryrun.dry_run(spec_path, options.limit)
        for _ in range(2):
            if not dry.surprises:
                break
            trace.record("dry_run", output=dry.as_dict())
            try:
                draft = repair.repair(
                    draft,
                    spec_path,
                    model,
                    max_rounds=2,  # the surprise's fix, then what it breaks (a removed stage's columns)
                    extra_issues=dry.surprises,
                    pipeline_backend=choice.pipeline.get("default"),
                    log=log,
                )
            except repair.RepairFailed:
                break
            dry = dryrun.dry_run(spec_path, options.limit)
    result.repair = log.rounds
    result.dry_run = dry.as_dict()
    trace.record("dry_run", output=result.dry_run, seconds=t.seconds)
    result.timings["dry_run"] = t.seconds
    draft.write(spec_path)
    # 8. Report -------------------------------------------------------------------------------
    result.stages = _stages(draft)
    result.source = draft.source
    result.cost = _cost(dry)
    result.commands = [
        f"dataflow validate {spec_path}",
        f"dataflow run {spec_path} --limit 100",
        f"dataflow run {spec_path}",
    ]
    if dry.error:
        result.message = f"the dry run failed: {dry.error}"
    elif dry.rows_written == 0:
        result.message = f"the dry run kept none of its {dry.rows_read} rows (see the stages below)"
    elif dry.surprises:
        result.notes += [f"dry run: {i.message}" for i in dry.surprises]
    lost = sorted(planned - set(draft.serves.values()))
    if lost:
        result.uncovered += [f"{text} (its stage was removed to repair the spec)" for text in lost]
    if result.uncovered:
        result.message = "not covered by any stage: " + "; ".join(f"`{u}`" for u in result.uncovered)
    result.status = "ok" if not result.message else "incomplete"


def _stages(draft: Any) -> list[dict[str, Any]]:
    return [
        {"name": s.get("name"), "op": s.get("op"), "why": draft.why.get(str(s.get("name")), "")}
        for s in draft.stages
        if isinstance(s, dict)
    ]


def _cost(dry: Any) -> dict[str, Any]:
    per_stage = {s["name"]: s["estimate"] for s in dry.stages if s.get("estimate")}
    return {
        "input_rows": dry.input_rows,
        "llm_requests": sum(e["requests"] for e in per_stage.values()),
        "tokens": sum(e["tokens"] for e in per_stage.values()),
        # None when an API model's price is unknown: never a made-up 0.
        "usd": None
        if any(e["cost_usd"] is None for e in per_stage.values())
        else round(sum(e["cost_usd"] for e in per_stage.values()), 4),
        "per_stage": per_stage,
        "basis": f"the dry run's {dry.rows_read} rows scaled to the whole input",
    }


def _synthesize(
    uncovered: list[Any],
    draft: Any,
    profile: Any,
    model: Any,
    options: AgentOptions,
    spec_path: Path,
    trace: Trace,
    result: AgentResult,
) -> list[Any]:
    from dataflow_cli.agent import synth

    left = []
    for goal in uncovered:
        with Timer() as t:
            try:
                made = synth.ask_plugin(goal.text, profile.describe(), model)
            except DataflowError as exc:
                trace.record("synthesis", goal=goal.text, error=exc.reason)
                left.append(goal)
                continue
            synth.vet(made)
            synth.write_package(made, spec_path.parent / "plugins")
            agreed = made.accepted and (
                options.yes
                or (
                    options.ask_user is not None
                    and options.ask_user(
                        f"Install the plugin `{made.name}` (code in {made.package_dir}; its tests passed in the sandbox)? [y/N]"
                    )
                    .strip()
                    .lower()
                    in ("y", "yes")
                )
            )
            if agreed and made.package_dir is not None:
                ok, output = synth.install(Path(made.package_dir), target=options.plugin_target)
                if ok and options.plugin_target is not None:
                    import sys

                    sys.path.insert(0, str(options.plugin_target))
                    synth.refresh_registry()
                made.installed = ok
                if not ok:
                    made.reasons.append(f"pip install failed: {output}")
        trace.record("synthesis", goal=goal.text, output=made.as_dict(), seconds=t.seconds)
        result.synthesis.append(made.as_dict())
        if not made.installed:
            left.append(goal)
            continue
        column = profile.text_columns()[0] if profile.text_columns() else made.input
        stage: dict[str, Any] = {
            "name": made.name.rsplit("_", 1)[0],
            "op": made.name,
            "inputs": {made.input: column},
        }
        draft.stages.append(stage)
        draft.why[stage["name"]] = (
            f'{goal.kind}: "{goal.text}" -> a plugin written for it ({made.summary}); code in {made.package_dir}'
        )
    return left
