"""Planning, streaming execution, checkpoints and run statistics."""
