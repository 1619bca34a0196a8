"""Where the shipped schemas and ready pipelines live.

In a wheel they are inside the package (`dataflow_cli/_bundled/...`, see pyproject's
force-include); in a source checkout or editable install they are the repo's top-level folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    bundled = _PACKAGE / "_bundled" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


def schemas_dir() -> Path:
    return resource_dir("schemas")


def pipelines_dir() -> Path:
    return resource_dir("pipelines")
