"""Checkpoints of a Ray run, on a location every machine of the cluster can reach.

The layout is the local run directory's (see `checkpoint.py`), so a run started locally can be
resumed on Ray and the other way round when both use the same directory:

    stages/<NN>-<name>/<fingerprint>/batch-<i>.parquet    one delta per finished batch
    stages/<NN>-<name>/<fingerprint>/complete.json         a global stage's decisions are all saved
    rejects/part-<i>-<k>.parquet                           rows stage k rejected from batch i (this run)

The root is a local path or any `pyarrow.fs` URI (`file:///shared/run`, `s3://bucket/run`,
`gs://...`, `hdfs://...`). A shard is written under a temporary name and moved into place, so a
worker killed mid-write leaves no half shard under the final name (on object stores the final
object appears whole or not at all).
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

COMPLETE = "complete.json"


def open_filesystem(location: str | Path) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path inside it) of a local path or a `pyarrow.fs` URI."""
    text = str(location)
    if "://" in text:
        try:
            return pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            from dataflow_cli.errors import SpecError

            raise SpecError(
                f"cannot open checkpoint location `{text}`: {exc}",
                hint="use a local path or a URI pyarrow.fs understands (file://, s3://, gs://, hdfs://)",
            ) from None
    return pafs.LocalFileSystem(), str(Path(text).resolve())


class ShardStore:
    """Stage deltas and reject parts under one root; picklable, so workers carry it."""

    def __init__(self, location: str | Path, stage_dirs: list[str]):
        self.fs, self.root = open_filesystem(location)
        # Workers unpickle the store in their own working directory: a local path goes absolute.
        self.location = str(location) if "://" in str(location) else self.root
        self.stage_dirs = [f"{self.root}/{d}" for d in stage_dirs]  # relative `stages/NN-name/fp`

    def __reduce__(self) -> tuple[Any, ...]:
        root = len(self.root) + 1
        return (ShardStore, (self.location, [d[root:] for d in self.stage_dirs]))

    # Lifecycle (driver) -------------------------------------------------------------------
    def open(self, fresh: bool) -> None:
        stages = f"{self.root}/stages"
        if fresh:
            self._delete_dir(stages)
        wanted = set(self.stage_dirs) | {d.rsplit("/", 1)[0] for d in self.stage_dirs}
        for info in self._list(stages):
            if info.path not in wanted:  # checkpoints of a fingerprint no longer in the spec
                self._delete_dir(info.path)
                continue
            for fp in self._list(info.path):
                if fp.path not in wanted:
                    self._delete_dir(fp.path)
        self._delete_dir(f"{self.root}/rejects")
        self.fs.create_dir(f"{self.root}/rejects", recursive=True)
        for d in self.stage_dirs:
            self.fs.create_dir(d, recursive=True)
            for leftover in self._list(d):
                if leftover.base_name.startswith("."):  # a temp shard of a killed worker
                    self.fs.delete_file(leftover.path)

    def _list(self, path: str) -> list[pafs.FileInfo]:
        info = self.fs.get_file_info(path)
        if info.type != pafs.FileType.Directory:
            return []
        return self.fs.get_file_info(pafs.FileSelector(path))

    def _delete_dir(self, path: str) -> None:
        if self.fs.get_file_info(path).type == pafs.FileType.Directory:
            self.fs.delete_dir(path)

    # Shards (workers) ---------------------------------------------------------------------
    def shard_path(self, stage: int, batch: int) -> str:
        return f"{self.stage_dirs[stage]}/batch-{batch:06d}.parquet"

    def load(self, stage: int, batch: int) -> pa.Table | None:
        path = self.shard_path(stage, batch)
        try:
            return pq.read_table(path, filesystem=self.fs)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowException) as exc:
            log.warning("ignoring unreadable checkpoint %s (%s); recomputing", path, exc)
            return None

    def save(self, stage: int, batch: int, delta: pa.Table) -> None:
        self._write(self.shard_path(stage, batch), delta)

    def _write(self, path: str, table: pa.Table) -> None:
        directory, name = path.rsplit("/", 1)
        tmp = f"{directory}/.{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # Same settings as `checkpoint.write_scratch_parquet`: files only dataflow reads back.
        with self.fs.open_output_stream(tmp) as stream:
            pq.write_table(table, stream, compression="lz4", use_dictionary=False, write_statistics=False)
        self.fs.move(tmp, path)

    def is_complete(self, stage: int) -> bool:
        return self.fs.get_file_info(f"{self.stage_dirs[stage]}/{COMPLETE}").type == pafs.FileType.File

    def mark_complete(self, stage: int, batches: int) -> None:
        path = f"{self.stage_dirs[stage]}/{COMPLETE}"
        with self.fs.open_output_stream(path) as stream:
            stream.write(f'{{"batches": {batches}}}'.encode())

    # Rejects ------------------------------------------------------------------------------
    def save_rejects(self, batch: int, stage: int, table: pa.Table) -> None:
        self._write(f"{self.root}/rejects/part-{batch:06d}-{stage:03d}.parquet", table)

    def reject_parts(self) -> list[str]:
        """Reject parts in (batch, stage) order: the local executor's order of rejected rows."""
        return sorted(
            info.path
            for info in self._list(f"{self.root}/rejects")
            if info.base_name.startswith("part-") and info.base_name.endswith(".parquet")
        )

    def read(self, path: str) -> pa.Table:
        return pq.read_table(path, filesystem=self.fs)

    def read_schema(self, path: str) -> pa.Schema:
        with self.fs.open_input_file(path) as handle:
            return pq.read_schema(handle)
