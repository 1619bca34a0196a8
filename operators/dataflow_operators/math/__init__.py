"""Math reasoning data: question checks, solution generation, exact answer verification."""
