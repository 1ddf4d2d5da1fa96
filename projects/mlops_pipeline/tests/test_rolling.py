"""rolling_delay_rate against a brute-force oracle, and the departure-time rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_pipeline.features.rolling import hourly_grid, rolling_delay_rate

T0 = pd.Timestamp("2013-01-01", tz="UTC")


def random_departures(seed: int, n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sched = T0 + pd.to_timedelta(rng.integers(0, 48 * 60, n), unit="min")
    delay = rng.choice([-5.0, 0.0, 10.0, 15.0, 16.0, 90.0, np.nan], n)
    return pd.DataFrame(
        {
            "origin": pd.array(rng.choice(["EWR", "JFK", "LGA"], n), dtype="string"),
            "carrier": pd.array(rng.choice(["AA", "UA"], n), dtype="string"),
            "sched_dep": sched,
            "dep_at": sched + pd.to_timedelta(np.nan_to_num(delay, nan=0.0), unit="min"),
            "dep_delay": delay,
        }
    ).assign(dep_at=lambda d: d["dep_at"].where(d["dep_delay"].notna()))


def oracle(departures, by, window, at):
    """Loop over every (group, t) and every flight."""
    rows = []
    groups = departures.dropna(subset=by).groupby(by).groups
    for group in sorted(groups):
        group = group if isinstance(group, tuple) else (group,)
        flights = departures.loc[groups[group if len(group) > 1 else group[0]]]
        for t in at:
            n = late = 0
            for f in flights.itertuples():
                if pd.notna(f.dep_at) and pd.notna(f.dep_delay) and t - window < f.dep_at <= t:
                    n += 1
                    late += f.dep_delay > 15
            rows.append((*group, t, late / n if n else np.nan, n))
    return pd.DataFrame(rows, columns=[*by, "event_timestamp", "delay_rate", "n_departed"])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("by", [["origin"], ["origin", "carrier"]])
@pytest.mark.parametrize("window", [pd.Timedelta(hours=3), pd.Timedelta(hours=24)])
def test_matches_oracle(seed, by, window):
    """Rate and count per group and hour equal a loop over all flights."""
    departures = random_departures(seed).sample(frac=1, random_state=seed)  # unsorted input
    at = hourly_grid(T0, T0 + pd.Timedelta(hours=50))[::2]
    got = rolling_delay_rate(departures, by, window, at)
    want = oracle(departures, by, window, at)
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want, check_dtype=False, check_exact=False
    )


def test_scheduled_before_but_departed_after_is_not_counted():
    """A flight scheduled before t that leaves after t is unknown at t: not in the rate."""
    departures = pd.DataFrame(
        {
            "origin": ["JFK", "JFK"],
            "sched_dep": [T0 + pd.Timedelta(hours=9), T0 + pd.Timedelta(hours=9)],
            "dep_at": [T0 + pd.Timedelta(hours=9, minutes=5), T0 + pd.Timedelta(hours=11)],
            "dep_delay": [5.0, 120.0],
        }
    )
    at = pd.DatetimeIndex([T0 + pd.Timedelta(hours=10), T0 + pd.Timedelta(hours=11)])
    got = rolling_delay_rate(departures, "origin", pd.Timedelta(hours=3), at)
    assert got["n_departed"].tolist() == [1, 2]
    assert got["delay_rate"].tolist() == [0.0, 0.5]


def test_window_is_open_at_the_start_and_closed_at_the_end():
    """A departure exactly at t counts; one exactly at t - window does not."""
    departures = pd.DataFrame(
        {"origin": ["EWR"], "dep_at": [T0 + pd.Timedelta(hours=3)], "dep_delay": [30.0]}
    )
    at = pd.DatetimeIndex([T0 + pd.Timedelta(hours=h) for h in (2, 3, 5, 6)])
    got = rolling_delay_rate(departures, "origin", pd.Timedelta(hours=3), at)
    assert got["n_departed"].tolist() == [0, 1, 1, 0]
    assert got["delay_rate"].isna().tolist() == [True, False, False, True]


def test_bad_input_is_named():
    """Missing columns and naive grids fail with a clear message."""
    departures = random_departures(0, 5)
    with pytest.raises(ValueError, match="lack columns"):
        rolling_delay_rate(departures.drop(columns="dep_delay"), "origin", "3h", [T0])
    with pytest.raises(ValueError, match="timezone-aware"):
        rolling_delay_rate(departures, "origin", "3h", [T0.tz_localize(None)])
    with pytest.raises(ValueError, match="window must be positive"):
        rolling_delay_rate(departures, "origin", "0h", [T0])


def test_hourly_grid_covers_whole_hours_in_the_interval():
    """Hours in [start, end): a partial first hour is skipped, the end is excluded."""
    grid = hourly_grid("2013-01-01T00:30Z", "2013-01-01T03:00Z")
    assert list(grid) == [T0 + pd.Timedelta(hours=h) for h in (1, 2)]
