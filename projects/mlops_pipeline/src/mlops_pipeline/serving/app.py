"""The FastAPI application factory: settings, state, metrics, tracing and routes wired together.

`create_app(settings)` returns at once; the model and the feature store load in a background
thread started by the lifespan. Tests hand in a ready `Scorer` parts (`model`, `features`) and
an in-memory span exporter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.requests import Request

from mlops_pipeline.serving import routes
from mlops_pipeline.serving.model import LoadedModel, load_model
from mlops_pipeline.serving.observability import Metrics, RequestContext, Tracing
from mlops_pipeline.serving.scoring import FeatureReader, Scorer
from mlops_pipeline.serving.settings import ServingSettings
from mlops_pipeline.serving.state import ServiceState

DESCRIPTION = """\
Probability that a flight leaves more than 15 minutes late, predicted 2 hours before its
scheduled departure. The request names the flight; weather, recent delay rates and aircraft
attributes come from the Feast online store; the model is the MLflow registry's
`flight-delay` at the configured alias. Missing or stale features fall back to defaults and are
listed in the response (`degraded: true`), never an error.
"""


def create_app(
    settings: ServingSettings | None = None,
    *,
    model: LoadedModel | None = None,
    features: FeatureReader | None = None,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """Build the service. With both `model` and `features`, it is ready before serving."""
    settings = settings or ServingSettings.from_env()
    state = ServiceState()
    metrics = Metrics()
    tracing = Tracing(settings.service_name, settings.trace_file, span_exporter)

    def load() -> Scorer:
        from mlops_pipeline.serving.online import OnlineFeatures

        loaded = model or load_model(
            settings.paths, settings.model_name, settings.alias, settings.tracking_uri
        )
        reader = features or OnlineFeatures(settings.feature_repo_path)
        metrics.set_model(loaded.name, loaded.version, loaded.alias)
        return Scorer(loaded, reader, settings, metrics, tracing)

    if model is not None and features is not None:
        state.set_ready(load())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.scorer is None and state.status == "loading":
            state.load_in_background(load)
        try:
            yield
        finally:
            state.close()
            tracing.shutdown()

    app = FastAPI(
        title="Flight delay prediction", version="0.1.0", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.service = state
    app.state.metrics = metrics
    app.state.tracing = tracing
    app.include_router(routes.build_router(settings, state, metrics))
    app.add_middleware(RequestContext, metrics=metrics, tracing=tracing)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    return app


async def _validation_handler(request: Request, exc: Any) -> JSONResponse:
    """FastAPI-validated parameters (none today) get the same 422 body as the routes."""
    errors = [{**e, "loc": tuple(p for p in e["loc"] if p != "body")} for e in exc.errors()]
    return JSONResponse({"detail": routes.field_errors(errors)}, status_code=422)
