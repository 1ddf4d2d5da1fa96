"""A small, realistic training set built straight from `mlops_pipeline.data` with pandas.

The pipeline builds its training sets through the CDC lake and Feast's point-in-time joins;
the training and gate tests only need a frame with the same columns and the same time
semantics, without starting PostgreSQL or Feast. Each row is a departed flight as of its
prediction time t = sched_dep - 2 h, with:
- weather: the latest observation of its airport with obs_hour <= t - 1 h (published an hour
  after the hour), via `merge_asof`;
- rates: the share of delayed flights among those that DEPARTED in (t - window, t], by origin,
  carrier or route (a flight's label is known only once it has left);
- plane age, seats and engines from `data.planes()` by tail number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_pipeline import data
from mlops_pipeline.features.schema import (
    CATEGORICAL_FEATURES,
    KEY_COLUMNS,
    LABEL,
    NUMERIC_FEATURES,
    PREDICTION_LEAD,
)

RATE_WINDOWS = {
    "origin_delay_rate_3h": ("origin", pd.Timedelta(hours=3)),
    "origin_delay_rate_24h": ("origin", pd.Timedelta(hours=24)),
    "carrier_delay_rate_24h": ("carrier", pd.Timedelta(hours=24)),
    "carrier_delay_rate_7d": ("carrier", pd.Timedelta(days=7)),
    "route_delay_rate_7d": ("route", pd.Timedelta(days=7)),
}
HISTORY = pd.Timedelta(days=8)


def _naive(times: pd.Series) -> np.ndarray:
    """UTC instants as datetime64[ns] (tz-aware columns become object arrays otherwise)."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()


def trailing_rate(
    events: pd.DataFrame, queries: pd.DataFrame, key: str, window: pd.Timedelta
) -> np.ndarray:
    """Mean label of `events` (columns key, dep_at, delayed) with dep_at in (t - window, t] for
    each query row (columns key, event_timestamp); NaN when none departed."""
    out = np.full(len(queries), np.nan)
    grouped = {k: g for k, g in events.groupby(key, sort=False)}
    for value, positions in queries.groupby(key, sort=False).indices.items():
        group = grouped.get(value)
        if group is None:
            continue
        order = np.argsort(group["dep_at"].to_numpy(), kind="stable")
        times = _naive(group["dep_at"])[order]
        labels = np.concatenate([[0], np.cumsum(group[LABEL].to_numpy()[order])])
        t = _naive(queries["event_timestamp"])[positions]
        hi = np.searchsorted(times, t, side="right")
        lo = np.searchsorted(times, t - window.to_timedelta64(), side="right")
        n = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            out[positions] = np.where(n > 0, (labels[hi] - labels[lo]) / n, np.nan)
    return out


def build_training_set(start: str, end: str) -> pd.DataFrame:
    """The training set for departed flights scheduled in [start, end) (UTC)."""
    start_ts, end_ts = data.utc(start), data.utc(end)
    flights = data.flights(start_ts - HISTORY, end_ts)
    flights = flights.loc[~flights["cancelled"]].copy()
    flights[LABEL] = data.is_delayed(flights["dep_delay"]).astype("int64")
    flights["route"] = flights["origin"] + "-" + flights["dest"]
    rows = flights.loc[flights["sched_dep"] >= start_ts].copy()
    rows["event_timestamp"] = rows["sched_dep"] - PREDICTION_LEAD

    local = rows["sched_dep"].dt.tz_convert(data.LOCAL_TZ)
    rows["sched_hour"] = local.dt.hour.astype("int64")
    rows["sched_dow"] = local.dt.dayofweek.astype("int64")
    rows["month"] = local.dt.month.astype("int64")

    weather = data.weather(start_ts - HISTORY, end_ts)
    weather = weather.rename(columns={"obs_hour": "weather_at"}).sort_values("weather_at")
    rows["weather_cutoff"] = rows["event_timestamp"] - pd.Timedelta(hours=1)
    rows = pd.merge_asof(
        rows.sort_values("weather_cutoff"),
        weather.drop(columns="wind_dir"),
        left_on="weather_cutoff",
        right_on="weather_at",
        by="origin",
        direction="backward",
        tolerance=pd.Timedelta(hours=6),
    ).drop(columns=["weather_cutoff", "weather_at"])

    # Only flights that have departed by t count: the filter on dep_at is in trailing_rate.
    events = flights[["origin", "carrier", "route", "dep_at", LABEL]]
    rows = rows.reset_index(drop=True)
    for column, (key, window) in RATE_WINDOWS.items():
        rows[column] = trailing_rate(events, rows, key, window)

    planes = data.planes()[["tailnum", "year", "seats", "engines"]]
    rows = rows.merge(planes, on="tailnum", how="left")
    rows["plane_age"] = (2013 - rows["year"]).astype("float64")
    rows["seats"] = rows["seats"].astype("float64")
    rows["engines"] = rows["engines"].astype("float64")

    columns = [*KEY_COLUMNS, *NUMERIC_FEATURES, LABEL]
    frame = rows[columns].sort_values(["event_timestamp", "flight_id"], kind="stable")
    assert not frame[CATEGORICAL_FEATURES].isna().any().any()
    return frame.reset_index(drop=True)
