"""Entry point of `python -m tabular_service.loadtest`."""

import sys

from tabular_service.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
