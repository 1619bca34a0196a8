"""Exact and MinHash dedup computed on the cluster, deciding exactly as the local operators do.

Both keep the first row of a group in stream order (input batch, then row), so each row is
tagged with its position `(batch << 32) | row` and "first" is the smallest position.

* `exact_dedup_filter`: workers hash each row's key (the operator's own `row_keys`, BLAKE2b 128
  bits, as locally); a hash shuffle (`repartition(keys=...)`) brings equal hashes together, and
  each partition names its duplicates and the `_id` of their first row. Only the duplicates reach
  the driver.
* `minhash_dedup_filter`: workers compute signatures, band hashes and b-bit sketches with the
  operator's own functions; band rows are hash-shuffled by (band, hash) and each partition forms
  candidate pairs with the operator's `group_pairs` (each member with the first and with its
  predecessor). The driver takes the candidate pairs and the sketches of the documents in them,
  only, and runs the operator's verification and clustering (`estimated_jaccard`,
  `representatives` / `union_roots`) on those documents renumbered in stream order, which is
  the same decision as over all documents: a document in no pair is always kept.

Each batch's verdict is then saved as the local executor saves it, and the main pass replays it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflow_cli.engine.ray_workers import BATCH

if TYPE_CHECKING:
    from dataflow_cli.engine.ray_executor import RayExecutor
    from dataflow_cli.spec.model import Stage

POSITION = "_pos"  # (batch << 32) | row: stream order, as one integer


def for_operator(operator: Any):
    """The distributed implementation of a global operator, or None (then the driver runs it)."""
    return {"exact_dedup_filter": exact_dedup, "minhash_dedup_filter": minhash_dedup}.get(operator.name)


def _partitions(executor: RayExecutor) -> int:
    return max(2, 2 * int(executor.ray.cluster_resources().get("CPU", 1)))


def _positions(table: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """Real rows of a block (placeholders of emptied batches dropped) and their positions."""
    tags = table.column(BATCH).to_numpy()
    if (tags < 0).any():
        table = table.filter(pa.array(tags >= 0))
        tags = tags[tags >= 0]
    rows = np.zeros(len(tags), np.int64)
    if len(tags):
        starts = np.flatnonzero(np.concatenate([[True], tags[1:] != tags[:-1]]))
        counts = np.diff(np.append(starts, len(tags)))
        rows = np.arange(len(tags)) - np.repeat(starts, counts)
    return (tags.astype(np.int64) << 32) | rows, table


def _batch_sizes(executor: RayExecutor, dataset) -> list[int]:
    """Rows each batch has when it reaches the stage (0 for a batch emptied upstream)."""
    sizes = [0] * len(executor._sizes)
    for block in dataset.select_columns([POSITION]).iter_batches(batch_size=None, batch_format="pyarrow"):
        batches, counts = np.unique(block.column(POSITION).to_numpy() >> 32, return_counts=True)
        for b, c in zip(batches.tolist(), counts.tolist(), strict=True):
            sizes[b] += c
    return sizes


def _save_verdicts(
    executor: RayExecutor,
    k: int,
    stage: Stage,
    sizes: list[int],
    dropped: dict[int, tuple[list, list]],
    reason: str,
) -> None:
    """One verdict per batch, from the dropped rows `{batch: (rows, details)}`."""
    from dataflow_cli.engine.delta import make_delta
    from dataflow_cli.operator import Verdict

    for i, n in enumerate(sizes):
        keep = np.ones(n, bool)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for row, detail in zip(*dropped.get(i, ([], [])), strict=True):
            keep[row] = False
            reasons[row] = reason
            details[row] = detail
        verdict = Verdict(
            keep=keep, reason=pa.array(reasons, pa.string()), detail=pa.array(details, pa.string())
        )
        placeholder = pa.table({"_id": pa.nulls(n, pa.string())})
        executor.store.save(k, i, make_delta(stage, placeholder, verdict))


# ------------------------------------------------------------------------------ exact


def _exact_keys(table: pa.Table, columns: list[str], normalize: bool) -> pa.Table:
    from hashlib import blake2b

    from dataflow_operators.text.exact_dedup import row_keys

    positions, table = _positions(table)
    keys = row_keys([table.column(c).combine_chunks() for c in columns], normalize)
    digests = [blake2b(key, digest_size=16).digest() for key in keys.to_pylist()]
    return pa.table({POSITION: positions, "_id": table.column("_id"), "_h": pa.array(digests, pa.binary(16))})


def _exact_duplicates(table: pa.Table) -> pa.Table:
    """Within one hash partition: every row whose hash an earlier row has, with that row's `_id`."""
    empty = pa.table({POSITION: pa.array([], pa.int64()), "_first": pa.array([], pa.string())})
    if table.num_rows < 2:
        return empty
    table = table.sort_by([("_h", "ascending"), (POSITION, "ascending")])
    h = table.column("_h").combine_chunks()
    same = pc.equal(h.slice(1), h.slice(0, len(h) - 1)).to_numpy(zero_copy_only=False)
    if not same.any():
        return empty
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    first = np.repeat(starts, np.diff(np.append(starts, len(h))))
    later = np.flatnonzero(np.concatenate([[False], same]))
    ids = table.column("_id").combine_chunks()
    return pa.table(
        {
            POSITION: table.column(POSITION).combine_chunks().take(pa.array(later)),
            "_first": ids.take(pa.array(first[later])),
        }
    )


def exact_dedup(executor: RayExecutor, k: int, stage: Stage, upstream) -> None:
    op = stage.operator
    params: Any = op.params
    columns = list(params.columns)
    keyed = (
        upstream.select_columns([BATCH, "_id", *columns])
        .map_batches(
            _exact_keys,
            fn_kwargs={"columns": columns, "normalize": params.normalize},
            batch_size=None,
            batch_format="pyarrow",
        )
        .materialize()  # small (position, id, 16-byte hash): read twice below
    )
    sizes = _batch_sizes(executor, keyed)
    duplicates = keyed.repartition(_partitions(executor), keys=["_h"]).map_batches(
        _exact_duplicates, batch_size=None, batch_format="pyarrow"
    )
    dropped: dict[int, tuple[list, list]] = {}
    for block in duplicates.iter_batches(batch_size=None, batch_format="pyarrow"):
        for position, first in zip(
            block.column(POSITION).to_pylist(), block.column("_first").to_pylist(), strict=True
        ):
            rows, details = dropped.setdefault(position >> 32, ([], []))
            rows.append(position & 0xFFFFFFFF)
            details.append(f"duplicate of _id {first}")
    _save_verdicts(executor, k, stage, sizes, dropped, "duplicate")


# ------------------------------------------------------------------------------ MinHash


def _minhash_signatures(table: pa.Table, op_params: dict, text_column_name: str) -> pa.Table:
    from dataflow_operators._lib.arrow import text_column
    from dataflow_operators.text.minhash_dedup import _SKETCH_BITS, MinhashDedupFilter, band_hashes

    from dataflow_cli.operator import Batch

    op = MinhashDedupFilter(MinhashDedupFilter.Params(**op_params), inputs={"text": text_column_name})
    positions, table = _positions(table)
    text = text_column(Batch(table, op.input_columns), "text")
    has, sigs = op.signatures(text)
    bands, rows = op.bands_rows
    n = table.num_rows
    band_values = np.zeros((n, bands), np.uint64)
    sketch = np.zeros((n, op.params.num_perm), np.uint8)
    shingled = np.zeros(n, bool)
    shingled[has] = True
    if len(has):
        band_values[has] = band_hashes(sigs, bands, rows)
        sketch[has] = (sigs & np.uint32((1 << _SKETCH_BITS) - 1)).astype(np.uint8)
    return pa.table(
        {
            POSITION: positions,
            "_id": table.column("_id"),
            "_has": shingled,
            "_bands": pa.FixedSizeListArray.from_arrays(pa.array(band_values.ravel()), bands),
            "_sketch": pa.array([row.tobytes() for row in sketch], pa.binary(op.params.num_perm)),
        }
    )


def _band_rows(table: pa.Table) -> pa.Table:
    """One row per (document with shingles, band): the shuffle's input."""
    has = table.column("_has").to_numpy(zero_copy_only=False)
    positions = table.column(POSITION).to_numpy()[has]
    bands = table.column("_bands").combine_chunks()
    width = bands.type.list_size
    values = bands.flatten().to_numpy().reshape(-1, width)[has]
    return pa.table(
        {
            "_band": np.tile(np.arange(width, dtype=np.int32), len(positions)),
            "_hash": values.ravel(),
            POSITION: np.repeat(positions, width),
        }
    )


def _band_pairs(table: pa.Table) -> pa.Table:
    """Candidate pairs of one hash partition, by the operator's own pairing rule."""
    from dataflow_operators._lib.neardup import group_pairs

    band = table.column("_band").to_numpy()
    hashes = table.column("_hash").to_numpy()
    members = table.column(POSITION).to_numpy()
    lefts, rights = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for j in np.unique(band).tolist():
        mask = band == j
        left, right = group_pairs(hashes[mask], members[mask])
        lefts.append(left)
        rights.append(right)
    return pa.table({"_left": np.concatenate(lefts), "_right": np.concatenate(rights)})


def _involved(table: pa.Table, members: Any) -> pa.Table:
    positions = table.column(POSITION).to_numpy()
    return table.select([POSITION, "_id", "_sketch"]).filter(pa.array(np.isin(positions, members)))


def minhash_dedup(executor: RayExecutor, k: int, stage: Stage, upstream) -> None:
    from dataflow_operators._lib.neardup import union_roots, unique_pairs
    from dataflow_operators.text.minhash_dedup import estimated_jaccard, representatives

    op = stage.operator
    p: Any = op.params
    column = op.input_columns["text"]
    signed = (
        upstream.select_columns([BATCH, "_id", column])
        .map_batches(
            _minhash_signatures,
            fn_kwargs={"op_params": p.model_dump(), "text_column_name": column},
            batch_size=None,
            batch_format="pyarrow",
        )
        .materialize()  # about 0.5 KB per document, as the local operator keeps
    )
    sizes = _batch_sizes(executor, signed)
    pairs = (
        signed.map_batches(_band_rows, batch_size=None, batch_format="pyarrow")
        .repartition(_partitions(executor), keys=["_band", "_hash"])
        .map_batches(_band_pairs, batch_size=None, batch_format="pyarrow")
    )
    lefts, rights = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for block in pairs.iter_batches(batch_size=None, batch_format="pyarrow"):
        lefts.append(block.column("_left").to_numpy())
        rights.append(block.column("_right").to_numpy())
    left, right = np.concatenate(lefts), np.concatenate(rights)
    dropped: dict[int, tuple[list, list]] = {}
    if len(left):
        members = np.unique(np.concatenate([left, right]))  # sorted: stream order
        left, right = unique_pairs(np.searchsorted(members, left), np.searchsorted(members, right))
        found = signed.map_batches(
            _involved, fn_kwargs={"members": members}, batch_size=None, batch_format="pyarrow"
        )
        ids = np.empty(len(members), object)
        sketches = np.zeros((len(members), p.num_perm), np.uint8)
        for block in found.iter_batches(batch_size=None, batch_format="pyarrow"):
            at = np.searchsorted(members, block.column(POSITION).to_numpy())
            ids[at] = block.column("_id").to_pylist()
            raw = b"".join(block.column("_sketch").to_pylist())
            sketches[at] = np.frombuffer(raw, np.uint8).reshape(len(at), p.num_perm)
        if p.verify:
            similar = estimated_jaccard(sketches, left, right) >= p.threshold
            left, right = left[similar], right[similar]
            roots = representatives(len(members), left, right, sketches, p.threshold)
        else:
            roots = union_roots(len(members), left, right)
        for c in np.flatnonzero(roots != np.arange(len(members))).tolist():
            rows, details = dropped.setdefault(int(members[c] >> 32), ([], []))
            rows.append(int(members[c] & 0xFFFFFFFF))
            details.append(f"near-duplicate of _id {ids[roots[c]]}")
    _save_verdicts(executor, k, stage, sizes, dropped, "near-duplicate")
