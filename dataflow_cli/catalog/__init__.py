"""The operator catalogue: every installed operator described for people (`operators list`,
`show`, `docs/operators.md`) and for search (`operators search`, the agent).

Describing operators imports their modules, so `index` caches the descriptions; commands that
list or search read the cache and import no operator, `operators show` imports the one it shows.
"""

from __future__ import annotations

# The same as `dataflow_cli.operator.KINDS` (a test pins it): importing that module costs
# pydantic, which a cached listing does not otherwise need.
KINDS = ("generate", "evaluate", "filter", "refine")

from dataflow_cli.catalog.describe import describe, example_stage  # noqa: E402
from dataflow_cli.catalog.index import describe_all  # noqa: E402
from dataflow_cli.catalog.search import search  # noqa: E402

__all__ = ["KINDS", "describe", "describe_all", "example_stage", "search"]
