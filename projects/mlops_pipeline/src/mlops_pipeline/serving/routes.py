"""The HTTP endpoints: predictions, probes and metrics.

Predict handlers read the raw body and validate it with pydantic-core's JSON parser
(`model_validate_json`): faster than FastAPI's body parameters, and every validation error
becomes a 422 naming the field. Bodies over the size limit are refused with 413 before parsing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from mlops_pipeline.serving.batcher import ScoringTimeout
from mlops_pipeline.serving.observability import Metrics
from mlops_pipeline.serving.schemas import (
    EXAMPLE_FLIGHT,
    BatchPrediction,
    BatchRequest,
    FlightRequest,
    Prediction,
    ValidationErrorBody,
)
from mlops_pipeline.serving.settings import ServingSettings
from mlops_pipeline.serving.state import ServiceState

ModelT = TypeVar("ModelT", bound=BaseModel)
JSON = "application/json"
BYTES_PER_FLIGHT = 1024
"""Request-size allowance per flight (a flight is ~200 bytes of JSON)."""


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type=JSON)


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One {"field", "message", "type"} per pydantic error, the field as a dotted path."""
    return [
        {
            "field": ".".join(str(p) for p in error["loc"]) or "body",
            "message": error["msg"],
            "type": error["type"],
        }
        for error in errors
    ]


class InvalidBody(Exception):
    def __init__(self, status: int, detail: list[dict[str, str]]) -> None:
        self.status = status
        self.detail = detail


def parse(model: type[ModelT], body: bytes, limit: int) -> ModelT:
    """Validate a JSON body (strict: numbers must be JSON numbers) or raise InvalidBody."""
    if len(body) > limit:
        raise InvalidBody(413, [_too_large(len(body), limit)])
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise InvalidBody(422, field_errors(errors)) from None


def _too_large(size: int, limit: int) -> dict[str, str]:
    message = f"body of {size} bytes or more exceeds the limit of {limit} bytes"
    return {"field": "body", "message": message, "type": "too_large"}


def _single_body() -> dict[str, Any]:
    content = {JSON: {"schema": FlightRequest.model_json_schema(), "example": EXAMPLE_FLIGHT}}
    return {"requestBody": {"required": True, "content": content}}


def build_router(settings: ServingSettings, state: ServiceState, metrics: Metrics) -> APIRouter:
    router = APIRouter()
    single_limit = 4 * BYTES_PER_FLIGHT
    batch_limit = settings.max_batch * BYTES_PER_FLIGHT

    def not_ready() -> Response:
        return json_response({"status": state.status, "detail": state.detail}, 503)

    async def predict_flights(flights: list[FlightRequest]) -> list[dict[str, Any]] | Response:
        batcher = state.batcher
        if state.scorer is None or batcher is None:
            return not_ready()
        try:
            if len(flights) == 1:  # single requests join a micro-batch (serving.batcher)
                return [await batcher.submit(flights[0])]
            return await batcher.score_now(flights)
        except ScoringTimeout as timeout:
            return json_response({"status": "timeout", "detail": str(timeout)}, 503)

    async def read_body(request: Request, limit: int) -> bytes:
        """The body, refused with 413 before it is read whole when it is over `limit`."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise InvalidBody(413, [_too_large(int(declared), limit)])
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise InvalidBody(413, [_too_large(len(body), limit)])
        return bytes(body)

    @router.post(
        "/v1/predict",
        openapi_extra=_single_body(),
        responses={200: {"model": Prediction}, 422: {"model": ValidationErrorBody}},
        summary="Delay probability for one flight",
    )
    async def predict(request: Request) -> Response:
        try:
            flight = parse(FlightRequest, await read_body(request, single_limit), single_limit)
        except InvalidBody as bad:
            return json_response({"detail": bad.detail}, bad.status)
        result = await predict_flights([flight])
        return result if isinstance(result, Response) else json_response(result[0])

    @router.post(
        "/v1/predict/batch",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": BatchRequest.model_json_schema()}},
            }
        },
        responses={200: {"model": BatchPrediction}, 422: {"model": ValidationErrorBody}},
        summary=f"Delay probabilities for up to {settings.max_batch} flights",
    )
    async def predict_batch(request: Request) -> Response:
        try:
            batch = parse(BatchRequest, await read_body(request, batch_limit), batch_limit)
        except InvalidBody as bad:
            return json_response({"detail": bad.detail}, bad.status)
        if len(batch.flights) > settings.max_batch:
            message = f"at most {settings.max_batch} flights per call, got {len(batch.flights)}"
            detail = [{"field": "flights", "message": message, "type": "too_long"}]
            return json_response({"detail": detail}, 422)
        result = await predict_flights(batch.flights)
        if isinstance(result, Response):
            return result
        return json_response({"predictions": result})

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> Response:
        return json_response({"status": "alive"})

    @router.get("/readyz", summary="Readiness: model and feature store loaded")
    async def readyz() -> Response:
        scorer = state.scorer
        if scorer is None:
            return not_ready()
        model = scorer.model
        body = {
            "status": "ready",
            "model": {"name": model.name, "version": model.version, "alias": model.alias},
            "clock": settings.clock,
        }
        return json_response(body)

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        metrics.model_ready.set(1 if state.scorer is not None else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
