"""`dataflow agent`: a request in, a validated, dry-run, explained pipeline spec out.

Retrieval (`retrieve`) and intent splitting (`intent`) are plain Python over the cached
operator catalogue: no model, no network, no heavy import.
"""
