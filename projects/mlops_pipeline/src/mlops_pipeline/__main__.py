"""`python -m mlops_pipeline` is the `mlops` command."""

from mlops_pipeline.cli import main

main()
