"""The operator contract: one small base class and the four kinds.

An operator declares `name`, `kind`, logical `inputs`/`outputs`, a pydantic `Params` model and
implements one method over a `Batch` (an Arrow table seen through the stage's column bindings):

| kind     | method               | returns                                                  |
|----------|----------------------|----------------------------------------------------------|
| generate | `generate(batch)`    | `{output: values}` (same length) or `Fanout(...)`        |
| evaluate | `evaluate(batch)`    | `{output: values}` (same length); never drops rows       |
| filter   | `filter(batch)`      | `Verdict(keep, reason)`; dropped rows go to rejects      |
| refine   | `refine(batch)`      | `{input: values}`: rewrites bound input columns in place |

"values" is anything `pyarrow.array` accepts (an Arrow array, a numpy array, a list).

A row-local operator (`scope = "row"`) sees one batch at a time. A global operator
(`scope = "global"`) implements `process_all(batches)` instead: it receives every batch in order,
projected to the columns it needs, and yields one result per batch, in order. It must keep only
small per-row signatures, never the batches themselves, so memory stays proportional to those.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

KINDS = ("generate", "evaluate", "filter", "refine")
RESERVED_PREFIX = "_"  # column names _id, _stage, _reason, ... belong to the engine


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Port:
    """A logical input or output column of an operator."""

    description: str
    type: str = "string"  # Arrow type name of an output: string, int64, float64, bool, ...


@dataclass
class Verdict:
    """A filter's answer for a batch: `keep[i]` and, for each dropped row, why.

    `reason` is short and low-cardinality (it becomes a counter in the run stats, e.g.
    "chars < 10"); `detail`, optional, is per-row (e.g. "duplicate of _id 17") and is appended to
    the reason in the rejects file only.
    """

    keep: Any
    reason: Any
    detail: Any = None
    # A filter that declares outputs (e.g. what its check measured) gives them here for every
    # row: kept rows carry them on, dropped rows carry them into the rejects file.
    columns: dict[str, Any] | None = None


@dataclass
class Fanout:
    """A generator's answer when it emits 0..n rows per input row.

    `source_index[j]` is the position in the batch of the row that output row `j` came from.
    """

    columns: dict[str, Any]
    source_index: Any


@dataclass
class Partial:
    """Any kind's result when some rows failed (e.g. an LLM call or a parse did).

    `failed[i]` is a short reason for row i, or None if it succeeded; failed rows go to the
    rejects file with that reason and, when given, `raw[i]` (the model's text) in `_raw_output`.
    `result` is the kind's normal result; its values for failed rows are ignored. For a fan-out
    generator, `failed`/`raw` are per input row.
    """

    result: Any
    failed: list
    raw: list | None = None


@dataclass
class Batch:
    """Rows of one batch, addressed by the operator's logical input names."""

    table: pa.Table
    bindings: dict[str, str] = field(default_factory=dict)  # logical name -> column

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> pa.Array:
        """The Arrow array bound to logical input `name` (or a physical column name)."""
        col = self.table.column(self.bindings.get(name, name))
        if getattr(col, "num_chunks", 0) == 1:
            return col.chunk(0)  # combine_chunks would copy even a single chunk
        return col.combine_chunks() if hasattr(col, "combine_chunks") else col

    def values(self, name: str) -> list:
        """The same column as a Python list (None for nulls)."""
        return self.column(name).to_pylist()


class Operator:
    """Base class of every operator. Subclass one of the four kinds, not this."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    version: ClassVar[str] = "1"  # bump when behaviour changes: it invalidates checkpoints
    scope: ClassVar[str] = "row"  # "row" streams batch by batch; "global" sees every batch
    # A global operator whose `process_all` yields its result for a batch before it reads the
    # next one (e.g. exact dedup: the first occurrence in stream order wins). The executor then
    # runs it inside a later global stage's scan instead of a scan of its own.
    streaming: ClassVar[bool] = False
    inputs: ClassVar[dict[str, Port]] = {}
    outputs: ClassVar[dict[str, Port]] = {}
    requires: ClassVar[tuple[str, ...]] = ()  # extra pip packages, checked at construction
    uses_llm: ClassVar[bool] = False  # LLM operators get a backend bound before they run
    # True when the work is Python code per row (templates, regexes, parsers) that holds the GIL:
    # the engine may then run the stage in a pool of processes (see `engine/pool.py`). Vectorised
    # operators (Arrow, numpy, compiled loops) leave it False: threads already use every core.
    cpu_bound: ClassVar[bool] = False
    domain: ClassVar[str] = ""  # catalogue group of a plugin's operator (default: its distribution)
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(
        self,
        params: BaseModel | None = None,
        inputs: dict[str, str] | None = None,
        outputs: dict[str, str] | None = None,
    ):
        missing = [req for req in self.requires if not _installed(req)]
        if missing:
            from dataflow_cli.errors import DataflowError

            raise DataflowError(
                f"operator `{self.name}` needs {', '.join(f'`{m}`' for m in missing)}",
                hint=f"pip install {' '.join(missing)}",
            )
        self.params = params if params is not None else self.Params()
        self.prompt: str | None = None  # the stage's `prompt:` text, set by the spec loader
        # The spec file's folder, set by the spec loader: relative file params resolve against it.
        self.base_dir: Path | None = None
        # Unbound logical names map to columns of the same name.
        self.input_columns = {**{k: k for k in self.inputs}, **(inputs or {})}
        self.output_columns = {**{k: k for k in self.outputs}, **(outputs or {})}

    # Column flow, used by validation and planning. Operators whose columns depend on
    # their params (select, rename, templates, dedup keys) override these.
    def required_columns(self) -> list[str]:
        """Columns that must exist before this stage runs."""
        return list(self.input_columns.values())

    def active_outputs(self) -> list[str]:
        """Logical outputs this configuration produces (some depend on params)."""
        return list(self.outputs)

    def transform_schema(self, schema: dict[str, str]) -> dict[str, str]:
        """Columns (name -> Arrow type name) after this stage, given those before it."""
        out = dict(schema)
        if self.kind in ("generate", "evaluate", "filter"):
            for logical in self.active_outputs():
                out[self.output_columns[logical]] = self.outputs[logical].type
        return out

    def written_columns(self) -> list[str]:
        """Columns this stage creates or rewrites (checked against overwrites)."""
        if self.kind == "refine":
            return list(self.input_columns.values())
        return [self.output_columns[logical] for logical in self.active_outputs()]

    # Execution.
    def process(self, batch: Batch) -> Any:
        if self.scope == "global":
            raise TypeError(f"`{self.name}` is a global operator: call process_all(batches)")
        return getattr(self, self.kind)(batch)  # each kind's method is named after it

    def process_all(self, batches: Iterable[Batch]) -> Iterator[Any]:
        """Global operators override this; row-local ones stream through `process`."""
        raise NotImplementedError

    def run_limits(self) -> dict[str, Any] | None:
        """The limits untrusted content runs under in this stage (time, rows, memory), recorded
        in the run stats; None when the operator runs nothing untrusted."""
        return None

    def fingerprint_extra(self) -> dict[str, Any]:
        """Anything beyond params that changes this stage's output (e.g. the identity of a
        reference file it reads): part of the stage fingerprint, so a change reruns it."""
        return {}

    @classmethod
    def summary(cls) -> str:
        """First line of the docstring: what `operators list` shows."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


def _installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


class Generator(Operator):
    kind = "generate"

    def generate(self, batch: Batch) -> dict[str, Any] | Fanout:
        raise NotImplementedError


class Evaluator(Operator):
    kind = "evaluate"

    def evaluate(self, batch: Batch) -> dict[str, Any]:
        raise NotImplementedError


class Filter(Operator):
    kind = "filter"

    def filter(self, batch: Batch) -> Verdict:
        raise NotImplementedError


class Refiner(Operator):
    kind = "refine"

    def refine(self, batch: Batch) -> dict[str, Any]:
        raise NotImplementedError
