"""What the executor writes after a finished run: `report.html` in the run directory and the
data card beside the output. Neither may fail a run whose data is already written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataflow_cli.spec.model import Spec

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"


def write_report(run_dir: Path, stats: dict[str, Any] | None = None, target: Path | None = None) -> Path:
    """Render the report of `run_dir` to `target` (default: `<run_dir>/report.html`)."""
    from dataflow_cli.io.writers import atomic_write_text
    from dataflow_cli.redact import redact_json
    from dataflow_cli.report.html import render_html
    from dataflow_cli.report.model import build_report

    target = target or run_dir / REPORT_FILE
    atomic_write_text(target, render_html(redact_json(build_report(run_dir, stats))))
    return target


def write_run_artifacts(spec: Spec, run_dir: Path, stats: dict[str, Any]) -> list[Path]:
    """The report, and the data card when the run completed and wrote an output file (a run
    stopped by a failed gate gets its report: it shows why). A failure is logged
    (run.log and stderr) with its reason, never raised: the output is already committed."""
    written: list[Path] = []
    try:
        written.append(write_report(run_dir, stats))
    except Exception as exc:  # noqa: BLE001 - see docstring: must not fail a finished run
        log.warning("could not write the run report in `%s`: %s: %s", run_dir, type(exc).__name__, exc)
    if stats.get("status") != "complete":
        return written
    from dataflow_cli.report.card import card_paths, write_card

    if not stats.get("output"):
        # No row kept, so the executor removed an earlier run's output: its card would describe
        # a file that is gone.
        for stale in card_paths(spec.output_path):
            if stale.is_file():
                log.info("removing `%s` from an earlier run: this run wrote no output", stale)
                stale.unlink()
        return written
    try:
        written.extend(write_card(spec, stats, run_dir))
    except Exception as exc:  # noqa: BLE001 - as above
        log.warning(
            "could not write the data card beside `%s`: %s: %s", spec.output_path, type(exc).__name__, exc
        )
    return written
