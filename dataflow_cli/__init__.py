"""dataflow: declarative, streaming, resumable pipelines that turn raw data into LLM training data."""

__version__ = "0.1.0"
