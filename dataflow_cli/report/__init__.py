"""What a run did, for people: the HTML run report and the data card beside the output.

Both are built as plain dicts first (`report.model`, `report.card`) and rendered from them, so
`dataflow report --json` prints exactly what the HTML shows. Numbers come from `stats.json`
unchanged; the only data read besides it are a few sample rows and the input files' hashes.
"""

from __future__ import annotations

from dataflow_cli.report.finish import write_run_artifacts

__all__ = ["write_run_artifacts"]
