"""The HTTP endpoints: predictions, probes and metrics.

The predict handlers take the raw body and validate it with pydantic-core's JSON parser
(`model_validate_json`) instead of declaring a body parameter: that skips FastAPI's
json.loads + dependency solving + response_model re-validation, which together cost more than
the model itself. The request and response schemas stay documented through `openapi_extra` and
`responses=` (the models are in `schemas`), and the handlers return pre-serialised JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from tabular_service.schema import EXAMPLE_APPLICATION, LoanApplication
from tabular_service.service.loading import ModelState
from tabular_service.service.observability import Metrics
from tabular_service.service.schemas import (
    APPLICATION_REF,
    BatchPrediction,
    ErrorBody,
    Health,
    NotReady,
    Prediction,
    Ready,
    ValidationErrorBody,
    batch_model,
    batch_request_schema,
)
from tabular_service.settings import Settings

if TYPE_CHECKING:
    from tabular_service.predictor import CreditPredictor

ModelT = TypeVar("ModelT", bound=BaseModel)
JSON = "application/json"
#: Generous per-application byte allowance for the request-size guard (an application is ~600 B).
BYTES_PER_APPLICATION = 8 * 1024


# ------------------------------------------------------------------ the learner's pieces
def score(predictor: CreditPredictor, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Probability of default and decision for each validated application, in order.

    The decision uses the predictor's own threshold (chosen on validation data for the stated
    costs): at or above it the application is rejected. Probabilities become plain floats so
    the response serialises without numpy.
    """
    # BEGIN SOLUTION 1.9: probability, then the decision from the threshold
    probabilities = predictor.predict_proba_records(records)
    rejected = predictor.decide(probabilities)
    return [
        {"probability_of_default": float(p), "decision": "reject" if r else "approve"}
        for p, r in zip(probabilities.tolist(), rejected.tolist(), strict=True)
    ]
    # END SOLUTION


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One {"field", "message", "type"} per pydantic error, the field named by its dotted path.

    The path is pydantic's `loc` joined with dots ("annual_inc", "applications.2.term"); an
    error about the body as a whole (malformed JSON, not an object) has an empty loc and is
    reported as "body". The input value is left out: it may be huge, or NaN, which is not JSON.
    """
    # BEGIN SOLUTION 1.9: name each bad field
    return [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "body",
            "message": error["msg"],
            "type": error["type"],
        }
        for error in errors
    ]
    # END SOLUTION


def readiness(state: ModelState) -> tuple[int, dict[str, Any]]:
    """(status code, body) of the readiness probe: 200 only once a model is serving.

    A load balancer sends traffic only to ready replicas; while the model loads (or after it
    failed to) the answer is 503 with the state and why, so the operator sees the reason.
    """
    # BEGIN SOLUTION 1.10: ready only with a model loaded
    model = state.model
    if state.status == "ready" and model is not None:
        return 200, {"status": "ready", "model": asdict(model.info)}
    return 503, {"status": state.status, "detail": state.detail}
    # END SOLUTION


def metrics_response(metrics: Metrics, state: ModelState) -> Response:
    """The Prometheus text exposition of this app's registry, readiness gauge refreshed."""
    # BEGIN SOLUTION 1.11: expose the registry in Prometheus' text format
    metrics.model_ready.set(1 if state.model is not None else 0)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
    # END SOLUTION


# ------------------------------------------------------------------ plumbing
def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type=JSON)


class InvalidBody(Exception):
    """The body failed validation; `errors` are pydantic's error dicts (without inputs)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def _integral_float(error: Mapping[str, Any]) -> bool:
    value = error.get("input")
    return error["type"] == "int_type" and isinstance(value, float) and value.is_integer()


def parse_json(model: type[ModelT], body: bytes) -> ModelT:
    """Validate a JSON body: numbers must be JSON numbers, counts whole numbers.

    Strict mode refuses what lax mode would coerce ("5" or true for a number), but it also
    refuses 3.0 for an integer field, which JSON Schema (and so the OpenAPI contract) counts as
    an integer. So: strict first; if the only complaints are integral floats for integer
    fields, the lax result is the right one, unless lax mode finds more (an integral float out
    of range, which strict mode stops at the type). Raises InvalidBody with the remaining errors.
    """
    options = {"include_url": False, "include_context": False}
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        remaining = [e for e in exc.errors(**options) if not _integral_float(e)]
    if not remaining:
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            remaining = exc.errors(**options)
    for error in remaining:
        error.pop("input", None)
    raise InvalidBody(remaining)


def invalid(exc: InvalidBody, request_id: str) -> Response:
    return json_response({"detail": field_errors(exc.errors), "request_id": request_id}, 422)


def _body_schema(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": schema, "examples": {"typical": {"value": example}}}},
        }
    }


def _error(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


def build_router(settings: Settings, state: ModelState, metrics: Metrics) -> APIRouter:
    """All routes, closed over this app's settings, model state and metrics."""
    router = APIRouter()
    max_batch = settings.max_batch
    max_bytes = max_batch * BYTES_PER_APPLICATION + 64 * 1024
    Batch = batch_model(max_batch)
    not_ready = _error(NotReady, "The model is not loaded (yet).")
    unprocessable = _error(ValidationErrorBody, "Invalid input; each bad field is named.")
    too_large = _error(ErrorBody, f"More than {max_batch} applications, or a body too large.")

    def unavailable() -> Response:
        return json_response({"status": state.status, "detail": state.detail}, 503)

    def too_big(request_id: str, what: str) -> Response:
        return json_response({"detail": what, "request_id": request_id}, 413)

    async def read_body(request: Request) -> bytes | None:
        """The body, or None once it passes `max_bytes` (a chunked upload is never buffered)."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    @router.post(
        "/v1/predict",
        summary="Score one loan application",
        tags=["predictions"],
        responses={
            200: {"model": Prediction, "description": "Probability of default and decision."},
            413: too_large,
            422: unprocessable,
            503: not_ready,
        },
        openapi_extra=_body_schema(APPLICATION_REF, EXAMPLE_APPLICATION),
    )
    async def predict(request: Request) -> Response:
        request_id = request.scope["state"]["request_id"]
        model = state.model
        if model is None:
            return unavailable()
        body = await read_body(request)
        if body is None:
            return too_big(request_id, f"request body larger than {max_bytes} bytes")
        try:
            application = parse_json(LoanApplication, body)
        except InvalidBody as exc:
            return invalid(exc, request_id)
        result = score(model.predictor, [application.model_dump()])[0]
        metrics.observe_predictions((result,))
        result["threshold"] = model.predictor.threshold
        result["model"] = model.info.public()
        result["request_id"] = request_id
        return json_response(result)

    @router.post(
        "/v1/predict/batch",
        summary=f"Score 1 to {max_batch} loan applications",
        tags=["predictions"],
        responses={
            200: {"model": BatchPrediction, "description": "One prediction per application."},
            413: too_large,
            422: unprocessable,
            503: not_ready,
        },
        openapi_extra=_body_schema(
            batch_request_schema(max_batch), {"applications": [EXAMPLE_APPLICATION]}
        ),
    )
    async def predict_batch(request: Request) -> Response:
        request_id = request.scope["state"]["request_id"]
        model = state.model
        if model is None:
            return unavailable()
        body = await read_body(request)
        if body is None:
            return too_big(request_id, f"at most {max_batch} applications per batch")
        try:
            batch = parse_json(Batch, body)
        except InvalidBody as exc:
            if any(e["type"] == "too_long" and e["loc"] == ("applications",) for e in exc.errors):
                return too_big(request_id, f"at most {max_batch} applications per batch")
            return invalid(exc, request_id)
        records = [application.model_dump() for application in batch.applications]
        results = score(model.predictor, records)
        metrics.observe_predictions(results)
        return json_response(
            {
                "predictions": results,
                "threshold": model.predictor.threshold,
                "model": model.info.public(),
                "request_id": request_id,
            }
        )

    @router.get(
        "/healthz",
        summary="Liveness: the process answers",
        tags=["probes"],
        responses={200: {"model": Health, "description": "Alive."}},
    )
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @router.get(
        "/readyz",
        summary="Readiness: a model is loaded",
        tags=["probes"],
        responses={200: {"model": Ready, "description": "Serving."}, 503: not_ready},
    )
    async def readyz() -> Response:
        status, body = readiness(state)
        return json_response(body, status)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        tags=["probes"],
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics_endpoint() -> Response:
        return metrics_response(metrics, state)

    return router
