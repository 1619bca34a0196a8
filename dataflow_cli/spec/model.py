"""The validated spec: what the engine runs. Built only by `spec.build.load_spec`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataflow_cli.errors import SpecError

if TYPE_CHECKING:
    from dataflow_cli.operator import Operator

DEFAULT_BATCH_SIZE = 10_000


@dataclass
class Stage:
    """One configured operator in a pipeline, with what the engine needs around it.

    The operator is the one source of its params, column bindings and prompt: the properties
    below read them from it, so the executor, the fingerprint and the operator never disagree.
    """

    index: int
    name: str
    op_name: str
    operator: Operator  # configured with params, column bindings and the stage's prompt
    backend: dict[str, Any] | None = None  # the backend's validated config (no secrets in it)
    backend_name: str | None = None
    on_error: str = "reject"
    max_error_rate: float = 0.2
    on_truncated: str = "reject"  # an answer cut off by max_tokens: reject the row, or keep the text
    mode: str = "online"  # batch: requests go through the provider's Batch API (llm/batch.py)
    batch_poll_interval: float = 30.0  # longest wait between two status checks of a batch job
    expect: list[Any] = field(default_factory=list)  # quality gates (`engine.gates.Check`)
    processes: int | str = "auto"  # worker processes of a row-local stage (`engine/pool.py`)

    @property
    def params(self) -> dict[str, Any]:
        """The validated params as JSON values (for fingerprints and the resolved spec)."""
        return self.operator.params.model_dump(mode="json")

    @property
    def inputs(self) -> dict[str, str]:
        """Logical input name -> column (unbound names map to a column of the same name)."""
        return self.operator.input_columns

    @property
    def outputs(self) -> dict[str, str]:
        """Logical output name -> column."""
        return self.operator.output_columns

    @property
    def prompt_text(self) -> str | None:
        """The stage's `prompt:` text, if it names one."""
        return self.operator.prompt

    @property
    def kind(self) -> str:
        return self.operator.kind

    @property
    def is_global(self) -> bool:
        return self.operator.scope == "global"


@dataclass
class Spec:
    file: Path
    name: str
    input_pattern: str
    input_paths: list[Path]
    output_path: Path
    rejects_path: Path
    batch_size: int
    limit: int | None
    stages: list[Stage]
    input_schema: dict[str, str]
    resolved: dict[str, Any] = field(default_factory=dict)  # the spec after --set, ${VAR}s kept
    internal_columns: bool = False  # write the engine's `_id`/`_parent_id` into the output too
    backends: dict[str, Any] = field(default_factory=dict)  # name -> (backend class, validated config)
    budget: dict[str, float] = field(default_factory=dict)  # max_usd / max_tokens / max_requests set
    # `executor:` as a mapping: {type: local|ray, address?, checkpoint_dir?} (a bare name becomes {type})
    executor: dict[str, Any] = field(default_factory=lambda: {"type": "local"})


@dataclass(frozen=True)
class Issue:
    """One validation problem, printed as `location: path: message`."""

    location: str
    path: str
    message: str

    def sort_key(self) -> tuple:
        file, line, col = (self.location.split(":") + ["", "", ""])[:3]
        return (
            not self.location.startswith("--set"),
            file,
            int(line) if line.isdigit() else 0,
            int(col) if col.isdigit() else 0,
            self.path,
        )

    def render(self) -> str:
        return f"{self.location}: {self.path}: {self.message}"


class SpecErrors(SpecError):
    """All problems found in a spec, reported together."""

    def __init__(self, issues: list[Issue], file: str):
        self.issues = sorted(set(issues), key=Issue.sort_key)
        count = len(self.issues)
        super().__init__(
            f"{count} error{'s' if count != 1 else ''} in `{file}`",
            hint="fix the errors above, then run `dataflow validate` again",
        )

    def render(self) -> str:
        lines = [issue.render() for issue in self.issues]
        lines.append(f"{self.reason}\n  hint: {self.hint}")
        return "\n".join(lines)
