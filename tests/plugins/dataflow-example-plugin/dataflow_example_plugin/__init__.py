"""Example third-party operators for dataflow."""
