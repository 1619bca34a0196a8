"""Running untrusted code and SQL under declared limits: isolation, time limits, verdicts."""
