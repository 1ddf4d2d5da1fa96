"""Metrics and traces of the prediction service, cheap enough for a millisecond hot path.

- `Metrics`: the design's Prometheus collectors (RED per route, and the model's own signals:
  score histogram, feature staleness, missing features, degraded predictions) in a registry
  owned by one app, so several apps in one process never collide. The service does not label
  its metrics with its role in a rollout: Prometheus adds `role` when it scrapes (the local
  canary's static targets, or Argo Rollouts' pod labels), so one binary serves both roles.
- `Tracing`: an OpenTelemetry tracer provider per app. One trace per request: a server span
  continued from the caller's W3C `traceparent` (nginx forwards it unchanged) with child spans
  for the feature lookup and the model call. Finished spans go to a JSON-lines file, to an
  in-memory exporter (tests), or nowhere.
- `RequestContext`: pure ASGI middleware that times, counts and traces every request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
"""Seconds; fine around the 25 ms latency objective, coarse above it."""
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
"""Twenty equal bins of the delay probability: enough for a PSI between rollout roles."""
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
STALENESS_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 86400)
"""Seconds; the views' TTLs (2 h, 3 h) fall on bucket bounds."""


class Metrics:
    """The service's Prometheus collectors, registered in their own CollectorRegistry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mlops_http_requests",
            "HTTP requests by route template, method and status code.",
            ("route", "method", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "mlops_http_request_duration_seconds",
            "Time from request start to the last response byte, by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.score = Histogram(
            "mlops_prediction_score",
            "Predicted delay probability, one observation per flight scored.",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.staleness = Histogram(
            "mlops_feature_staleness_seconds",
            "Age of the online feature row used, per view, at the prediction's as-of time.",
            ("view",),
            buckets=STALENESS_BUCKETS,
            registry=r,
        )
        self.missing = Counter(
            "mlops_features_missing",
            "Features replaced by their default, by view and reason (missing or stale).",
            ("view", "reason"),
            registry=r,
        )
        self.predictions = Counter(
            "mlops_predictions",
            "Flights scored, by whether any feature was missing or stale.",
            ("degraded",),
            registry=r,
        )
        self.model_info = Gauge(
            "mlops_model_info",
            "The model being served (value 1), labelled with its name, version and alias.",
            ("name", "version", "alias"),
            registry=r,
        )
        self.model_ready = Gauge(
            "mlops_model_ready", "1 when the model and feature store are loaded.", registry=r
        )
        self.lookup = Histogram(
            "mlops_feature_lookup_duration_seconds",
            "Time of one online feature lookup (a batch counts once).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_time = Histogram(
            "mlops_model_duration_seconds",
            "Time of one model call (a batch counts once).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._model_labels: tuple[str, str, str] | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its latency (label children cached: labels() is not free)."""
        if method not in HTTP_METHODS:  # a client's made-up method must not mint series
            method = "OTHER"
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            with self._lock:
                child = self.requests.labels(route, method, str(status))
                self._request_children[key] = child
        child.inc()
        latency = self._latency_children.get(route)
        if latency is None:
            with self._lock:
                latency = self._latency_children[route] = self.latency.labels(route)
        latency.observe(seconds)

    def observe_prediction(
        self,
        score: float,
        staleness: dict[str, float],
        views: dict[str, str],
    ) -> None:
        """Record one scored flight: its score, each view's age and verdict."""
        self.score.observe(score)
        for view, seconds in staleness.items():
            self.staleness.labels(view).observe(seconds)
        degraded = False
        for view, verdict in views.items():
            if verdict != "ok":
                degraded = True
                self.missing.labels(view, verdict).inc()
        self.predictions.labels("true" if degraded else "false").inc()

    def set_model(self, name: str, version: str, alias: str) -> None:
        """Point the model-info gauge at the model now being served (one series at a time)."""
        if self._model_labels is not None:
            self.model_info.remove(*self._model_labels)
        self._model_labels = (name, version, alias)
        self.model_info.labels(*self._model_labels).set(1)
        self.model_ready.set(1)


class JsonLinesSpanExporter(SpanExporter):
    """Finished spans as one JSON object per line (OpenTelemetry's own span JSON)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(json.loads(span.to_json())) + "\n" for span in spans)
        with self._lock:
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


class Tracing:
    """A tracer provider for one app, and the W3C trace-context propagator it continues."""

    def __init__(
        self,
        service_name: str,
        trace_file: Path | None = None,
        exporter: SpanExporter | None = None,
    ) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is not None:  # tests: every span visible as soon as it ends
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        if trace_file is not None:
            self.provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(trace_file)))
        self.tracer = self.provider.get_tracer("mlops_pipeline.serving")
        self.propagator = TraceContextTextMapPropagator()

    def shutdown(self) -> None:
        self.provider.shutdown()


class _HeaderGetter(DefaultGetter):
    """Reads ASGI's [(b"name", b"value")] headers for the propagator."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        wanted = key.lower().encode()
        values = [v.decode("latin-1") for k, v in carrier if k == wanted]
        return values or None

    def keys(self, carrier: Any) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _HeaderGetter()


class RequestContext:
    """Pure ASGI middleware: one server span, request metrics and timing per HTTP request.

    Starlette's BaseHTTPMiddleware would be simpler but wraps every request in extra tasks and
    streams; this only wraps `send` to see the status code.
    """

    def __init__(self, app: Any, metrics: Metrics, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        parent = self.tracing.propagator.extract(scope["headers"], getter=_GETTER)
        name = f"{scope['method']} {scope['path']}"
        with self.tracing.tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_and_record)
            finally:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self.metrics.observe_request(
                    route, scope["method"], status, time.perf_counter() - start
                )
