"""Text-to-SQL operators: SQL and question generation, read-only execution, result equivalence, difficulty."""
