"""The FastAPI application factory.

`create_app()` wires settings, model state, metrics and routes together. It returns at once:
the model loads in a background thread started by the lifespan, so the process is live
(/healthz) immediately and becomes ready (/readyz) when the model is in memory. Tests pass a
predictor directly and get an app that is ready before it serves its first request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.requests import Request

from tabular_service.schema import LoanApplication
from tabular_service.service import routes
from tabular_service.service.loading import LoadedModel, ModelInfo, ModelState, parse_model_uri
from tabular_service.service.observability import Metrics, RequestContext
from tabular_service.settings import Settings, load_settings

if TYPE_CHECKING:
    from tabular_service.predictor import CreditPredictor

DESCRIPTION = """\
Scores loan applications for the probability of default and returns an approve/reject decision
at the model's cost-optimal threshold. The model comes from the MLflow registry
(`models:/credit-default@champion` by default) or from a local directory (`TABULAR_MODEL_PATH`).

Every response carries an `X-Request-ID` header (the client's, when it sent one).
"""


def create_app(
    settings: Settings | None = None, predictor: CreditPredictor | None = None
) -> FastAPI:
    """Build the service. With `predictor`, serve it as is; otherwise load per `settings`."""
    settings = settings or load_settings()
    state = ModelState()
    metrics = Metrics()
    state.on_ready(lambda loaded: metrics.set_model(**loaded.info.public()))
    if predictor is not None:
        state.set_ready(LoadedModel(predictor, _injected_info(settings, predictor)))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.model is None and state.status == "loading":
            state.load_in_background(settings)
        yield

    app = FastAPI(
        title="Credit default scoring",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Our own middleware counts, times and logs every request; FastAPI's OpenTelemetry
        # hooks would only re-check for (absent) OTel providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.model_state = state
    app.state.metrics = metrics
    app.include_router(routes.build_router(settings, state, metrics))
    app.add_middleware(RequestContext, metrics=metrics)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _injected_info(settings: Settings, predictor: CreditPredictor) -> ModelInfo:
    """Name and version for a predictor handed in directly (tests, notebooks)."""
    try:
        name = parse_model_uri(settings.model_uri).name
    except ValueError:
        name = "credit-default"
    version = str(predictor.metadata.get("version", "local"))
    return ModelInfo(name, version, predictor.model_kind, "argument")


async def _validation_handler(request: Request, exc: Any) -> JSONResponse:
    """FastAPI-validated parameters (if any route grows them) get the same 422 body."""
    errors = [{**err, "loc": tuple(p for p in err["loc"] if p != "body")} for err in exc.errors()]
    detail = routes.field_errors(errors)
    request_id = request.scope.get("state", {}).get("request_id", "")
    return JSONResponse({"detail": detail, "request_id": request_id}, status_code=422)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus LoanApplication, which the raw-body routes reference by $ref."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["LoanApplication"] = LoanApplication.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        app.openapi_schema = schema
    return app.openapi_schema
