"""Step 5 (and the back half of step 6): the bounded repair loop. It only edits the spec.

Each round validates the written spec with the product's validator; every error, with its
location (`file:line:col: path: message`), goes back to the model. Edits are JSON-patch-like
operations on the spec data (`{"op": "replace"|"add"|"remove", "path": "/stages/1/params/min",
"value": ...}`), applied and validated again.

- `small` mode (the tiny local model): for each error the agent lists candidate edits it can
  derive from the error itself (a did-you-mean operator, an available column, dropping an
  unknown parameter, removing the stage, ...) and the model picks one (an enum).
- `full` mode: the model writes the edits itself (strict JSON schema); the candidates are
  shown as suggestions. An edit that cannot be applied is an error sent back to it.

After `max_rounds` rounds with errors left, `RepairFailed` carries them (exit 1).
Dry-run surprises (a filter that drops every row, a column of nulls, every row rejected by an
LLM error) enter the same loop as issues located at their stage (`dry-run` location).
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.agent.draft import Draft, parse_path, stage_index, validate
from dataflow_cli.agent.model import ModelClient, ModelGaveUp
from dataflow_cli.errors import DataflowError
from dataflow_cli.spec.model import Issue

MAX_ROUNDS = 4


class RepairFailed(DataflowError):
    """The spec still has errors after the repair bound."""

    def __init__(self, issues: list[Issue], rounds: int):
        self.issues = issues
        lines = "\n".join(i.render() for i in issues[:12])
        super().__init__(
            f"the agent could not repair the spec in {rounds} rounds; {len(issues)} error(s) left:\n{lines}",
            hint="edit the spec by hand (it is written, with the errors above), or retry with a more capable "
            "model (`--model ...`)",
        )


class PatchError(ValueError):
    pass


@dataclass
class Fix:
    label: str  # what it does, for people and for the model's list
    edits: list[dict[str, Any]]
    ask: dict[str, Any] | None = None  # a value the model must give: {"path", "schema", "question"}


@dataclass
class RepairLog:
    rounds: list[dict[str, Any]] = field(default_factory=list)
    fixed: int = 0


# Patches ------------------------------------------------------------------------------
def _pointer(path: str) -> list[Any]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError(f"path `{path}` must start with `/`")
    parts: list[Any] = []
    for raw in path[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        parts.append(int(token) if token.isdigit() else token)
    return parts


def apply_edits(data: dict[str, Any], edits: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of `data` with the edits applied (all or none)."""
    out = copy.deepcopy(data)
    for edit in edits:
        op, parts = edit.get("op"), _pointer(edit.get("path", ""))
        if not parts:
            raise PatchError("cannot edit the whole spec")
        parent: Any = out
        for i, part in enumerate(parts[:-1]):
            if isinstance(parent, dict):
                if part not in parent:
                    if op != "add":
                        raise PatchError(f"`{edit['path']}`: no `{part}`")
                    parent[part] = {}
                parent = parent[part]
            elif isinstance(parent, list) and isinstance(part, int) and part < len(parent):
                parent = parent[part]
            else:
                raise PatchError(f"`{edit['path']}`: no element {'/'.join(map(str, parts[: i + 1]))}")
        last = parts[-1]
        if op == "remove":
            if isinstance(parent, dict) and last in parent:
                del parent[last]
            elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
                parent.pop(last)
            else:
                raise PatchError(f"`{edit['path']}`: nothing to remove")
        elif op in ("replace", "add"):
            if "value" not in edit:
                raise PatchError(f"`{edit['path']}`: `{op}` needs a `value`")
            if isinstance(parent, dict):
                if op == "replace" and last not in parent:
                    raise PatchError(f"`{edit['path']}`: nothing to replace (use `add`)")
                parent[last] = edit["value"]
            elif isinstance(parent, list) and (isinstance(last, int) or last == "-"):
                if last == "-":
                    parent.append(edit["value"])
                elif op == "add" and last <= len(parent):
                    parent.insert(last, edit["value"])
                elif last < len(parent):
                    parent[last] = edit["value"]
                else:
                    raise PatchError(f"`{edit['path']}`: index out of range")
            else:
                raise PatchError(f"`{edit['path']}`: cannot set inside a {type(parent).__name__}")
        else:
            raise PatchError(f"unknown edit op `{op}` (use replace, add or remove)")
    return out


EDITS_SCHEMA = {
    "type": "object",
    "properties": {
        "edits": {
            "type": "array",
            "minItems": 1,
            "maxItems": 12,
            "items": {
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": ["replace", "add", "remove"]},
                    "path": {"type": "string", "pattern": "^/"},
                    "value": {},
                },
                "required": ["op", "path"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["edits"],
    "additionalProperties": False,
}


# Candidate fixes ----------------------------------------------------------------------
def _catalogue() -> dict[str, dict[str, Any]]:
    from dataflow_cli.agent.draft import operators

    return operators()


def _ptr(*parts: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _available(message: str) -> list[str]:
    match = re.search(r"\(available: (.*)\)\s*$", message)
    return re.findall(r"`([^`]+)`", match.group(1)) if match else []


def candidates(
    issue: Issue, data: dict[str, Any], pipeline_backend: dict[str, Any] | None = None
) -> list[Fix]:
    """Edits derived from one error (best first); removing the stage is always last."""
    parts = parse_path(issue.path)
    i = stage_index(issue.path)
    stages = data.get("stages") or []
    stage = stages[i] if i is not None and i < len(stages) and isinstance(stages[i], dict) else None
    msg = issue.message
    fixes: list[Fix] = []
    ops = _catalogue()
    if stage is not None and i is not None:
        op = ops.get(str(stage.get("op")))
        tail = parts[2:]
        if tail == ("op",) and "unknown operator" in msg:
            names = difflib.get_close_matches(str(stage.get("op")), list(ops), n=3, cutoff=0.5)
            try:
                from dataflow_cli.agent.retrieve import retrieve_operators

                names += [h.name for h in retrieve_operators(str(stage.get("op")).replace("_", " "), k=3)]
            except DataflowError:
                pass
            for name in dict.fromkeys(names):
                edits = [{"op": "replace", "path": _ptr("stages", i, "op"), "value": name}]
                fixes.append(Fix(f"use operator `{name}` in stage `{stage.get('name')}`", edits))
        elif tail == ("op",) and "calls an LLM" in msg and pipeline_backend is not None:
            fixes.append(
                Fix(
                    "define the `default` backend",
                    [{"op": "add", "path": "/backends/default", "value": pipeline_backend}],
                )
            )
        elif len(tail) == 2 and tail[0] == "params" and msg.startswith("unknown parameter"):
            fixes.append(
                Fix(f"drop the unknown parameter `{tail[1]}`", [{"op": "remove", "path": _ptr(*parts)}])
            )
        elif tail == ("params",) and msg.startswith("missing required parameter") and op is not None:
            name = re.search(r"`([^`]+)`", msg).group(1)  # type: ignore[union-attr]
            fixes.append(_ask_param(op, i, name, stage))
        elif len(tail) >= 2 and tail[0] == "params" and tail[1] != "template" and op is not None:
            name = tail[1]
            param = next((p for p in op["params"] if p["name"] == name), None)
            if param is not None and not param.get("required"):
                fixes.append(
                    Fix(f"use the default of `{name}`", [{"op": "remove", "path": _ptr(*parts[:4])}])
                )
            if param is not None:
                fixes.append(_ask_param(op, i, name, stage, replace=name in (stage.get("params") or {})))
        elif "is not in the input or produced by an earlier stage" in msg:
            column = re.search(r"`([^`]+)`", msg).group(1)  # type: ignore[union-attr]
            for other in _available(msg):
                fixes += _rebind(stage, i, tail, column, other, op)
        elif len(tail) == 2 and tail[0] in ("inputs", "outputs") and " has no " in msg and op is not None:
            declared = [p["name"] for p in op[tail[0]]]
            bound = stage.get(tail[0]) or {}
            value = bound.get(tail[1])
            for port in declared:
                if port not in bound:
                    fixes.append(
                        Fix(
                            f"bind `{value}` to {tail[0][:-1]} `{port}` instead",
                            [
                                {"op": "remove", "path": _ptr("stages", i, tail[0], tail[1])},
                                {"op": "add", "path": _ptr("stages", i, tail[0], port), "value": value},
                            ],
                        )
                    )
            fixes.append(
                Fix(
                    f"drop the binding `{tail[1]}`",
                    [{"op": "remove", "path": _ptr("stages", i, tail[0], tail[1])}],
                )
            )
        elif "would overwrite column" in msg and op is not None:
            column = re.search(r"column `([^`]+)`", msg).group(1)  # type: ignore[union-attr]
            outputs = dict(stage.get("outputs") or {})
            logical = next((k for k, v in outputs.items() if v == column), None)
            if logical is None and column in [p["name"] for p in op["outputs"]]:
                logical = column
            if logical is not None:
                new = f"{stage.get('name')}_{logical}"
                fixes.append(
                    Fix(
                        f"write `{logical}` to a new column `{new}`",
                        [{"op": "add", "path": _ptr("stages", i, "outputs", logical), "value": new}],
                    )
                )
        elif issue.location == "dry-run" and " crashed on the sample rows" not in msg:
            fixes += _relax(stage, i, msg)  # a crash is not a bound to loosen: only removal fits
        elif "duplicate stage name" in msg:
            fixes.append(
                Fix(
                    "rename the stage",
                    [
                        {
                            "op": "replace",
                            "path": _ptr("stages", i, "name"),
                            "value": f"{stage.get('name')}_{i}",
                        }
                    ],
                )
            )
        fixes.append(
            Fix(f"remove stage `{stage.get('name')}`", [{"op": "remove", "path": _ptr("stages", i)}])
        )
    return fixes


def _relax(stage: dict[str, Any], i: int, message: str) -> list[Fix]:
    """Fixes for a dry-run surprise: loosen a bound that dropped everything, give LLM answers room."""
    fixes = []
    params = stage.get("params") or {}
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key.startswith("min") or key in ("threshold", "min_score"):
            new: Any = type(value)(value / 2) if value else value
        elif key.startswith("max") and key != "max_tokens":
            new = value * 2
        else:
            continue
        if new != value:
            fixes.append(
                Fix(
                    f"relax `{key}` of `{stage.get('name')}` from {value} to {new}",
                    [{"op": "replace", "path": _ptr("stages", i, "params", key), "value": new}],
                )
            )
    if "LLM error" in message or "truncated" in message:
        tokens = max(1024, 2 * int(params.get("max_tokens") or 0))
        edit = {"op": "add", "path": _ptr("stages", i, "params", "max_tokens"), "value": tokens}
        if "params" not in stage:
            edit = {"op": "add", "path": _ptr("stages", i, "params"), "value": {"max_tokens": tokens}}
        fixes.append(Fix(f"allow {tokens} tokens per answer in `{stage.get('name')}`", [edit]))
    return fixes


def _ask_param(op: dict[str, Any], i: int, name: str, stage: dict[str, Any], replace: bool = False) -> Fix:
    schema = (op.get("params_schema") or {}).get("properties", {}).get(name, {})
    schema = {k: v for k, v in schema.items() if k not in ("title", "default")}
    if "$ref" in str(schema) or not schema:
        schema = {}
    about = next((p.get("description", "") for p in op["params"] if p["name"] == name), "")
    return Fix(
        f"set parameter `{name}` of stage `{stage.get('name')}`",
        [],
        ask={
            "path": _ptr("stages", i, "params", name),
            "schema": schema,
            "question": f"Value of parameter `{name}` of operator `{op['name']}` ({about})",
            "has_params": "params" in stage,
        },
    )


def _rebind(
    stage: dict[str, Any], i: int, tail: tuple, column: str, other: str, op: dict[str, Any] | None
) -> list[Fix]:
    if len(tail) == 2 and tail[0] == "inputs":
        return [
            Fix(
                f"read column `{other}` instead of `{column}`",
                [{"op": "add", "path": _ptr("stages", i, "inputs", tail[1]), "value": other}],
            )
        ]
    params = stage.get("params") or {}
    if tail and tail[0] in ("params", "prompt") and isinstance(params.get("template"), str):
        text = re.sub(r"\{\{\s*" + re.escape(column) + r"\s*\}\}", "{{ " + other + " }}", params["template"])
        return [
            Fix(
                f"use `{other}` for the prompt variable `{column}`",
                [{"op": "replace", "path": _ptr("stages", i, "params", "template"), "value": text}],
            )
        ]
    if op is not None and column in [p["name"] for p in op["inputs"]]:
        return [
            Fix(
                f"bind input `{column}` to column `{other}`",
                [{"op": "add", "path": _ptr("stages", i, "inputs", column), "value": other}],
            )
        ]
    for key, value in params.items():
        if value == column or (isinstance(value, list) and column in value):
            new = other if value == column else [other if v == column else v for v in value]
            return [
                Fix(
                    f"use `{other}` instead of `{column}` in `{key}`",
                    [{"op": "replace", "path": _ptr("stages", i, "params", key), "value": new}],
                )
            ]
    return []


# The loop ---------------------------------------------------------------------------
def repair(
    draft: Draft,
    spec_path: Path,
    model: ModelClient,
    *,
    max_rounds: int = MAX_ROUNDS,
    extra_issues: list[Issue] | None = None,
    pipeline_backend: dict[str, Any] | None = None,
    log: RepairLog | None = None,
) -> Draft:
    """Validate, and while errors remain (and rounds are left) have the model edit the spec.
    Returns the valid draft; raises `RepairFailed` with the errors left after the bound."""
    log = log or RepairLog()
    issues = (extra_issues or []) + validate(draft, spec_path)
    for round_number in range(1, max_rounds + 1):
        if not issues:
            return draft
        before = len(issues)
        record: dict[str, Any] = {"round": round_number, "errors": [i.render() for i in issues]}
        try:
            if model.mode == "full":
                draft, applied = _round_full(draft, issues, model, pipeline_backend)
            else:
                draft, applied = _round_small(draft, issues, model, pipeline_backend)
        except ModelGaveUp as exc:
            applied = [f"model gave up: {exc.reason}"]
        record["applied"] = applied
        model.trace.record("repair", **record)
        log.rounds.append(record)
        issues = validate(draft, spec_path)
        log.fixed += max(0, before - len(issues))
    if issues:
        draft.write(spec_path)
        raise RepairFailed(issues, max_rounds)
    return draft


def _round_small(
    draft: Draft, issues: list[Issue], model: ModelClient, backend: dict | None
) -> tuple[Draft, list[str]]:
    """One fix per stage per round, from the last stage back (removals do not shift the rest).
    Errors of the same kind (the same message but for the stage) are one question: a spec
    reading a missing `text` in ten stages needs one answer, not ten."""
    applied: list[str] = []
    touched: set[Any] = set()
    answers: dict[str, str] = {}  # error kind -> the label chosen for it
    ordered = sorted(issues, key=lambda x: -(stage_index(x.path) or 0))
    for issue in ordered:
        key = stage_index(issue.path)
        if key in touched:
            continue
        fixes = candidates(issue, draft.data, backend)
        if not fixes:
            continue
        touched.add(key)
        labels = [f.label for f in fixes]
        kind = _error_kind(issue)
        if answers.get(kind) in labels:
            fix = fixes[labels.index(answers[kind])]
        else:
            # Removing the stage (always the last candidate) only when nothing else is offered: a
            # tiny model's yes/no must not drop what the request asked for.
            offered = [x for x in labels if not x.startswith("remove stage")] or labels
            label = model.pick(
                "repair",
                f"A pipeline spec has this error:\n{issue.render()}\nHow should it be fixed?",
                offered,
                always_ask=True,
            )
            fix = fixes[labels.index(label)]
            answers[kind] = fix.label
        edits = fix.edits or _asked_edits(fix, model)
        try:
            data = apply_edits(draft.data, edits)
        except PatchError as exc:
            applied.append(f"{fix.label}: not applicable ({exc})")
            continue
        draft = _with_data(draft, data)
        applied.append(fix.label)
    return draft, applied


def _error_kind(issue: Issue) -> str:
    tail = parse_path(issue.path)[2:]
    message = re.sub(r"\(available: .*\)$", "", issue.message)
    message = re.sub(r"(stage|filter) `[^`]+`", r"\1", message)
    return f"{tail[:1]}:{message}"


def _asked_edits(fix: Fix, model: ModelClient) -> list[dict[str, Any]]:
    ask = fix.ask or {}
    schema = {"type": "object", "properties": {"value": ask.get("schema") or {}}, "required": ["value"]}
    value = model.ask(
        "param value", f'{ask.get("question")}. Answer as JSON: {{"value": ...}}', schema, max_tokens=120
    )["value"]
    path = ask["path"]
    if not ask.get("has_params"):
        return [{"op": "add", "path": path.rsplit("/", 1)[0], "value": {path.rsplit("/", 1)[1]: value}}]
    return [{"op": "add", "path": path, "value": value}]


def _round_full(
    draft: Draft, issues: list[Issue], model: ModelClient, backend: dict | None
) -> tuple[Draft, list[str]]:
    import json

    hints = []
    for issue in issues:
        for fix in candidates(issue, draft.data, backend)[:4]:
            if fix.edits:
                hints.append(f"- for `{issue.path}`: {fix.label}: {json.dumps(fix.edits)}")
    prompt = (
        "This pipeline spec does not validate.\n\nSpec (YAML):\n"
        + draft.render()
        + "\nErrors:\n"
        + "\n".join(i.render() for i in issues)
        + ("\n\nPossible edits:\n" + "\n".join(hints) if hints else "")
        + "\n\nAnswer with JSON edits on the spec data (JSON pointer paths such as /stages/0/params/min): "
        '{"edits": [{"op": "replace", "path": "...", "value": ...}]}'
    )
    problem = None
    for _ in range(model.retries + 1):
        answer = model.ask(
            "repair edits",
            prompt + (f"\n\nYour last edits failed: {problem}" if problem else ""),
            EDITS_SCHEMA,
            max_tokens=800,
        )
        try:
            data = apply_edits(draft.data, answer["edits"])
        except PatchError as exc:
            problem = str(exc)
            model.trace.record("repair_edit_rejected", problem=problem, edits=answer["edits"])
            continue
        return _with_data(draft, data), [json.dumps(e) for e in answer["edits"]]
    return draft, [f"edits not applicable: {problem}"]


def _with_data(draft: Draft, data: dict[str, Any]) -> Draft:
    new = draft.copy()
    new.data = data
    names = {str(s.get("name")) for s in data.get("stages") or [] if isinstance(s, dict)}
    new.why = {k: v for k, v in draft.why.items() if k in names}
    new.serves = {k: v for k, v in draft.serves.items() if k in names}
    return new
