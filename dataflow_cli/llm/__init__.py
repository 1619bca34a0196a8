"""LLM request engine: backends, concurrency, rate limits, retries, cache, usage."""
