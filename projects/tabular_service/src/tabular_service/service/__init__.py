"""The HTTP service: `create_app()` builds it, `tabular-serve` runs it under uvicorn."""
