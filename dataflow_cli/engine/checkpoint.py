"""The run directory: per-stage checkpoint shards, manifest, stats, resolved spec, log.

Layout (default `.dataflow/runs/<spec name>/`):

    lock                      held while a run is active (two runs never share a directory)
    manifest.json             stages with fingerprints, batches done, status
    spec.resolved.yaml        the spec after --set (secrets stay `${VAR}` references)
    stats.json, run.log
    stages/<NN>-<name>/<fingerprint>/batch-<i>.parquet    one delta per finished batch
    rejects/part-<i>.parquet  rejected rows of the current run, merged at the end

Every file is written to a temp name and renamed, so a SIGKILL leaves either the old file or
the new one. A shard that cannot be read (e.g. cut short by a power loss) counts as missing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataflow_cli.errors import DataflowError
from dataflow_cli.io.writers import atomic_write_text

log = logging.getLogger(__name__)


def write_scratch_parquet(table: pa.Table, path: Path) -> None:
    """Parquet for files only dataflow reads back (checkpoints, reject parts): fast to write.
    Dictionary encoding and statistics cost much CPU on unique texts and buy nothing here."""
    pq.write_table(table, path, compression="lz4", use_dictionary=False, write_statistics=False)


class RunDir:
    def __init__(self, root: Path, stage_names: list[str], fingerprints: list[str]):
        self.root = root
        self.stage_dirs = [
            root / "stages" / f"{i:02d}-{name}" / fp[:20]
            for i, (name, fp) in enumerate(zip(stage_names, fingerprints, strict=True))
        ]
        self._lock_file: Any = None

    # Lifecycle -------------------------------------------------------------------------
    def open(self, fresh: bool) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.root / "lock", "w")  # noqa: SIM115 - held for the whole run
        except OSError as exc:
            raise DataflowError(
                f"cannot create run directory `{self.root}`: {exc.strerror}", hint="pass --run-dir DIR"
            ) from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataflowError(
                f"another `dataflow run` is using `{self.root}`",
                hint="wait for it to finish, or pass a different --run-dir",
            ) from None
        if fresh:
            shutil.rmtree(self.root / "stages", ignore_errors=True)
        self._remove_stale_stage_dirs()
        shutil.rmtree(self.root / "rejects", ignore_errors=True)
        (self.root / "rejects").mkdir()
        for d in self.stage_dirs:
            d.mkdir(parents=True, exist_ok=True)
            for leftover in d.glob(".*.tmp-*"):
                leftover.unlink(missing_ok=True)

    def close(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _remove_stale_stage_dirs(self) -> None:
        """Checkpoints of fingerprints no longer in the spec can never be reused."""
        stages_root = self.root / "stages"
        if not stages_root.is_dir():
            return
        wanted = {d for d in self.stage_dirs} | {d.parent for d in self.stage_dirs}
        for stage_dir in stages_root.iterdir():
            if stage_dir not in wanted:
                shutil.rmtree(stage_dir, ignore_errors=True)
                continue
            for fp_dir in stage_dir.iterdir():
                if fp_dir not in wanted:
                    shutil.rmtree(fp_dir, ignore_errors=True)

    # Shards ----------------------------------------------------------------------------
    def shard_path(self, stage_index: int, batch_index: int) -> Path:
        return self.stage_dirs[stage_index] / f"batch-{batch_index:06d}.parquet"

    def load_shard(self, stage_index: int, batch_index: int) -> pa.Table | None:
        path = self.shard_path(stage_index, batch_index)
        if not path.exists():
            return None
        try:
            # One small local file: ParquetFile skips `read_table`'s dataset discovery and
            # thread pool, ~2.5x less CPU per shard (shards are read per stage, batch and pass).
            with pq.ParquetFile(path) as shard:
                return shard.read(use_threads=False)
        except (OSError, pa.ArrowException) as exc:
            log.warning("ignoring unreadable checkpoint %s (%s); recomputing", path, exc)
            return None

    def save_shard(self, stage_index: int, batch_index: int, delta: pa.Table) -> None:
        path = self.shard_path(stage_index, batch_index)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        write_scratch_parquet(delta, tmp)
        os.replace(tmp, path)

    def rejects_part(self, batch_index: int) -> Path:
        return self.root / "rejects" / f"part-{batch_index:06d}.parquet"

    # Metadata --------------------------------------------------------------------------
    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        from dataflow_cli.redact import redact_json

        text = json.dumps(payload, indent=2, sort_keys=False, default=str)
        # Stats carry reasons and error texts: masked in parsed values, where escaping cannot hide them.
        atomic_write_text(self.root / name, json.dumps(redact_json(json.loads(text)), indent=2) + "\n")

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.root / name, text)
