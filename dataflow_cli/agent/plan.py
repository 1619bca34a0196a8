"""Steps 3-4: retrieval, then the plan and the spec ("retrieve -> reuse -> synthesize").

1. The best ready pipelines for the request are offered first: when the model picks one, the
   agent adapts it (input = the sample, the chosen backend, prompt files inlined) and maps the
   columns it needs onto the sample's columns with a `rename_columns_refiner` stage, each
   mapping a pick-one-of-the-sample's-columns answer.
2. Otherwise the spec is composed: per sub-goal, operators retrieved for its text (filtered by
   the kinds that serve it); the model picks one (or `none`: nothing fits, which is step 7's
   job), then each input port is bound to a column (an enum of the columns available at that
   point), required params are chosen from their documented examples or answered against the
   param's own JSON schema, and outputs that would overwrite a column get new names.
   In `full` mode the model answers the whole stage list in one strict-JSON answer instead.

Every decision is recorded in the trace; every stage carries a comment saying why it is there.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.agent.draft import Draft
from dataflow_cli.agent.inspect import SampleProfile
from dataflow_cli.agent.model import ModelClient

# Which operator kinds can serve a sub-goal kind (helper 7's SubGoal kinds).
KINDS_FOR = {
    "load": (),
    "clean": ("refine", "filter"),
    "filter": ("filter", "evaluate"),
    "dedup": ("filter",),
    "generate": ("generate",),
    "judge": ("evaluate", "filter"),
    "verify": ("filter", "evaluate"),
    "refine": ("refine",),
    "format": ("refine", "generate"),
}
NONE = "none of these"
LLM_MAX_TOKENS = 256  # keeps a dry run's answers short; edit it in the spec for real runs
THRESHOLDS = ["5", "6", "7", "8"]


@dataclass
class Plan:
    draft: Draft
    uncovered: list[Any] = field(default_factory=list)  # SubGoals nothing fits
    pipeline: str | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)


def _catalogue() -> dict[str, dict[str, Any]]:
    from dataflow_cli.agent.draft import operators

    return operators()


def base_data(
    name: str, profile: SampleProfile, spec_path: Path, backends: dict[str, Any], description: str
) -> dict[str, Any]:
    sample = os.path.relpath(Path(profile.path).resolve(), spec_path.resolve().parent)
    return {
        "version": 1,
        "name": name,
        "description": description,
        "input": {"path": sample},
        "output": {"path": f"out/{name}.jsonl"},
        "backends": backends,
    }


def spec_name(request: str) -> str:
    import re

    words = re.findall(r"[a-z0-9]+", request.lower())[:5]
    return "_".join(words) or "agent_pipeline"


# Reuse ----------------------------------------------------------------------------------
def try_pipelines(
    request: str,
    hits: list[Any],
    profile: SampleProfile,
    model: ModelClient,
    spec_path: Path,
    backends: dict[str, Any],
    plan_log: list[dict[str, Any]],
    goals: list[Any] | None = None,
) -> Draft | None:
    """A ready pipeline adapted to the sample, when it covers at least half of the sub-goals
    (one of each covered sub-goal's three best operators is in it) and the model picks it."""
    if goals:
        covering = {h.name: coverage(h, goals) for h in hits}
        plan_log.append({"decision": "ready pipelines' coverage of the sub-goals", "coverage": covering})
        hits = [h for h in hits if covering[h.name] >= 0.5]
    if not hits:
        return None
    options = [h.name for h in hits] + [NONE]
    if model.mode == "small":
        # A tiny model answers yes/no about the retrieval's best hit better than it ranks a list.
        best = hits[0]
        fits = model.confirm(
            "ready pipeline",
            f"Request: {request}\nReady pipeline `{best.name}`: {best.description[:300]}\n"
            "Is this pipeline a good starting point for the request?",
        )
        choice = best.name if fits else NONE
    else:
        notes = {h.name: h.description[:160] for h in hits}
        notes[NONE] = "build a new pipeline from single operators"
        choice = model.choose(
            "ready pipeline",
            f"Request: {request}\nWhich ready pipeline does what the request asks?",
            options,
            notes,
        )
    plan_log.append({"decision": "ready pipeline", "options": options, "choice": choice})
    if choice == NONE:
        return None
    hit = next(h for h in hits if h.name == choice)
    return adapt_pipeline(hit, request, profile, model, spec_path, backends, plan_log)


def coverage(hit: Any, goals: list[Any]) -> float:
    """The share of sub-goals the ready pipeline serves with one of their three best operators."""
    from dataflow_cli.agent.retrieve import retrieve_operators

    goals = [g for g in goals if KINDS_FOR.get(g.kind)]
    if not goals:
        return 0.0
    served = 0
    for goal in goals:
        best = {h.name for h in retrieve_operators(goal.text, k=3, kinds=KINDS_FOR[goal.kind])}
        served += bool(best & set(hit.operators))
    return served / len(goals)


def adapt_pipeline(
    hit: Any,
    request: str,
    profile: SampleProfile,
    model: ModelClient,
    spec_path: Path,
    backends: dict[str, Any],
    plan_log: list[dict[str, Any]],
) -> Draft | None:
    import yaml

    from dataflow_cli.agent.draft import validate

    source = Path(hit.path)
    spec_file = source if source.suffix in (".yaml", ".yml") else source / "pipeline.yaml"
    folder = spec_file.parent
    data = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    ops = _catalogue()
    head = base_data(
        spec_name(request),
        profile,
        spec_path,
        backends,
        f"{request} (adapted from the ready pipeline `{hit.name}`)",
    )
    for key in ("input", "output"):
        extra = {k: v for k, v in (data.get(key) or {}).items() if k not in ("path", "rejects")}
        head[key].update(extra)
    prompts = {}
    for name, entry in (data.get("prompts") or {}).items():
        if isinstance(entry, dict) and "file" in entry:
            prompts[name] = {"template": (folder / entry["file"]).read_text(encoding="utf-8")}
        else:
            prompts[name] = entry
    if prompts:
        head["prompts"] = prompts
    stages = []
    why = {}
    for stage in data.get("stages") or []:
        stage = dict(stage)
        if stage.get("op") == "select_columns_refiner":
            continue  # the ready pipeline's choice of output columns is not the user's
        if stage.get("backend") not in (None, *backends):
            stage.pop("backend")  # the pipeline's own backend names: the chosen backend serves all
        params = stage.get("params")
        if isinstance(params, dict):
            stage["params"] = {k: _absolute(v, folder) for k, v in params.items()}
        stages.append(stage)
        summary = (ops.get(str(stage.get("op"))) or {}).get("summary", "")
        why[stage["name"]] = f"From the ready pipeline `{hit.name}`: {summary}"
    head["stages"] = stages
    draft = Draft(head, why, source=f"pipeline:{hit.name}")
    # Columns the pipeline reads that the sample lacks: the validator names them exactly.
    missing = []
    for issue in validate(draft, spec_path):
        if "is not in the input or produced by an earlier stage" in issue.message:
            import re

            column = re.search(r"`([^`]+)`", issue.message).group(1)  # type: ignore[union-attr]
            if column not in missing:
                missing.append(column)
    mapping: dict[str, str] = {}
    texts = profile.text_columns()
    for column in missing:
        free = [c for c in (texts or list(profile.columns)) if c not in mapping]
        if not free:
            break
        ranked = sorted(free, key=lambda c: -difflib.SequenceMatcher(None, c, column).ratio())
        if len(ranked) == 1 or difflib.SequenceMatcher(None, ranked[0], column).ratio() >= 0.8:
            choice = ranked[0]  # only one candidate, or the names agree: nothing to ask
        else:
            choice = model.pick(
                "column mapping",
                f"The pipeline needs a column `{column}`. Which column of the data holds it?\nColumns:\n{profile.describe()}",
                ranked,
            )
        plan_log.append({"decision": f"column for `{column}`", "options": ranked, "choice": choice})
        mapping[choice] = column
    if mapping:
        draft.stages.insert(
            0, {"name": "map_columns", "op": "rename_columns_refiner", "params": {"mapping": mapping}}
        )
        draft.why["map_columns"] = (
            f"Your columns under the names the ready pipeline `{hit.name}` reads: "
            + ", ".join(f"{k} -> {v}" for k, v in mapping.items())
        )
    return draft


def _absolute(value: Any, folder: Path) -> Any:
    """A param naming a file or folder of the ready pipeline (databases, corpora) keeps pointing at it."""
    if (
        isinstance(value, str)
        and value
        and "\n" not in value
        and len(value) < 200
        and (folder / value).exists()
    ):
        return str((folder / value).resolve())
    return value


def extend_for_goals(
    draft: Draft,
    goals: list[Any],
    request: str,
    profile: SampleProfile,
    model: ModelClient,
    plan_log: list[dict[str, Any]],
) -> list[Any]:
    """Adapt a reused pipeline: a sub-goal none of whose best operators the pipeline has gets
    a stage of its own (composed as in `compose`, appended). Stages of the pipeline that no
    sub-goal asked for are marked so in their comment. Returns the sub-goals nothing fits."""
    from dataflow_cli.agent.retrieve import retrieve_operators

    ops = _catalogue()
    columns = _Columns(profile)
    for stage in draft.stages:
        mapping = (
            (stage.get("params") or {}).get("mapping")
            if stage.get("op") == "rename_columns_refiner"
            else None
        )
        for old, new in (mapping or {}).items():
            columns.order = [new if c == old else c for c in columns.order]
            if old in columns.text:
                columns.text.add(new)
        op = ops.get(str(stage.get("op"))) or {"outputs": []}
        for port in op["outputs"]:
            if not port["name"].startswith("<"):
                column = (stage.get("outputs") or {}).get(port["name"], port["name"])
                columns.add(column, port.get("type", "string") == "string")
    present = {s.get("op") for s in draft.stages}
    used: set[str] = set()
    uncovered = []
    for goal in goals:
        kinds = KINDS_FOR.get(goal.kind)
        if not kinds:
            continue
        hits = [h for h in retrieve_operators(goal.text, k=5, kinds=kinds) if h.name in ops]
        found = [h.name for h in hits[:3] if h.name in present]
        if found:
            used.update(found)
            for stage in draft.stages:
                if stage.get("op") in found:
                    draft.serves[str(stage.get("name"))] = goal.text
            continue
        if not hits:
            uncovered.append(goal)
            continue
        choice = _pick_operator(request, goal, hits, model)
        plan_log.append({"decision": f"added to the ready pipeline for `{goal.text}`", "choice": choice})
        if choice == NONE:
            uncovered.append(goal)
            continue
        _add_stage(draft, ops[choice], goal, request, columns, model, plan_log)
        draft.why[draft.stages[-1]["name"]] += " (added to the ready pipeline, which lacks it)"
        used.add(choice)
    for stage in draft.stages:
        name = str(stage.get("name"))
        if stage.get("op") not in used and draft.why.get(name, "").startswith("From the ready pipeline"):
            draft.why[name] += " Not something your request named: remove it if unwanted."
    return uncovered


# Compose --------------------------------------------------------------------------------
class _Columns:
    """The columns available at a point of the pipeline, text ones first."""

    def __init__(self, profile: SampleProfile):
        self.order = list(profile.columns)
        self.text = set(profile.text_columns())

    def ranked(self, port: str, text_only: bool = True, hint: str = "") -> list[str]:
        """Columns best first: those the sub-goal's words name ("duplicate answers" -> `answer`),
        then by how much their name looks like the port's."""
        import re

        words = {w.rstrip("s") for w in re.findall(r"[a-z0-9_]+", hint.lower())}
        pool = [c for c in self.order if (c in self.text or not text_only) and not c.startswith("_")]
        pool = pool or [c for c in self.order if not c.startswith("_")]
        return sorted(
            pool,
            key=lambda c: (
                c.lower().rstrip("s") not in words,
                -difflib.SequenceMatcher(None, c, port).ratio(),
            ),
        )

    def add(self, column: str, text: bool) -> None:
        if column not in self.order:
            self.order.append(column)
        if text:
            self.text.add(column)


def compose(
    request: str,
    subgoals: list[Any],
    profile: SampleProfile,
    model: ModelClient,
    spec_path: Path,
    backends: dict[str, Any],
    plan_log: list[dict[str, Any]],
) -> Plan:
    from dataflow_cli.agent.retrieve import retrieve_operators

    ops = _catalogue()
    head = base_data(spec_name(request), profile, spec_path, backends, request)
    draft = Draft({**head, "stages": []}, {}, source="composed")
    columns = _Columns(profile)
    uncovered = []
    for goal in subgoals:
        kinds = KINDS_FOR.get(goal.kind)
        if not kinds:
            continue
        hits = [h for h in retrieve_operators(goal.text, k=5, kinds=kinds) if h.name in ops]
        options = [h.name for h in hits] + [NONE]
        choice = _pick_operator(request, goal, hits, model) if hits else NONE
        plan_log.append(
            {
                "decision": f"operator for `{goal.text}`",
                "kind": goal.kind,
                "options": options,
                "choice": choice,
            }
        )
        if choice == NONE:
            uncovered.append(goal)
            continue
        _add_stage(draft, ops[choice], goal, request, columns, model, plan_log)
    return Plan(draft, uncovered, None, plan_log)


def _pick_operator(request: str, goal: Any, hits: list[Any], model: ModelClient) -> str:
    """Small mode: yes/no on the top hits in retrieval order, the first yes wins, and the
    retrieval's best when every answer is no (a tiny model's "no" is not evidence that nothing
    fits; the dry run checks the result). Full mode: one of the hits or none."""
    if model.mode == "small":
        for hit in hits[:3]:
            if model.confirm(
                "operator",
                f"Step of a data pipeline: {goal.text}\nOperator `{hit.name}`: {hit.summary}\nDoes this operator do the step?",
            ):
                return hit.name
        return hits[0].name
    notes = {h.name: h.summary for h in hits}
    return model.choose(
        "operator",
        f"Request: {request}\nStep: {goal.text}\nWhich operator does this step?",
        [h.name for h in hits] + [NONE],
        notes,
    )


def _unique(draft: Draft, base: str) -> str:
    names = {s["name"] for s in draft.stages}
    name, n = base, 2
    while name in names:
        name, n = f"{base}_{n}", n + 1
    return name


def _add_stage(
    draft: Draft,
    op: dict[str, Any],
    goal: Any,
    request: str,
    columns: _Columns,
    model: ModelClient,
    plan_log: list[dict[str, Any]],
) -> None:
    kind_suffix = (
        "_"
        + {"filter": "filter", "evaluate": "evaluator", "generate": "generator", "refine": "refiner"}[
            op["kind"]
        ]
    )
    base = op["name"].removesuffix(kind_suffix) or op["name"]
    name = _unique(draft, base)
    stage: dict[str, Any] = {"name": name, "op": op["name"]}
    inputs: dict[str, str] = {}
    for port in op["inputs"]:
        options = columns.ranked(port["name"], hint=goal.text)
        if port["name"] in options:
            options = [port["name"]] + [c for c in options if c != port["name"]]  # the same name wins
        # Two ports of one stage (instruction, response) rarely read the same column.
        options = [c for c in options if c not in inputs.values()] + [
            c for c in options if c in inputs.values()
        ]
        if options[0] == port["name"]:
            inputs[port["name"]] = port["name"]
            continue
        choice = model.pick(
            "input column",
            f"Operator `{op['name']}` reads `{port['name']}` ({port.get('description', '')}). Which column?",
            options,
        )
        plan_log.append({"decision": f"{name}.inputs.{port['name']}", "options": options, "choice": choice})
        inputs[port["name"]] = choice
    if inputs:
        stage["inputs"] = inputs
    params = _params(op, goal, name, columns, model, plan_log)
    if params:
        stage["params"] = params
    outputs = {}
    for port in op["outputs"]:
        if port["name"].startswith("<"):
            continue
        column = port["name"] if port["name"] not in columns.order else f"{name}_{port['name']}"
        if column != port["name"]:
            outputs[port["name"]] = column
        columns.add(column, port.get("type", "string") == "string")
    if outputs:
        stage["outputs"] = outputs
    draft.stages.append(stage)
    draft.why[name] = f'{goal.kind}: "{goal.text}" -> {op["summary"]}'
    draft.serves[name] = goal.text
    # Evaluate, then filter: a score serves "keep the good ones" only with a threshold stage.
    numeric = [p for p in op["outputs"] if p.get("type") in ("float64", "int64")]
    if op["kind"] == "evaluate" and goal.kind in ("filter", "judge", "verify") and numeric:
        score = outputs.get(numeric[0]["name"], numeric[0]["name"])
        threshold = model.choose("threshold", f"Keep rows whose `{score}` is at least:", THRESHOLDS)
        plan_log.append({"decision": f"threshold on {score}", "options": THRESHOLDS, "choice": threshold})
        keep = _unique(draft, f"keep_{score}")
        draft.stages.append(
            {
                "name": keep,
                "op": "range_filter",
                "inputs": {"value": score},
                "params": {"min": int(threshold)},
            }
        )
        draft.why[keep] = (
            f"{goal.kind}: keep only rows whose `{score}` >= {threshold} (the score stays in the output)"
        )
        draft.serves[keep] = goal.text


def _params(
    op: dict[str, Any],
    goal: Any,
    name: str,
    columns: _Columns,
    model: ModelClient,
    plan_log: list[dict[str, Any]],
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    names = {p["name"] for p in op["params"]}
    if op.get("uses_llm"):
        if not op.get("default_template") and "template" in names:
            ranked = columns.ranked("text", hint=goal.text)
            column = ranked[0] if ranked else "text"
            params["template"] = f"{goal.text.strip()}\n\n{{{{ {column} }}}}"
        if "max_tokens" in names:
            params["max_tokens"] = LLM_MAX_TOKENS
    for param in op["params"]:
        if not param.get("required") or param["name"] in params:
            continue
        value = _param_value(op, param, columns, model, goal.text)
        plan_log.append({"decision": f"{name}.params.{param['name']}", "choice": value})
        params[param["name"]] = value
    return params


def _param_value(
    op: dict[str, Any], param: dict[str, Any], columns: _Columns, model: ModelClient, hint: str = ""
) -> Any:
    import json

    kind = param.get("type", "")
    question = f"Parameter `{param['name']}` of `{op['name']}`: {param.get('description', '')}"
    if "list[str]" in kind and "column" in param["name"]:
        return [model.pick("param column", question, columns.ranked(param["name"], hint=hint))]
    if param.get("examples"):
        options = [
            json.dumps(e.get("content", e) if isinstance(e, dict) and "content" in e else e)
            for e in param["examples"]
        ]
        return json.loads(model.choose("param example", question, options))
    if param["name"] == "allowed" and "list[str]" in kind:
        return ["en"]  # the usual case; the why comment and report say so
    schema = (op.get("params_schema") or {}).get("properties", {}).get(param["name"], {})
    schema = {k: v for k, v in schema.items() if k not in ("title", "default")}
    answer = model.ask(
        "param value",
        question + ' Answer as JSON: {"value": ...}',
        {"type": "object", "properties": {"value": schema}, "required": ["value"]},
        max_tokens=120,
    )
    return answer["value"]


# Full mode: the whole plan in one answer -----------------------------------------------
def full_plan(
    request: str,
    subgoals: list[Any],
    profile: SampleProfile,
    model: ModelClient,
    spec_path: Path,
    backends: dict[str, Any],
    plan_log: list[dict[str, Any]],
) -> Plan:
    from dataflow_cli.agent.retrieve import retrieve_operators

    ops = _catalogue()
    candidates: dict[str, dict[str, Any]] = {}
    for goal in subgoals:
        kinds = KINDS_FOR.get(goal.kind) or None
        for hit in retrieve_operators(goal.text, k=6, kinds=kinds):
            if hit.name in ops:
                candidates[hit.name] = ops[hit.name]
    for helper in ("range_filter", "rename_columns_refiner", "select_columns_refiner"):
        candidates.setdefault(helper, ops[helper])
    listing = "\n".join(
        f"- {n} ({o['kind']}): {o['summary']} inputs={[p['name'] for p in o['inputs']]} "
        f"outputs={[p['name'] for p in o['outputs']]} required params={[p['name'] for p in o['params'] if p.get('required')]}"
        for n, o in candidates.items()
    )
    goals = "\n".join(f"- {g.kind}: {g.text}" for g in subgoals)
    schema = {
        "type": "object",
        "properties": {
            "stages": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                        "op": {
                            "type": "string",
                            "enum": sorted(ops),
                        },  # any installed; the candidates are listed
                        "why": {"type": "string"},
                        "inputs": {"type": "object", "additionalProperties": {"type": "string"}},
                        "outputs": {"type": "object", "additionalProperties": {"type": "string"}},
                        "params": {"type": "object"},
                    },
                    "required": ["name", "op", "why"],
                    "additionalProperties": False,
                },
            },
            "uncovered": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["stages"],
        "additionalProperties": False,
    }
    prompt = (
        f"Write a data pipeline for this request: {request}\n\nSub-goals:\n{goals}\n\n"
        f"Input columns:\n{profile.describe()}\n\nOperators you may use:\n{listing}\n\n"
        "Order stages cheap rule checks first, LLM stages last; an evaluator adds a score column and a "
        "range_filter keeps rows by it. `inputs` maps an operator's input port to a column; `outputs` maps its "
        "output to a new column name. List in `uncovered` the sub-goals no operator can do. Answer in JSON."
    )
    answer = model.ask("plan", prompt, schema, max_tokens=1500)
    head = base_data(spec_name(request), profile, spec_path, backends, request)
    draft = Draft({**head, "stages": []}, {}, source="composed")
    for item in answer["stages"]:
        stage = {"name": _unique(draft, item["name"]), "op": item["op"]}
        for key in ("inputs", "outputs", "params"):
            if item.get(key):
                stage[key] = item[key]
        draft.stages.append(stage)
        draft.why[stage["name"]] = item.get("why") or ops[item["op"]]["summary"]
    plan_log.append({"decision": "full plan", "answer": answer})
    texts = {t.strip().lower() for t in answer.get("uncovered") or []}
    uncovered = [g for g in subgoals if g.text.strip().lower() in texts or g.kind.lower() in texts]
    if texts and not uncovered:
        from dataflow_cli.agent.intent import SubGoal

        uncovered = [SubGoal("filter", t) for t in answer["uncovered"]]
    return Plan(draft, uncovered, None, plan_log)
