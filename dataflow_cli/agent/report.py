"""Step 8: the report for people (stderr); `--json` prints `AgentResult.as_dict()` instead."""

from __future__ import annotations

from typing import Any


def render(result: Any) -> list[str]:
    """Plain lines (the CLI styles them): what, why, what the dry run showed, cost, commands."""
    lines: list[str] = []
    status = {"ok": "ready", "incomplete": "incomplete", "refused": "cannot do this"}[result.status]
    lines.append(f"{status}: {result.request}")
    if result.message:
        lines.append(f"  {result.message}")
    if result.status == "refused":
        if result.nearest:
            lines.append("  nearest things dataflow can do: " + ", ".join(result.nearest))
        return lines
    for note in result.notes:
        lines.append(f"  note: {note}")
    if result.sample:
        cols = ", ".join(f"{n} ({c['type']})" for n, c in result.sample["columns"].items())
        lines.append(
            f"data: {result.sample['path']}: {cols}"
            + (" [designed by the agent]" if result.sample.get("invented") else "")
        )
    if result.source:
        lines.append(f"started from: {result.source}")
    dry = {s["name"]: s for s in (result.dry_run or {}).get("stages", [])}
    if result.stages:
        lines.append("stages:")
    for n, stage in enumerate(result.stages, 1):
        seen = dry.get(stage["name"])
        counts = ""
        if seen:
            counts = f"  [{seen['rows_in']} -> {seen['rows_out']}"
            if seen["dropped_by_reason"]:
                top = next(iter(seen["dropped_by_reason"].items()))
                counts += f"; top drop: {top[0]} ({top[1]})"
            if seen.get("llm"):
                counts += f"; {seen['llm']['requests']} LLM requests"
            counts += "]"
        lines.append(f"  {n}. {stage['name']} ({stage['op']}): {stage['why']}{counts}")
    if result.errors:
        lines.append("errors left after repair:")
        lines += [f"  {e}" for e in result.errors]
    if result.repair:
        fixed = [a for r in result.repair for a in r.get("applied", [])]
        lines.append(f"repairs: {len(result.repair)} round(s): " + "; ".join(fixed[:6]))
    if result.dry_run:
        d = result.dry_run
        lines.append(
            f"dry run: {d['rows_read']} rows read -> {d['rows_written']} kept, {d['rows_rejected']} rejected "
            f"({d['seconds']:.1f}s)" + (f"; failed: {d['error']}" if d.get("error") else "")
        )
        for surprise in d.get("surprises", []):
            lines.append(f"  surprise: {surprise}")
    if result.cost and result.cost.get("input_rows"):
        c = result.cost
        lines.append(
            f"cost for all {c['input_rows']} input rows: ~{c['llm_requests']} LLM requests, ~{c['tokens']} tokens, "
            + ("unknown USD (no price for the model)" if c["usd"] is None else f"${c['usd']:.4f}")
            + f" ({c['basis']})"
        )
    for s in result.synthesis:
        verdict = (
            "installed" if s["installed"] else ("accepted, not installed" if s["accepted"] else "refused")
        )
        lines.append(
            f"plugin `{s['name']}`: {verdict}; tests {s['tests_passed']}/{s['tests_total']} in the sandbox; code: {s['package_dir']}"
        )
        lines += [f"  {r}" for r in s["reasons"]]
    if result.uncovered:
        lines.append("not covered: " + "; ".join(result.uncovered))
    if result.spec:
        lines.append(f"spec: {result.spec}   trace: {result.trace}")
    if result.commands:
        lines.append("run it:")
        lines += [f"  {c}" for c in result.commands]
    return lines


def show_code(result: Any) -> list[str]:
    """The code of every plugin the agent wrote (the user must see it before trusting it)."""
    out: list[str] = []
    for s in result.synthesis:
        out.append(f"--- {s['name']}: logic.py ---")
        out += s["code"].rstrip().splitlines()
        out.append(f"--- {s['name']}: tests ---")
        out += s["tests"].rstrip().splitlines()
    return out
