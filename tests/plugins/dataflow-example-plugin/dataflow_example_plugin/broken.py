"""An operator module that cannot be imported, to test how dataflow reports broken plugins."""

import dataflow_example_plugin_missing_dependency  # noqa: F401  (does not exist, on purpose)
