"""Benchmark decontamination: drop rows sharing a word n-gram with a reference set."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.errors import DataflowError
from dataflow_cli.io.inputs import iter_batches
from dataflow_cli.io.paths import expand_inputs
from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column
from dataflow_operators._lib.neardup import MAX_NGRAM, chunks, shingle

_READ_BATCH = 10_000


class ReferenceGrams:
    """The distinct n-gram hashes of a reference set, sorted, each with the first reference row
    holding it (12 bytes per distinct n-gram)."""

    def __init__(self, hashes: np.ndarray, rows: np.ndarray, ids: list[pa.Array] | None = None):
        self.hashes = hashes
        self.rows = rows
        self.ids = pa.concat_arrays(ids) if ids else None  # values of `reference_id_column`

    def label(self, row: int) -> str:
        """How a detail names reference row `row`."""
        return f"row {row}" if self.ids is None else f"id {self.ids[row].as_py()}"

    @classmethod
    def load(cls, params: NgramDecontamFilter.Params) -> ReferenceGrams:
        paths = expand_inputs(params.reference, Path.cwd())
        hashes, rows, ids = [], [], []
        offset = 0
        for table in iter_batches(paths, _READ_BATCH):
            for column in filter(None, (params.reference_column, params.reference_id_column)):
                if column not in table.column_names:
                    raise DataflowError(
                        f"reference `{params.reference}` has no column `{column}`",
                        hint=f"its columns are {', '.join(f'`{c}`' for c in table.column_names)}",
                    )
            text = text_column(Batch(table), params.reference_column)
            if params.reference_id_column:
                ids.append(table.column(params.reference_id_column).combine_chunks())
            for start, stop in chunks(text):
                sh = shingle(text.slice(start, stop - start), "word", params.ngram, params.normalize)
                hashes.append(sh.hashes)
                rows.append(
                    np.repeat(np.arange(start, stop, dtype=np.uint32) + offset, sh.counts).astype(np.uint32)
                )
            offset += len(text)
        if not hashes:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint32), ids)
        all_hashes = np.concatenate(hashes)
        all_rows = np.concatenate(rows)
        distinct, first = np.unique(all_hashes, return_index=True)  # first: earliest reference row
        return cls(distinct, all_rows[first], ids)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """For each hash, the reference row holding it, or -1."""
        if len(self.hashes) == 0:
            return np.full(len(hashes), -1, np.int64)
        position = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        found = self.hashes[position] == hashes
        return np.where(found, self.rows[position].astype(np.int64), -1)


class NgramDecontamFilter(Filter):
    """Drop rows that share a word n-gram with any item of a reference set (benchmark decontamination).

    Every reference item and every row is normalized (lowercase, punctuation and symbols to
    spaces, whitespace collapsed) and cut into word n-grams of `ngram` words (13 by default, as
    commonly used for decontamination); an item or row shorter than that is one n-gram of all its
    words, so it only matches an equally short text. A row sharing any n-gram with the reference is
    dropped with reason "contaminated" and a detail naming the reference item (`row <index>` from
    0, or `id <value>` with `reference_id_column`) and the shared n-gram, e.g.
    `reference row 12: "the quick brown fox ..."`. A null or empty row is kept.

    The reference is read once, when the first batch arrives (not at construction, so
    `dataflow validate` stays fast), into a sorted array of 64-bit n-gram hashes (12 bytes per
    distinct n-gram with the reference row). A relative path is resolved against the spec file's
    folder, like every path of a spec (the current directory when used outside a spec).
    The stage fingerprint covers the params, not the reference file's content: after editing the
    reference file in place, rerun with `--fresh`.

    Inputs:
        text: the text to check.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        reference: path or glob of the reference set (JSONL, JSON, Parquet or CSV), relative to the
            spec file's folder.
        reference_column: the reference column holding the text (default "text").
        reference_id_column: a reference column naming each item in details (default: the row index).
        ngram: words per n-gram (default 13).
        normalize: lowercase and strip punctuation and symbols before comparing (default true).
    """

    name = "ngram_decontam_filter"
    inputs = {"text": Port("text to check against the reference")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        reference: str = Field(
            min_length=1,
            description="Path or glob of the reference set (.jsonl, .json, .parquet or .csv), "
            "relative to the spec file's folder.",
        )
        reference_column: str = Field("text", min_length=1, description="Reference column holding the text.")
        reference_id_column: str | None = Field(
            None,
            min_length=1,
            description="Reference column naming each item in details (default: row index).",
        )
        ngram: int = Field(13, ge=1, le=MAX_NGRAM, description="Words per n-gram.")
        normalize: bool = Field(
            True, description="Lowercase, turn punctuation and symbols into spaces and collapse whitespace."
        )

    def __init__(self, params=None, inputs=None, outputs=None):
        super().__init__(params, inputs, outputs)
        self._reference: ReferenceGrams | None = None
        self._lock = threading.Lock()

    def fingerprint_extra(self) -> dict:
        from dataflow_cli.engine.fingerprint import input_identity
        from dataflow_cli.io.paths import expand_inputs

        try:
            return {"reference": input_identity(expand_inputs(self._located().reference, Path.cwd()))}
        except DataflowError:
            return {"reference": self.params.reference}  # reported when the stage runs

    def _located(self) -> NgramDecontamFilter.Params:
        """The params with a relative `reference` resolved against the spec file's folder."""
        if self.base_dir is None or Path(self.params.reference).expanduser().is_absolute():
            return self.params
        return self.params.model_copy(update={"reference": str(Path(self.base_dir) / self.params.reference)})

    @property
    def reference(self) -> ReferenceGrams:
        """The reference n-grams, read on first use (batches may arrive on two threads)."""
        with self._lock:
            if self._reference is None:
                self._reference = ReferenceGrams.load(self._located())
            return self._reference

    def filter(self, batch: Batch) -> Verdict:
        reference = self.reference
        text = text_column(batch, "text")
        n = len(text)
        keep = np.ones(n, bool)
        details: list[str | None] = [None] * n
        for start, stop in chunks(text):
            sh = shingle(text.slice(start, stop - start), "word", self.params.ngram, self.params.normalize)
            rows = reference.lookup(sh.hashes)
            hits = np.flatnonzero(rows >= 0)
            if len(hits) == 0:
                continue
            docs = np.searchsorted(sh.offsets, hits, side="right") - 1
            docs, first = np.unique(docs, return_index=True)
            for doc, k in zip(docs.tolist(), hits[first].tolist(), strict=True):
                keep[start + doc] = False
                details[start + doc] = f'reference {reference.label(int(rows[k]))}: "{sh.excerpt(k, 100)}"'
        return Verdict(
            keep=keep,
            reason=pa.array([None if d is None else "contaminated" for d in details], pa.string()),
            detail=pa.array(details, pa.string()),
        )
