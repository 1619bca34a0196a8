"""Step 6: run the spec on the first k sample rows, in a temporary run directory.

The run is a real `Executor` run (the same validation, accounting and rejects as `dataflow
run`), with output, rejects and checkpoints under a temporary folder, so nothing of the user's
is touched. What comes back per stage: rows in/out, keep rate, drops by reason, LLM requests,
tokens and cost, and that cost scaled to the whole input. Surprises become issues for the
repair loop: a filter that drops every row it sees, an output column that is all nulls, every
row of an LLM stage rejected by an LLM error.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataflow_cli.spec.model import Issue

DEFAULT_LIMIT = 20


@dataclass
class DryRun:
    rows_read: int
    rows_written: int
    rows_rejected: int
    stages: list[dict[str, Any]]
    surprises: list[Issue] = field(default_factory=list)
    input_rows: int | None = None  # rows in the whole input (for the cost estimate)
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "input_rows": self.input_rows,
            "seconds": self.seconds,
            "error": self.error,
            "stages": self.stages,
            "surprises": [i.render() for i in self.surprises],
        }


def count_rows(spec_path: Path) -> int | None:
    from dataflow_cli.io.inputs import iter_batches
    from dataflow_cli.spec.build import load_spec

    try:
        spec = load_spec(spec_path, check_columns=False)
        return sum(t.num_rows for t in iter_batches(spec.input_paths, 65536))
    except Exception:  # noqa: BLE001 - only an estimate; the dry run reports real problems
        return None


def dry_run(spec_path: Path, limit: int = DEFAULT_LIMIT) -> DryRun:
    from dataflow_cli.engine.executor import Executor
    from dataflow_cli.errors import DataflowError
    from dataflow_cli.spec.build import load_spec

    with tempfile.TemporaryDirectory(prefix="dataflow-agent-dry-") as tmp:
        out = Path(tmp) / "out.jsonl"
        overrides = [
            f"input.limit={limit}",
            f"output.path={out}",
            f"output.rejects={Path(tmp) / 'rejects.jsonl'}",
        ]
        # Cached answers cost no tokens: the estimate must count every request as the real run would.
        overrides += [f"backends.{name}.cache=false" for name in _backend_names(spec_path)]
        try:
            spec = load_spec(spec_path, overrides)
            stats = Executor(spec, Path(tmp) / "run", fresh=True).run()
        except DataflowError as exc:
            return DryRun(0, 0, 0, [], [Issue("dry-run", "(run)", exc.reason)], error=exc.reason)
        except Exception as exc:  # noqa: BLE001 - an operator's bug must not end the agent: repair around it
            return _crashed(exc, spec if "spec" in locals() else None)
        data = stats.to_dict()
        nulls = _null_columns(out, spec) if out.exists() else {}
        result = DryRun(
            data["rows_read"], data["rows_written"], data["rows_rejected"], [], seconds=data["seconds"]
        )
        total = count_rows(spec_path)
        result.input_rows = total
        for index, stage in enumerate(data["stages"]):
            rows_in = stage["rows_in"]
            llm = stage.get("llm") or {}
            entry = {
                "name": stage["name"],
                "op": stage["op"],
                "kind": stage["kind"],
                "rows_in": rows_in,
                "rows_out": stage["rows_out"],
                "keep_rate": round(stage["rows_out"] / rows_in, 3) if rows_in else None,
                "dropped_by_reason": stage["dropped_by_reason"],
                "seconds": stage["seconds"],
            }
            if llm:
                tokens = llm.get("prompt_tokens", 0) + llm.get("completion_tokens", 0)
                entry["llm"] = {
                    k: llm.get(k)
                    for k in (
                        "requests",
                        "errors",
                        "errors_by_kind",
                        "truncated",
                        "prompt_tokens",
                        "completion_tokens",
                        "cost",
                    )
                }
                if rows_in and total:
                    # Rows reaching this stage scale with the input like the dry run's did.
                    scale = total / max(1, data["rows_read"])
                    usd = _usd(spec, index, llm)
                    entry["estimate"] = {
                        "requests": round(llm.get("requests", 0) * scale),
                        "tokens": round(tokens * scale),
                        "cost_usd": None if usd is None else round(usd * scale, 4),
                    }
            result.stages.append(entry)
            here = f"stages[{index}]"
            if stage["kind"] == "filter" and rows_in > 0 and stage["rows_out"] == 0:
                reasons = ", ".join(f"{r} ({n})" for r, n in list(stage["dropped_by_reason"].items())[:3])
                result.surprises.append(
                    Issue(
                        "dry-run",
                        here,
                        f"filter `{stage['name']}` dropped all {rows_in} rows it saw: {reasons}",
                    )
                )
            elif (
                llm
                and rows_in > 0
                and llm.get("errors", 0) + llm.get("truncated", 0) >= rows_in
                and stage["rows_out"] == 0
            ):
                kinds = (
                    ", ".join(f"{k} ({n})" for k, n in (llm.get("errors_by_kind") or {}).items())
                    or "truncated answers"
                )
                result.surprises.append(
                    Issue(
                        "dry-run",
                        here,
                        f"every row of `{stage['name']}` was rejected by an LLM error: {kinds}",
                    )
                )
            for column in nulls.get(stage["name"], []):
                result.surprises.append(
                    Issue(
                        "dry-run",
                        here,
                        f"column `{column}` written by `{stage['name']}` is null in every output row",
                    )
                )
        return result


def _crashed(exc: Exception, spec: Any) -> DryRun:
    """A dry run ended by an exception (a bug in an operator): located at the stage whose
    operator's code raised it, so the repair loop can replace or remove that stage."""
    import inspect
    import traceback

    message = f"{type(exc).__name__}: {exc}"[:300]
    where = "(run)"
    frames = {f.filename for f in traceback.extract_tb(exc.__traceback__)}
    for stage in getattr(spec, "stages", []):
        try:
            source = inspect.getfile(type(stage.operator))
        except TypeError:
            continue
        if source in frames:
            where = f"stages[{stage.index}]"
            message = f"stage `{stage.name}` ({stage.op_name}) crashed on the sample rows: {message}"
            break
    return DryRun(0, 0, 0, [], [Issue("dry-run", where, message)], error=message)


def _backend_names(spec_path: Path) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    backends = data.get("backends") if isinstance(data, dict) else None
    return [str(n) for n in backends] if isinstance(backends, dict) else []


def _usd(spec: Any, index: int, llm: dict[str, Any]) -> float | None:
    """The dry run's cost of one stage: the price of its backend (`dataflow_cli.cost.prices`),
    0 for models running here (local, vllm, fake), None when an API model's price is unknown."""
    stage = spec.stages[index]
    backend = spec.backends.get(stage.backend_name or "")
    if backend is None:
        return None
    config = backend[1]
    if config.provider not in ("openai", "litellm"):
        return 0.0
    try:
        from dataflow_cli.cost.prices import resolve_price
    except ImportError:  # an install without the cost module: the backend's own figure
        return llm.get("cost") or None
    price = resolve_price(config)
    if price is None:
        return None
    return price.cost(llm.get("prompt_tokens", 0), llm.get("completion_tokens", 0))


def _null_columns(out: Path, spec: Any) -> dict[str, list[str]]:
    """Stage name -> its output columns that are null in every output row."""
    import pyarrow.json as pj

    try:
        table = pj.read_json(out)
    except Exception:  # noqa: BLE001 - an unreadable dry-run output is reported by the rows count
        return {}
    found: dict[str, list[str]] = {}
    for stage in spec.stages:
        for column in stage.outputs.values():
            if (
                column in table.column_names
                and table.num_rows
                and table.column(column).null_count == table.num_rows
            ):
                found.setdefault(stage.name, []).append(column)
    return found
