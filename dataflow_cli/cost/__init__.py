"""Cost: prices per backend, budgets that stop a run cleanly, and `dataflow estimate`."""
