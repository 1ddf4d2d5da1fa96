"""`python -m tabular_service.service`: run the service (same as `tabular-serve`)."""

from tabular_service.service.main import main

if __name__ == "__main__":
    raise SystemExit(main())
