"""The feature set the model trains and serves on: names shared by features, training and serving.

A training set is one row per departed flight, as of its prediction time (`event_timestamp`,
`PREDICTION_LEAD` before the scheduled departure), with the key columns, the features below and
the label `delayed`.
"""

from __future__ import annotations

import pandas as pd

PREDICTION_LEAD = pd.Timedelta(hours=2)
"""Predictions are made this long before the scheduled departure, with what was known then."""

KEY_COLUMNS = [
    "flight_id", "event_timestamp", "sched_dep", "origin", "dest", "route", "carrier",
    "flight", "tailnum",
]  # fmt: skip
CALENDAR_FEATURES = ["sched_hour", "sched_dow", "month", "distance"]
WEATHER_FEATURES = [
    "temp", "dewp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib",
]  # fmt: skip
RATE_FEATURES = [
    "origin_delay_rate_3h", "origin_delay_rate_24h", "carrier_delay_rate_24h",
    "carrier_delay_rate_7d", "route_delay_rate_7d",
]  # fmt: skip
PLANE_FEATURES = ["plane_age", "seats", "engines"]
CATEGORICAL_FEATURES = ["origin", "carrier"]
NUMERIC_FEATURES = CALENDAR_FEATURES + WEATHER_FEATURES + RATE_FEATURES + PLANE_FEATURES
LABEL = "delayed"
