"""Private helpers shared by operator domains (not part of the public API)."""
