"""`python -m dataflow_cli` is the same as `dataflow`."""

from dataflow_cli.cli.app import main

main()
