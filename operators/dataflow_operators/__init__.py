"""The built-in operator library of dataflow, grouped by domain.

Every operator is registered through the `dataflow.operators` entry points in pyproject.toml,
exactly as a third-party plugin would be. `_lib` holds private shared helpers."""
