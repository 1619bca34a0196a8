"""Retrieval-augmented QA data: a BM25-indexed corpus, atomic and multi-hop questions verified against their documents."""
