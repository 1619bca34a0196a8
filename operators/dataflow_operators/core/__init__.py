"""Domain-independent operators: columns, numeric thresholds, templates."""
