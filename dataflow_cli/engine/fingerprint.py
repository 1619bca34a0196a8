"""Fingerprints decide what a resumed run may reuse.

A stage's fingerprint hashes everything that can change its output: operator name and version,
params, column bindings, prompt text, backend settings and the upstream fingerprint, which at
the root covers the input files' identity and the batching. Change any of them and that stage
and every later one get new fingerprints, so nothing stale is ever reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from dataflow_cli.spec.model import Spec, Stage

# Backend settings that change how answers are fetched, not what they are: tuning them must not
# throw away finished stages.
OPERATIONAL = frozenset(
    {"max_concurrency", "rpm", "tpm", "timeout", "max_retries", "backoff", "max_backoff", "cache", "price"}
)

# Bump when the checkpoint format or row-id scheme changes.
ENGINE_FORMAT = "1"


def _digest(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def input_identity(paths: list[Path]) -> list[dict[str, Any]]:
    """Path, size and modification time of each input file: cheap, and any edit changes it."""
    identity = []
    for path in paths:
        stat = path.stat()
        identity.append({"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return identity


def root_fingerprint(spec: Spec) -> str:
    return _digest(
        {
            "engine": ENGINE_FORMAT,
            "inputs": input_identity(spec.input_paths),
            "batch_size": spec.batch_size,
            "limit": spec.limit,
        }
    )


def stage_fingerprint(stage: Stage, upstream: str) -> str:
    op = stage.operator
    backend = {
        k: v for k, v in (stage.backend or {}).items() if "key" not in k.lower() and k not in OPERATIONAL
    }
    return _digest(
        {
            "upstream": upstream,
            "op": stage.op_name,
            "class": f"{type(op).__module__}.{type(op).__qualname__}",
            "version": op.version,
            "params": stage.params,
            "inputs": stage.inputs,
            "outputs": stage.outputs,
            "prompt": stage.prompt_text,
            "backend": backend,
            "extra": op.fingerprint_extra(),
            # Only when not the default, so the fingerprints of existing checkpoints stay valid.
            **({"on_truncated": stage.on_truncated} if stage.on_truncated != "reject" else {}),
        }
    )


def fingerprints(spec: Spec) -> list[str]:
    upstream = root_fingerprint(spec)
    out = []
    for stage in spec.stages:
        upstream = stage_fingerprint(stage, upstream)
        out.append(upstream)
    return out
