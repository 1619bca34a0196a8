"""Generic prompted LLM operators; their default prompts live in `prompts/`."""
