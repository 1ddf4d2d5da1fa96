"""Rolling delay rates: the share of recent departures that left late, as known at each hour.

A flight's label (delayed or not) exists only once it has departed. A rate "for the last 24 hours
at time t" may therefore count only flights that DEPARTED in (t - 24h, t], by their departure time
`dep_at`; counting flights by their scheduled time would include flights that were scheduled
before t but left after it, whose delay nobody knew at t (label leakage). In this source a
departure is recorded at `dep_at` (`recorded_at == dep_at`), so the departure time is also the
time the label became available.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlops_pipeline.data import DELAY_THRESHOLD_MIN, utc

__all__ = ["rolling_delay_rate", "hourly_grid"]


def rolling_delay_rate(
    departures: pd.DataFrame,
    by: str | Sequence[str],
    window: pd.Timedelta,
    at: pd.DatetimeIndex | Sequence[pd.Timestamp],
    time: str = "dep_at",
) -> pd.DataFrame:
    """The delay rate of each group at each time in `at`, over departures in (t - window, t].

    `departures` has one row per departed flight with `by` columns, `dep_delay` (minutes) and
    the departure time `time` (default `dep_at`; rows with a missing time or delay are ignored:
    they have not departed). Returns one row per (group, t) for every group present in
    `departures` and every t in `at`, sorted by group then time, with columns `*by`,
    `event_timestamp` (= t, the moment the rate is known), `delay_rate` (share with
    dep_delay > 15, NaN when none departed) and `n_departed` (int64).
    """
    by = [by] if isinstance(by, str) else list(by)
    absent = [c for c in [*by, time, "dep_delay"] if c not in departures.columns]
    if absent:
        raise ValueError(f"rolling_delay_rate: departures lack columns {absent}")
    window = pd.Timedelta(window)
    if window <= pd.Timedelta(0):
        raise ValueError(f"rolling_delay_rate: window must be positive, got {window}")
    at = pd.DatetimeIndex(at)
    if at.tz is None:
        raise ValueError("rolling_delay_rate: `at` must be timezone-aware (UTC)")
    at = at.tz_convert("UTC")
    if not pd.api.types.is_datetime64_any_dtype(departures[time]):
        raise ValueError(f"rolling_delay_rate: column {time!r} is not a timestamp")

    # BEGIN SOLUTION 2.4: per group and t, departed and delayed counts over (t - window, t]
    departed = departures.loc[departures[time].notna() & departures["dep_delay"].notna()]
    stamps = departed[time]
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    t_ns = stamps.astype("datetime64[ns]").to_numpy().view(np.int64)
    late = (departed["dep_delay"] > DELAY_THRESHOLD_MIN).to_numpy()
    grid = at.tz_localize(None).astype("datetime64[ns]").to_numpy().view(np.int64)
    start = grid - window.value

    frames = []
    groups = departed.groupby(by, sort=True, dropna=True).indices
    for group, positions in groups.items():
        order = positions[np.argsort(t_ns[positions], kind="stable")]
        times = t_ns[order]
        delayed_before = np.concatenate([[0], np.cumsum(late[order])])
        # Departures with time <= t minus those with time <= t - window: (t - window, t].
        hi = np.searchsorted(times, grid, side="right")
        lo = np.searchsorted(times, start, side="right")
        n = (hi - lo).astype(np.int64)
        n_late = delayed_before[hi] - delayed_before[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(n > 0, n_late / np.maximum(n, 1), np.nan)
        values = group if isinstance(group, tuple) else (group,)
        frame = pd.DataFrame({c: np.repeat(v, len(grid)) for c, v in zip(by, values, strict=True)})
        frame["event_timestamp"] = at
        frame["delay_rate"] = rate
        frame["n_departed"] = n
        frames.append(frame)
    if not frames:
        empty = {c: departures[c].iloc[:0] for c in by}
        return pd.DataFrame(
            {**empty, "event_timestamp": at[:0], "delay_rate": [], "n_departed": []}
        ).astype({"delay_rate": "float64", "n_departed": "int64"})
    out = pd.concat(frames, ignore_index=True)
    return out.astype({c: departures[c].dtype for c in by})
    # END SOLUTION


def hourly_grid(start: pd.Timestamp | str, end: pd.Timestamp | str) -> pd.DatetimeIndex:
    """The whole UTC hours in [start, end): the times at which rate tables are published."""
    first = utc(start).ceil("h")
    return pd.date_range(first, utc(end), freq="h", inclusive="left", name="event_timestamp")
