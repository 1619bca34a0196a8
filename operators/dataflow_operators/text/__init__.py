"""Text operators: quality signals, rule filters, refiners, PII, language ID, dedup, decontamination."""
