"""Turn a spec file into the `Spec` the engine runs: load, override, interpolate, check, build.

`spec.validate` checks what can be checked on the document; this module constructs each stage's
operator from what passed and reports what only a constructed operator can tell (a missing
prompt, a template that does not compile), then runs the column-flow check over the built
stages. Every problem is collected and raised at once as `SpecErrors`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

from dataflow_cli.engine.gates import parse_checks
from dataflow_cli.errors import DataflowError, SpecError
from dataflow_cli.spec.loader import apply_override, interpolate, load_document
from dataflow_cli.spec.model import DEFAULT_BATCH_SIZE, Issue, Spec, SpecErrors, Stage
from dataflow_cli.spec.validate import (
    CheckedStage,
    Collector,
    check_backends,
    check_column_flow,
    check_input,
    check_output,
    check_stages,
    check_structure,
)

if TYPE_CHECKING:
    from dataflow_cli.llm.operator import LLMOperator


def load_spec(path: Path, overrides: list[str] | tuple[str, ...] = (), *, check_columns: bool = True) -> Spec:
    """Load, override, interpolate, validate and build a spec; raise `SpecErrors` listing every
    problem. `check_columns=False` skips the column-flow check."""
    doc = load_document(path)
    for assignment in overrides:
        apply_override(doc, assignment)
    out = Collector(doc)
    as_written = copy.deepcopy(doc.data)  # before ${VAR}: secrets must not reach the run dir
    for location, where, message, unresolved in interpolate(doc):
        out.issues.append(Issue(location, where, message))
        out.unresolved.add(unresolved)
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError(
            "the spec must be a mapping of keys (version, name, input, ...)", location=doc.locate(())
        )

    check_structure(data, out)
    spec_dir = path.resolve().parent
    backends = check_backends(data, out)
    built = (build_stage(checked, out, spec_dir) for checked in check_stages(data, spec_dir, backends, out))
    stages = [stage for stage in built if stage is not None]
    input_paths, input_schema = check_input(data, spec_dir, out)
    output_path, rejects_path = check_output(data, spec_dir, input_paths, out)
    if check_columns and input_schema is not None:
        # Stages after one that could not be built are not checked: their columns would
        # depend on what the broken stage produces.
        buildable = [stage for i, stage in enumerate(stages) if stage.index == i]
        check_column_flow(buildable, input_schema, out)
    if out.issues:
        raise SpecErrors(out.issues, doc.file)

    source = data["input"]
    return Spec(
        file=path,
        name=data["name"],
        input_pattern=source["path"],
        input_paths=input_paths,
        output_path=output_path,
        rejects_path=rejects_path,
        batch_size=source.get("batch_size", DEFAULT_BATCH_SIZE),
        limit=source.get("limit"),
        stages=stages,
        input_schema=input_schema or {},
        resolved=as_written,
        backends={name: value for name, value in backends.items() if value is not None},
        internal_columns=data["output"].get("internal_columns", False),
        budget=dict(data.get("budget") or {}),
        executor=_executor(data.get("executor")),
    )


def build_stage(checked: CheckedStage, out: Collector, spec_dir: Path | None = None) -> Stage | None:
    """Construct the stage's operator; None (with the problem reported) if it refuses."""
    raw = checked.raw
    here = ("stages", checked.index)
    try:
        operator = checked.cls(checked.params, inputs=checked.inputs, outputs=checked.outputs)
        operator.prompt = checked.prompt_text
        operator.base_dir = spec_dir
        if operator.uses_llm and isinstance(operator, _llm_operator()):
            if not operator.template_text() and not getattr(operator.params, "messages_column", None):
                out.add(
                    here + ("op",),
                    f"`{raw['op']}` needs a prompt: set `prompt:`, `params.template` or `params.messages_column`",
                )
                return None
            operator.template_columns()  # a template syntax error surfaces here
    except DataflowError as exc:
        where = here + ("prompt",) if "template" in exc.reason and raw.get("prompt") else here + ("op",)
        out.add(where, exc.reason + (f" ({exc.hint})" if exc.hint else ""))
        return None
    backend = None
    if checked.backend:
        from dataflow_cli.llm.backends.base import config_fields

        backend = config_fields(checked.backend[1])
    return Stage(
        index=checked.index,
        name=raw["name"],
        op_name=raw["op"],
        operator=operator,
        backend=backend,
        backend_name=checked.backend_name,
        on_error=raw.get("on_error", "reject"),
        max_error_rate=raw.get("max_error_rate", 0.2),
        on_truncated=raw.get("on_truncated", "reject"),
        mode=raw.get("mode", "online"),
        batch_poll_interval=raw.get("batch_poll_interval", 30.0),
        processes=raw.get("processes", "auto"),
        expect=parse_checks(raw.get("expect")),
    )


def _executor(value: str | dict | None) -> dict:
    """`executor: ray` and `executor: {type: ray, ...}` alike, as the mapping."""
    if value is None:
        return {"type": "local"}
    return {"type": value} if isinstance(value, str) else dict(value)


def _llm_operator() -> type[LLMOperator]:
    from dataflow_cli.llm.operator import LLMOperator  # only specs with LLM stages pay for it

    return LLMOperator
