"""Checkpoints 2.3 and 2.4: the point-in-time join and a leakage-free rolling rate (mlops_pipeline).

2.3 grades `mlops_pipeline.features.asof.asof_join` (Feast's semantics: the latest feature row at
or before the entity's time, ties to the latest created time, missing beyond the TTL); 2.4 grades
`mlops_pipeline.features.rolling.rolling_delay_rate` (the share of delayed flights among those
that DEPARTED in (t - window, t]). Every expected value comes from a brute-force loop written
below, not from the reference implementation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from learn.testing import import_learner

T0 = pd.Timestamp("2013-06-01", tz="UTC")


def _at(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


@pytest.fixture
def asof():
    return import_learner("mlops_pipeline.features.asof")


@pytest.fixture
def rolling():
    return import_learner("mlops_pipeline.features.rolling")


# ------------------------------------------------------------------- 2.3 as-of join


def _asof_oracle(entities, features, key, ttl, created):
    """Per entity row, scan every feature row: same key, not later, latest (time, created)."""
    values = []
    for e in entities.itertuples():
        best = None
        for f in features.itertuples():
            if pd.isna(getattr(e, key)) or getattr(e, key) != getattr(f, key):
                continue
            if f.event_timestamp > e.event_timestamp:
                continue
            rank = (f.event_timestamp, getattr(f, created))
            if best is None or rank > best[0]:
                best = (rank, f.value)
        if best is None or (ttl is not None and best[0][0] < e.event_timestamp - ttl):
            values.append(np.nan)
        else:
            values.append(best[1])
    return np.array(values, dtype=float)


def _random_join_frames(seed: int):
    """Unsorted frames on an integer-hour clock, so equal times and keys are frequent."""
    rng = np.random.default_rng(seed)
    n_f, n_e = 60, 40
    features = pd.DataFrame(
        {
            "airport": rng.choice(["EWR", "JFK", "LGA"], n_f),
            "event_timestamp": [_at(h) for h in rng.integers(0, 10, n_f)],
            # distinct created times, so the expected winner of a tie is unambiguous
            "created": [_at(h) for h in rng.permutation(n_f)],
            "value": rng.normal(size=n_f),
        }
    )
    entities = pd.DataFrame(
        {
            "airport": rng.choice(["EWR", "JFK", "LGA", "SFO", None], n_e),
            "event_timestamp": [_at(h) for h in rng.integers(0, 12, n_e)],
        },
        index=rng.permutation(n_e) + 500,
    )
    return entities, features


@pytest.mark.checkpoint("2.3")
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ttl_hours", [None, 2])
def test_asof_join_matches_brute_force(asof, seed, ttl_hours):
    """Latest row at or before each entity time, ties to the latest created, NaN past the TTL."""
    entities, features = _random_join_frames(seed)
    ttl = None if ttl_hours is None else pd.Timedelta(hours=ttl_hours)
    got = asof.asof_join(entities, features, ["airport"], ttl=ttl, created_ts="created")
    want = _asof_oracle(entities, features, "airport", ttl, "created")
    np.testing.assert_array_equal(got["value"].to_numpy(dtype=float), want)


@pytest.mark.checkpoint("2.3")
def test_asof_join_keeps_entity_rows_in_order(asof):
    """A left join: same row count, same index and order, entity columns unchanged."""
    entities, features = _random_join_frames(7)
    got = asof.asof_join(entities, features, "airport", ttl=pd.Timedelta(hours=3))
    assert list(got.index) == list(entities.index)
    pd.testing.assert_frame_equal(got[entities.columns], entities)


@pytest.mark.checkpoint("2.3")
def test_asof_join_ttl_boundary_and_future_rows(asof):
    """Exactly TTL old is kept, older is missing, and a later row is never used."""
    features = pd.DataFrame(
        {"airport": ["JFK", "JFK"], "event_timestamp": [_at(0), _at(4)], "value": [1.0, 2.0]}
    )
    entities = pd.DataFrame(
        {
            "airport": ["JFK", "JFK", "JFK", "LGA"],
            "event_timestamp": [_at(3), _at(3) + pd.Timedelta(seconds=1), _at(4), _at(4)],
        }
    )
    got = asof.asof_join(entities, features, "airport", ttl=pd.Timedelta(hours=3))
    np.testing.assert_array_equal(got["value"].to_numpy(dtype=float), [1.0, np.nan, 2.0, np.nan])


# ------------------------------------------------------------- 2.4 rolling delay rate


def _rate_oracle(flights, window, at):
    """Per airport and time t: loop over the flights that departed in (t - window, t]."""
    rows = []
    for airport in sorted(flights["origin"].unique()):
        mine = flights[flights["origin"] == airport]
        for t in at:
            left = [
                f.dep_delay for f in mine.itertuples()
                if pd.notna(f.dep_at) and t - window < f.dep_at <= t
            ]  # fmt: skip
            n = len(left)
            rows.append((airport, t, sum(d > 15 for d in left) / n if n else np.nan, n))
    return pd.DataFrame(rows, columns=["origin", "event_timestamp", "delay_rate", "n_departed"])


def _random_flights(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 80
    sched = T0 + pd.to_timedelta(rng.integers(0, 30 * 60, n), unit="min")
    delay = rng.choice([-4.0, 0.0, 15.0, 16.0, 45.0, 240.0], n)
    cancelled = rng.random(n) < 0.1
    return pd.DataFrame(
        {
            "origin": rng.choice(["EWR", "JFK"], n),
            "sched_dep": sched,
            "dep_at": (sched + pd.to_timedelta(delay, unit="min")).where(~cancelled),
            "dep_delay": np.where(cancelled, np.nan, delay),
        }
    ).sample(frac=1, random_state=seed)


@pytest.mark.checkpoint("2.4")
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("window_hours", [3, 24])
def test_rolling_rate_matches_brute_force(rolling, seed, window_hours):
    """Rate and count per airport and hour equal a loop over departures in (t - w, t]."""
    flights = _random_flights(seed)
    at = pd.date_range(T0, periods=36, freq="h")
    window = pd.Timedelta(hours=window_hours)
    got = rolling.rolling_delay_rate(flights, "origin", window, at)
    got = got.sort_values(["origin", "event_timestamp"]).reset_index(drop=True)
    want = _rate_oracle(flights, window, at)
    np.testing.assert_array_equal(got["n_departed"].to_numpy(), want["n_departed"].to_numpy())
    np.testing.assert_allclose(got["delay_rate"].to_numpy(dtype=float), want["delay_rate"])
    assert list(got["origin"]) == list(want["origin"])
    assert list(got["event_timestamp"]) == list(want["event_timestamp"])


@pytest.mark.checkpoint("2.4")
def test_rolling_rate_counts_by_departure_not_schedule(rolling):
    """A flight scheduled before t but departing after t is not counted at t (label unknown)."""
    flights = pd.DataFrame(
        {
            "origin": ["LGA", "LGA", "LGA"],
            "sched_dep": [_at(8), _at(9), _at(12)],
            "dep_at": [_at(8.1), _at(12.5), _at(11.9)],  # the last one left early
            "dep_delay": [6.0, 210.0, -6.0],
        }
    )
    at = pd.DatetimeIndex([_at(10), _at(12), _at(13)])
    got = rolling.rolling_delay_rate(flights, "origin", pd.Timedelta(hours=6), at)
    got = got.sort_values("event_timestamp")
    assert got["n_departed"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(got["delay_rate"].to_numpy(dtype=float), [0.0, 0.0, 1 / 3])


@pytest.mark.checkpoint("2.4")
def test_rolling_rate_missing_when_nobody_departed(rolling):
    """With no departure in the window the rate is missing and the count is zero."""
    flights = pd.DataFrame({"origin": ["EWR"], "dep_at": [_at(1)], "dep_delay": [30.0]})
    at = pd.DatetimeIndex([_at(0), _at(1), _at(5)])
    got = rolling.rolling_delay_rate(flights, "origin", pd.Timedelta(hours=3), at)
    got = got.sort_values("event_timestamp")
    assert got["n_departed"].tolist() == [0, 1, 0]
    assert got["delay_rate"].isna().tolist() == [True, False, True]
