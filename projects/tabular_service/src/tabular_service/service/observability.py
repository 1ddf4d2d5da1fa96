"""Metrics, structured logs and request ids, kept cheap enough for a sub-millisecond hot path.

- `Metrics`: Prometheus collectors in a registry owned by one app (not the global default
  registry), so several apps in one test process never collide.
- `JsonFormatter`: one JSON object per log line, ready for any log pipeline.
- `RequestContext`: a pure ASGI middleware. Starlette's BaseHTTPMiddleware would be simpler
  to write but wraps every request in extra tasks and streams (tens of microseconds each);
  this one only wraps `send` to see the status code.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ACCESS_LOGGER = "tabular_service.access"
#: Request latency buckets in seconds: fine-grained below the 20-25 ms SLO, coarse above.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (1.0,)
_MAX_REQUEST_ID = 128


class Metrics:
    """The service's Prometheus collectors, registered in their own CollectorRegistry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tabular_http_requests",
            "HTTP requests by route template, method and status code.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "tabular_http_request_duration_seconds",
            "Time from request start to the last response byte, by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.probability = Histogram(
            "tabular_prediction_probability",
            "Predicted probability of default, one observation per application scored.",
            buckets=PROBABILITY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "tabular_decisions",
            "Decisions returned, by decision (approve/reject).",
            ("decision",),
            registry=self.registry,
        )
        self.model_info = Gauge(
            "tabular_model_info",
            "The model being served (value 1), labelled with its name, version and kind.",
            ("name", "version", "kind"),
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "tabular_model_ready", "1 when a model is loaded and serving.", registry=self.registry
        )
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._decision_children = {d: self.decisions.labels(d) for d in ("approve", "reject")}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its latency (label children cached: labels() is not free)."""
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        latency = self._latency_children.get(route)
        if latency is None:
            latency = self._latency_children[route] = self.latency.labels(route)
        latency.observe(seconds)

    def observe_predictions(self, predictions: Iterable[dict[str, Any]]) -> None:
        """Record the probability and decision of each scored application."""
        for prediction in predictions:
            self.probability.observe(prediction["probability_of_default"])
            self._decision_children[prediction["decision"]].inc()

    def set_model(self, name: str, version: str, kind: str) -> None:
        """Point the model-info gauge at the model now being served (one series at a time)."""
        self.model_info.clear()
        self.model_info.labels(name, version, kind).set(1)
        self.model_ready.set(1)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; fields passed as extra={"fields": {...}} are merged."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def logging_config(level: str = "info") -> dict[str, Any]:
    """A dictConfig for the service and uvicorn: JSON lines on stdout, access log ours."""
    level = "DEBUG" if level.lower() == "trace" else level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stdout": handler},
        "loggers": {
            "tabular_service": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if it is short printable ASCII, else a new random id."""
    for key, value in headers:
        if key == b"x-request-id":
            if 0 < len(value) <= _MAX_REQUEST_ID and value.isascii():
                text = value.decode()
                if text.isprintable():
                    return text
            break
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI middleware: request id, one access-log line, request metrics per request."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(route, scope["method"], status, seconds)
            if self.log.isEnabledFor(logging.INFO):
                self.log.info(
                    "request",
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "method": scope["method"],
                            "path": scope["path"],
                            "route": route,
                            "status": status,
                            "duration_ms": round(seconds * 1000, 3),
                        }
                    },
                )
