"""The flight-delay prediction service: Feast online features + the model behind an MLflow alias.

`create_app(settings)` builds the FastAPI app; `python -m mlops_pipeline.serving` (or
`mlops serve`) runs it under uvicorn. Missing or stale features never raise: `policy` replaces
them with defaults, flags them in the response and counts them in the metrics.
"""

from mlops_pipeline.serving.settings import ServingSettings

__all__ = ["ServingSettings", "create_app"]


def create_app(*args, **kwargs):
    """See `mlops_pipeline.serving.app.create_app`."""
    from mlops_pipeline.serving.app import create_app as _create_app

    return _create_app(*args, **kwargs)
