"""One module per command; each parses arguments and calls the engine."""
