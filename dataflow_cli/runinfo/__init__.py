"""Read a finished (or stopped) run back from its run directory.

`RunInfo.load(run_dir)` gives the run's `stats.json`, `manifest.json` and `spec.resolved.yaml`,
each stage's checkpointed deltas, the rejected rows' ids and reasons, and the input batches with
the row ids the executor gave them, so any row's journey can be replayed: the deltas hold every
stage's decision, and `engine.delta.apply_delta` turns the batch before a stage into the batch
after it exactly as the run did. Used by `dataflow explain`, `dataflow diff` and the reports.

The executor records what a reader needs beyond the checkpoints in the manifest
(`input_record`, `stage_record`): the input files with their identity, and per stage its kind,
backend, model and prompt hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from dataflow_cli.errors import DataflowError

if TYPE_CHECKING:
    import pyarrow as pa

    from dataflow_cli.spec.model import Spec, Stage


class RunDirError(DataflowError):
    """The path given is not a run directory, or a row id is not in it: a usage error."""

    exit_code = 2


# What the executor writes into the manifest ---------------------------------------------------
def input_record(spec: Spec) -> dict[str, Any]:
    from dataflow_cli.engine.fingerprint import input_identity

    return {
        "paths": [str(p.resolve()) for p in spec.input_paths],
        "identity": input_identity(spec.input_paths),
        "batch_size": spec.batch_size,
        "limit": spec.limit,
    }


def stage_record(stage: Stage) -> dict[str, Any]:
    op = stage.operator
    out: dict[str, Any] = {"kind": stage.kind, "uses_llm": op.uses_llm}
    if op.uses_llm:
        template = op.template_text() if hasattr(op, "template_text") else stage.prompt_text
        out["backend"] = stage.backend_name
        out["model"] = (stage.backend or {}).get("model")
        out["prompt_sha256"] = hashlib.sha256(template.encode("utf-8")).hexdigest() if template else None
    return out


# Reading --------------------------------------------------------------------------------------
@dataclass
class StageInfo:
    index: int
    name: str
    op: str
    kind: str
    fingerprint: str
    directory: Path  # its checkpoints
    uses_llm: bool = False
    backend: str | None = None
    model: str | None = None
    prompt_sha256: str | None = None


@dataclass
class RunInfo:
    root: Path
    manifest: dict[str, Any]
    stats: dict[str, Any] | None
    spec: dict[str, Any] | None  # spec.resolved.yaml
    stages: list[StageInfo]

    @classmethod
    def load(cls, root: Path) -> RunInfo:
        root = Path(root)
        manifest_path = root / "manifest.json"
        if not manifest_path.is_file():
            what = "does not exist" if not root.exists() else "has no manifest.json"
            raise RunDirError(
                f"`{root}` is not a run directory: it {what}",
                hint="pass the --run-dir of a `dataflow run` (default `.dataflow/runs/<pipeline name>`)",
            )
        manifest = _read_json(manifest_path)
        stats = _read_json(root / "stats.json") if (root / "stats.json").is_file() else None
        spec = None
        if (root / "spec.resolved.yaml").is_file():
            import yaml

            spec = yaml.safe_load((root / "spec.resolved.yaml").read_text(encoding="utf-8"))
        kinds = {s["name"]: s.get("kind") for s in (stats or {}).get("stages", [])}
        stages = []
        for k, entry in enumerate(manifest.get("stages", [])):
            fp = entry["fingerprint"]
            stages.append(
                StageInfo(
                    index=k,
                    name=entry["name"],
                    op=entry["op"],
                    kind=entry.get("kind") or kinds.get(entry["name"]) or "",
                    fingerprint=fp,
                    # Rebuilt from the run dir as given: the manifest's path is relative to
                    # wherever the run was started.
                    directory=root / "stages" / f"{k:02d}-{entry['name']}" / fp[:20],
                    uses_llm=entry.get("uses_llm", False),
                    backend=entry.get("backend"),
                    model=entry.get("model"),
                    prompt_sha256=entry.get("prompt_sha256"),
                )
            )
        return cls(root, manifest, stats, spec, stages)

    @property
    def status(self) -> str:
        return (self.stats or {}).get("status") or self.manifest.get("status", "unknown")

    def stage_stats(self, name: str) -> dict[str, Any] | None:
        return next((s for s in (self.stats or {}).get("stages", []) if s["name"] == name), None)

    # Checkpoints ------------------------------------------------------------------------------
    def shard(self, k: int, i: int) -> pa.Table | None:
        import pyarrow.parquet as pq

        path = self.stages[k].directory / f"batch-{i:06d}.parquet"
        return pq.read_table(path) if path.is_file() else None

    def rejects(self, columns: tuple[str, ...] = ("_id", "_stage", "_reason")) -> pa.Table:
        """The run's rejected rows (from its reject parts), only `columns`."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = sorted((self.root / "rejects").glob("part-*.parquet"))
        tables = []
        for part in parts:
            names = pq.read_schema(part).names
            tables.append(pq.read_table(part, columns=[c for c in columns if c in names]))
        if not tables:
            return pa.table({c: pa.array([], pa.string()) for c in columns})
        return pa.concat_tables(tables, promote_options="permissive")

    # Input ------------------------------------------------------------------------------------
    def input_batches(self) -> Iterator[tuple[int, pa.Table]]:
        """The input batches with the `_id`s the run gave them."""
        from dataflow_cli.engine.fingerprint import input_identity
        from dataflow_cli.io.inputs import iter_batches, with_row_ids

        record = self.manifest.get("input")
        if not record:
            raise RunDirError(
                f"`{self.root}` was written by an older dataflow: its manifest does not name the input",
                hint="run the pipeline again (unchanged stages are reused), then retry",
            )
        paths = [Path(p) for p in record["paths"]]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataflowError(
                f"input file `{missing[0]}` of the run is gone", hint="rows are replayed from it"
            )
        if input_identity(paths) != record["identity"]:
            raise DataflowError(
                "the run's input changed since the run (size or modification time differ)",
                hint="run the pipeline again on the current input, then retry",
            )
        yield from with_row_ids(iter_batches(paths, record["batch_size"], record.get("limit")))

    def replay(
        self, i: int, table: pa.Table
    ) -> Iterator[tuple[StageInfo, pa.Table, pa.Table, pa.Table | None]]:
        """Batch `i` through every stage as the run did: (stage, delta, after, rejected) per stage.
        Stops at the first stage without a checkpoint for the batch (raises if none)."""
        from dataflow_cli.engine.delta import REASON_KEY, apply_delta

        for k, stage in enumerate(self.stages):
            delta = self.shard(k, i)
            if delta is None:
                if table.num_rows == 0:
                    return
                raise DataflowError(
                    f"stage `{stage.name}` has no checkpoint for batch {i}: the run did not finish it",
                    hint="run the pipeline again to complete it",
                )
            stand_in = SimpleNamespace(name=stage.name, operator=SimpleNamespace(kind=stage.kind))
            after, rejected = apply_delta(stand_in, table, delta)  # type: ignore[arg-type]
            if rejected is not None and REASON_KEY in rejected.column_names:
                rejected = rejected.drop_columns([REASON_KEY])
            yield stage, delta, after, rejected
            table = after


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataflowError(f"cannot read `{path}`: {exc}") from None


__all__ = ["RunDirError", "RunInfo", "StageInfo", "input_record", "stage_record"]
