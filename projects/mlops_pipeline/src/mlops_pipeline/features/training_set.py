"""Training sets: one row per departed flight, with the features known at its prediction time.

The entity frame fixes WHEN each prediction is made (`event_timestamp` = scheduled departure -
`PREDICTION_LEAD`); the point-in-time join then attaches, per feature view, the latest row
available at that moment (`asof.asof_join`, or Feast's `get_historical_features`: both give the
same rows). `naive_training_set` is the join written without thinking about time (weather of the
departure hour with its final values, rates counted by scheduled time) and exists to measure the
leakage it causes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pandas as pd

from mlops_pipeline.data import LOCAL_TZ, is_delayed, utc
from mlops_pipeline.features.asof import asof_join
from mlops_pipeline.features.rolling import hourly_grid, rolling_delay_rate
from mlops_pipeline.features.schema import (
    CALENDAR_FEATURES,
    KEY_COLUMNS,
    LABEL,
    NUMERIC_FEATURES,
    PLANE_FEATURES,
    PREDICTION_LEAD,
    RATE_FEATURES,
    WEATHER_FEATURES,
)
from mlops_pipeline.features.tables import VIEWS, departures, final_flights, history, plane_features

__all__ = [
    "TRAINING_COLUMNS",
    "build_training_set",
    "entity_frame",
    "naive_training_set",
    "select_training_columns",
]

TRAINING_COLUMNS = [
    *KEY_COLUMNS, *CALENDAR_FEATURES, *WEATHER_FEATURES, *RATE_FEATURES, *PLANE_FEATURES, LABEL,
]  # fmt: skip
"""The columns of every training set, in this order (features/schema.py's lists)."""


def entity_frame(
    flights_history: pd.DataFrame, start: pd.Timestamp | str, end: pd.Timestamp | str
) -> pd.DataFrame:
    """Departed flights scheduled in [start, end): keys, prediction time, calendar, label.

    Cancelled flights have no label and are left out; deleted (erroneous) rows too. The calendar
    features use New York local time (what drives the schedule), from the schedule alone.
    """
    lo, hi = utc(start), utc(end)
    final = final_flights(flights_history)
    final = final.loc[
        final["dep_delay"].notna() & (final["sched_dep"] >= lo) & (final["sched_dep"] < hi)
    ]
    local = final["sched_dep"].dt.tz_convert(LOCAL_TZ)
    out = pd.DataFrame(
        {
            "flight_id": final["flight_id"].astype("int64"),
            "event_timestamp": final["sched_dep"] - PREDICTION_LEAD,
            "sched_dep": final["sched_dep"],
            "origin": final["origin"].astype("string"),
            "dest": final["dest"].astype("string"),
            "route": (final["origin"] + "-" + final["dest"]).astype("string"),
            "carrier": final["carrier"].astype("string"),
            "flight": final["flight"].astype("int64"),
            "tailnum": final["tailnum"].astype("string"),
            "sched_hour": local.dt.hour.astype("int64"),
            "sched_dow": local.dt.dayofweek.astype("int64"),
            "month": local.dt.month.astype("int64"),
            "distance": final["distance"].astype("int64"),
            LABEL: is_delayed(final["dep_delay"]).astype("int64"),
        }
    )
    out = out.sort_values(["event_timestamp", "flight_id"], kind="stable")
    return out[[*KEY_COLUMNS, *CALENDAR_FEATURES, LABEL]].reset_index(drop=True)


def build_training_set(
    entities: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame] | None = None,
    method: Literal["asof", "feast"] = "asof",
    repo: Path | str | None = None,
    provenance: bool = False,
) -> pd.DataFrame:
    """The point-in-time training set for `entities` (from `entity_frame`), TRAINING_COLUMNS.

    method="asof" joins the in-memory `tables` (from `tables.build_feature_tables`) with
    `asof_join`; method="feast" asks the Feast repository at `repo` (see `feast_repo`), whose
    offline store reads the same tables from Parquet. Rows keep the entity frame's order.
    With `provenance`, (asof only) each view also adds `<view>__event_timestamp`: when the
    joined row became available, so a test can prove none is later than the prediction time.
    """
    missing = [c for c in [*KEY_COLUMNS, *CALENDAR_FEATURES, LABEL] if c not in entities]
    if missing:
        raise ValueError(f"build_training_set: entity frame lacks columns {missing}")
    if method == "asof":
        if tables is None:
            raise ValueError("build_training_set: method='asof' needs the feature tables")
        out = entities
        for view in VIEWS.values():
            if view.name not in tables:
                raise ValueError(f"build_training_set: no table for feature view {view.name!r}")
            table = tables[view.name]
            extra = []
            if provenance:
                extra = [f"{view.name}__event_timestamp"]
                table = table.assign(**{extra[0]: table["event_timestamp"]})
            out = asof_join(out, table, view.key, ttl=view.ttl, columns=[*view.features, *extra])
    elif method == "feast":
        if repo is None:
            raise ValueError("build_training_set: method='feast' needs the Feast repository path")
        if provenance:
            raise ValueError("build_training_set: provenance is only available with method='asof'")
        from mlops_pipeline.features import feast_repo

        out = feast_repo.historical_features(repo, entities)
    else:
        raise ValueError(f"build_training_set: unknown method {method!r} (use 'asof' or 'feast')")
    return select_training_columns(out, provenance)


def naive_training_set(
    flights_history: pd.DataFrame,
    weather_history: pd.DataFrame,
    planes_history: pd.DataFrame,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
) -> pd.DataFrame:
    """The leaky join: the final tables joined on what the flight is ABOUT, not what was KNOWN.

    Weather is the observation of the scheduled departure hour in its final (corrected) version,
    published after the prediction time; rates count flights by SCHEDULED time up to the
    departure hour, with delays known only once those flights left (the flight itself included).
    Same columns as `build_training_set`, plus `weather_obs_hour`.
    """
    entities = entity_frame(flights_history, start, end)
    weather = history(weather_history, "weather")
    weather = weather.loc[weather["op"] != "delete"]
    final_weather = weather.drop_duplicates(["origin", "obs_hour"], keep="last")
    hour = entities["sched_dep"].dt.floor("h")
    out = entities.assign(weather_obs_hour=hour).merge(
        final_weather[["origin", "obs_hour", *WEATHER_FEATURES]].rename(
            columns={"obs_hour": "weather_obs_hour"}
        ),
        on=["origin", "weather_obs_hour"],
        how="left",
    )
    departed = departures(flights_history)
    grid = hourly_grid(utc(start) - pd.Timedelta(hours=1), utc(end) + pd.Timedelta(hours=1))
    for view in (
        VIEWS["origin_delay_rates"],
        VIEWS["carrier_delay_rates"],
        VIEWS["route_delay_rates"],
    ):
        for feature in view.features:
            window = pd.Timedelta(feature.rsplit("_", 1)[1])
            rates = rolling_delay_rate(departed, view.key, window, grid, time="sched_dep")
            rates = rates.rename(columns={"delay_rate": feature})[
                [view.key, "event_timestamp", feature]
            ]
            out = asof_join(out, rates, view.key, entity_ts="sched_dep", columns=[feature])
    planes = plane_features(planes_history).drop_duplicates("tailnum", keep="last")
    out = out.merge(planes[["tailnum", *PLANE_FEATURES]], on="tailnum", how="left")
    return select_training_columns(out, extra=["weather_obs_hour"])


def select_training_columns(
    frame: pd.DataFrame, provenance: bool = False, extra: list[str] | None = None
) -> pd.DataFrame:
    """TRAINING_COLUMNS in order; joined features as float64 (NaN where missing)."""
    columns = list(TRAINING_COLUMNS) + list(extra or [])
    if provenance:
        columns += [f"{v}__event_timestamp" for v in VIEWS]
    out = frame[columns].copy()
    for column in NUMERIC_FEATURES:
        kind = "int64" if column in CALENDAR_FEATURES else "float64"
        out[column] = pd.to_numeric(out[column], errors="raise").astype(kind)
    out[LABEL] = out[LABEL].astype("int64")
    return out.reset_index(drop=True)
