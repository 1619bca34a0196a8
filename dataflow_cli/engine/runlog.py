"""The run directory's log and resolved spec."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import yaml

from dataflow_cli.spec.model import Spec


@contextlib.contextmanager
def run_logging(directory: Path, spec: Spec) -> Iterator[None]:
    """Log to `<run dir>/run.log` for the duration of a run, and save the resolved spec.

    The resolved spec has `--set` applied but keeps `${VAR}` references, so secrets taken
    from the environment are never written to disk.
    """
    from dataflow_cli.errors import DataflowError
    from dataflow_cli.io.writers import atomic_write_text
    from dataflow_cli.redact import RedactingFilter, redact_json

    try:
        directory.mkdir(parents=True, exist_ok=True)
        # Masked as data (e.g. a key written into a header), so the YAML quotes the mask.
        resolved = yaml.safe_dump(redact_json(spec.resolved), sort_keys=False, allow_unicode=True)
        atomic_write_text(directory / "spec.resolved.yaml", resolved)
        handler = logging.FileHandler(directory / "run.log", encoding="utf-8")
    except OSError as exc:
        raise DataflowError(
            f"cannot write the run directory `{directory}`: {exc.strerror or exc}",
            hint="pass --run-dir DIR with a writable directory",
        ) from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())  # an echoed API key must not reach the log
    logger = logging.getLogger("dataflow_cli")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.info("run of %s started", spec.file)
    try:
        yield
        logger.info("run finished")
    except BaseException as exc:
        logger.error("run failed: %s: %s", type(exc).__name__, exc)
        raise
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()
