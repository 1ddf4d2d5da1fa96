"""From validated flight requests to predictions: lookup, policy, model, metrics, spans.

Kept apart from the HTTP layer so a notebook, the benchmark and the routes score the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pandas as pd

from mlops_pipeline.data import LOCAL_TZ
from mlops_pipeline.features.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES, PREDICTION_LEAD
from mlops_pipeline.serving.model import LoadedModel, ModelUnavailable
from mlops_pipeline.serving.observability import Metrics, Tracing
from mlops_pipeline.serving.policy import PolicyOutcome, ViewReading, apply_feature_policy
from mlops_pipeline.serving.schemas import FlightRequest
from mlops_pipeline.serving.settings import ServingSettings

_LOCAL = ZoneInfo(LOCAL_TZ)
_LEAD = PREDICTION_LEAD.to_pytimedelta()


class FeatureReader(Protocol):
    def read(self, flights: Sequence[FlightRequest]) -> list[dict[str, ViewReading]]: ...


def calendar_features(flight: FlightRequest) -> dict[str, Any]:
    """The request-time features, computed exactly as training computes them (local time).

    Floats, as the model's signature declares every numeric input (double).
    """
    local = flight.sched_dep.astimezone(_LOCAL)
    return {
        "sched_hour": float(local.hour),
        "sched_dow": float(local.weekday()),
        "month": float(local.month),
        "distance": float(flight.distance),
    }


def model_row(flight: FlightRequest, outcome: PolicyOutcome) -> dict[str, Any]:
    """One model input row: the looked-up features after the policy, the request-time ones and
    the categoricals. The benchmark builds `mlflow models serve`'s inline rows with it too, so
    the peer scores exactly what this service scores."""
    return {
        **outcome.features,
        **calendar_features(flight),
        "origin": flight.origin,
        "carrier": flight.carrier,
    }


class Scorer:
    """Scores batches of flights with one model and one feature store."""

    def __init__(
        self,
        model: LoadedModel,
        features: FeatureReader,
        settings: ServingSettings,
        metrics: Metrics,
        tracing: Tracing,
    ) -> None:
        self.model = model
        self.features = features
        self.settings = settings
        self.metrics = metrics
        self.tracer = tracing.tracer
        built = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
        unknown = sorted(set(model.inputs) - set(built))
        if unknown:  # a NaN column the model never saw would score silently wrong
            raise ModelUnavailable(
                f"models:/{model.name}/{model.version} expects inputs the service does not build: "
                f"{unknown}"
            )
        self.columns = model.inputs or built
        self._model_ref = {"name": model.name, "version": model.version, "alias": model.alias}

    def as_of(self, flight: FlightRequest) -> pd.Timestamp:
        """The moment the prediction is made, per the settings' clock."""
        if self.settings.clock == "schedule":
            return pd.Timestamp(flight.sched_dep - _LEAD)
        if self.settings.clock == "fixed":
            return pd.Timestamp(self.settings.as_of)
        return pd.Timestamp(datetime.now(UTC))

    def score(
        self, flights: Sequence[FlightRequest], parents: Sequence[Any] | None = None
    ) -> list[dict[str, Any]]:
        """One prediction body per flight, in order.

        `parents` are the OpenTelemetry contexts of the requests the flights came from (a
        micro-batch); the lookup and model spans are recorded under each of them. Without
        them the spans go under the current context (one request, one or many flights).
        """
        started = time.time_ns()
        readings = self.features.read(flights)
        looked_up = time.time_ns()
        pairs = zip(readings, flights, strict=True)
        outcomes = [apply_feature_policy(r, self.as_of(f)) for r, f in pairs]
        rows = [model_row(f, o) for f, o in zip(flights, outcomes, strict=True)]
        frame = pd.DataFrame.from_records(rows, columns=self.columns)
        predicting = time.time_ns()
        scores = self.model.predict(frame)
        predicted = time.time_ns()
        self.metrics.lookup.observe((looked_up - started) / 1e9)
        self.metrics.model_time.observe((predicted - predicting) / 1e9)
        attributes = {"batch.size": len(flights), "model.version": self.model.version}
        for parent in parents if parents is not None else [None]:
            self._span("feature_lookup", parent, started, looked_up, attributes)
            self._span("model_predict", parent, predicting, predicted, attributes)
        triples = zip(flights, outcomes, scores, strict=True)
        return [self._body(f, o, float(s)) for f, o, s in triples]

    def _span(self, name: str, parent: Any, start: int, end: int, attributes: dict) -> None:
        """Record a finished span with the measured times under `parent` (None: current)."""
        span = self.tracer.start_span(name, context=parent, start_time=start, attributes=attributes)
        span.end(end_time=end)

    def _body(self, flight: FlightRequest, outcome: PolicyOutcome, score: float) -> dict[str, Any]:
        if not math.isfinite(score):  # never hand a client NaN; a model bug is a server error
            raise ValueError(f"model returned {score} for flight {flight.flight_id}")
        self.metrics.observe_prediction(score, outcome.staleness_seconds, outcome.views)
        return {
            "flight_id": flight.flight_id,
            "delay_probability": score,
            "model": self._model_ref,
            "features": {"missing": outcome.missing, "stale": outcome.stale},
            "degraded": outcome.degraded,
        }
