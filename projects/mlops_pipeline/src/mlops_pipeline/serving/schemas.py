"""Request and response bodies of the prediction API (pydantic v2).

A request names a flight as a booking or operations system knows it 2 hours before departure:
carrier, flight number, aircraft, airports, scheduled departure and distance. Everything else
the model needs comes from the online feature store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

EARLIEST, LATEST = datetime(1970, 1, 2), datetime(2199, 12, 30)
AIRPORT = Annotated[str, Field(min_length=3, max_length=4, pattern=r"^[A-Z0-9]{3,4}$")]

EXAMPLE_FLIGHT = {
    "flight_id": 1,
    "carrier": "UA",
    "flight": 1545,
    "tailnum": "N14228",
    "origin": "EWR",
    "dest": "IAH",
    "sched_dep": "2013-01-01T10:15:00Z",
    "distance": 1400,
}


class FlightRequest(BaseModel):
    """One flight to score."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_FLIGHT]})

    flight_id: int | None = Field(None, ge=0, description="The caller's id, echoed back.")
    carrier: str = Field(min_length=2, max_length=3, pattern=r"^[A-Z0-9]{2,3}$")
    flight: int = Field(ge=1, le=9999, description="Flight number.")
    tailnum: str | None = Field(None, max_length=10, description="Aircraft tail number.")
    origin: AIRPORT
    dest: AIRPORT
    sched_dep: datetime = Field(description="Scheduled departure, ISO-8601 with a time zone.")
    distance: float = Field(gt=0, le=10_000, description="Great-circle distance in miles.")

    @field_validator("sched_dep")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("sched_dep needs a time zone (e.g. 2013-01-01T10:15:00Z)")
        # Bounded so that UTC, New York time and "2 hours before" all exist (year 1 or 9999
        # would overflow in the arithmetic after validation and fail the whole micro-batch).
        if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
            raise ValueError(f"sched_dep must be between {EARLIEST:%Y} and {LATEST:%Y}")
        return value.astimezone(UTC)

    @property
    def route(self) -> str:
        return f"{self.origin}-{self.dest}"


class BatchRequest(BaseModel):
    """Up to `max_batch` flights scored in one call (one feature lookup, one model call)."""

    model_config = ConfigDict(extra="forbid")

    flights: list[FlightRequest] = Field(min_length=1)


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str


class FeatureFlags(BaseModel):
    missing: list[str] = Field(description="Features with no value online: default used.")
    stale: list[str] = Field(description="Features older than their view's TTL: default used.")


class Prediction(BaseModel):
    flight_id: int | None
    delay_probability: float = Field(ge=0, le=1)
    model: ModelRef
    features: FeatureFlags
    degraded: bool = Field(description="True when any feature was missing or stale.")


class BatchPrediction(BaseModel):
    predictions: list[Prediction]


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ValidationErrorBody(BaseModel):
    detail: list[FieldError]
