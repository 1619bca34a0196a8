"""LLM backends, registered under the entry-point group `dataflow.backends`."""
