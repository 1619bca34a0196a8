"""Running untrusted code and SQL under declared limits: isolation, time limits, verdicts.

- `process`: a fresh, isolated, resource-limited child process per run (bubblewrap, else
  namespaces via `unshare`, else plain limits), the policy a spec declares, what is in force.
- `verify` (with `testplan` and the in-sandbox `_codec`, `_harness`, `_boot`): a solution run
  against its tests with a verdict the solution cannot forge, and the weak-test guard.
- `sql`: read-only execution of untrusted SQL against SQLite files.
"""
