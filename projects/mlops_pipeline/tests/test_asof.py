"""asof_join against a brute-force oracle, pandas merge_asof, and its edge cases."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from mlops_pipeline.features.asof import asof_join

T0 = pd.Timestamp("2013-01-01", tz="UTC")


def hours(h) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=float(h))


def oracle(entities, features, keys, ttl=None, created=None, column="v"):
    """For each entity row, loop over all feature rows: the definition, written out."""
    out = []
    for _, e in entities.iterrows():
        best = None
        for pos, (_, f) in enumerate(features.iterrows()):
            if any(pd.isna(e[k]) or pd.isna(f[k]) or e[k] != f[k] for k in keys):
                continue
            if pd.isna(e["event_timestamp"]) or f["event_timestamp"] > e["event_timestamp"]:
                continue
            rank = (f["event_timestamp"], f[created] if created else 0, pos)
            if created and pd.isna(f[created]):
                rank = (f["event_timestamp"], pd.Timestamp.min.tz_localize("UTC"), pos)
            if best is None or rank > best[0]:
                best = (rank, f[column])
        if best is None or (ttl is not None and best[0][0] < e["event_timestamp"] - ttl):
            out.append(np.nan)
        else:
            out.append(best[1])
    return np.array(out, dtype=float)


def random_frames(seed: int, n_entities=60, n_features=80, n_keys=4, span=12):
    """Integer-hour timestamps in a small range, so equal times and equal keys are common."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"k{i}" for i in range(n_keys)] + [None], dtype=object)
    entities = pd.DataFrame(
        {
            "key": pd.array(rng.choice(keys, n_entities, p=[0.9 / n_keys] * n_keys + [0.1]),
                            dtype="string"),
            "event_timestamp": [hours(h) for h in rng.integers(0, span, n_entities)],
        },
        index=rng.permutation(n_entities) + 100,
    )  # fmt: skip
    features = pd.DataFrame(
        {
            "key": pd.array(rng.choice(keys[:-1], n_features), dtype="string"),
            "event_timestamp": [hours(h) for h in rng.integers(0, span, n_features)],
            "created": [hours(h) for h in rng.integers(0, 4, n_features)],
            "v": rng.normal(size=n_features),
        }
    )
    return entities, features


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ttl", [None, pd.Timedelta(hours=2), pd.Timedelta(hours=5)])
def test_matches_oracle_with_ties_ttl_and_missing_keys(seed, ttl):
    """Random unsorted frames with equal times, equal created times and a null key."""
    entities, features = random_frames(seed)
    got = asof_join(entities, features, "key", ttl=ttl, created_ts="created", columns=["v"])
    want = oracle(entities, features, ["key"], ttl=ttl, created="created")
    np.testing.assert_array_equal(got["v"].to_numpy(), want)
    assert list(got.index) == list(entities.index)
    assert len(got) == len(entities)


def test_ttl_edge_is_inclusive():
    """A feature exactly `ttl` old is used; one nanosecond older is missing."""
    features = pd.DataFrame({"key": ["a"], "event_timestamp": [hours(0)], "v": [1.0]})
    ttl = pd.Timedelta(hours=3)
    at_edge = hours(3)
    entities = pd.DataFrame(
        {"key": ["a", "a", "a"], "event_timestamp": [at_edge, at_edge + pd.Timedelta(1), hours(0)]}
    )
    got = asof_join(entities, features, "key", ttl=ttl)
    np.testing.assert_array_equal(got["v"].to_numpy(), [1.0, np.nan, 1.0])


def test_future_rows_never_join():
    """A feature row one nanosecond after the entity's time is not visible to it."""
    features = pd.DataFrame(
        {"key": ["a", "a"], "event_timestamp": [hours(0), hours(2) + pd.Timedelta(1)], "v": [1, 2]}
    )
    entities = pd.DataFrame({"key": ["a"], "event_timestamp": [hours(2)]})
    assert asof_join(entities, features, "key")["v"].tolist() == [1]


def test_created_timestamp_breaks_ties_and_null_created_loses():
    """At equal event times the latest created timestamp wins; a null created one loses."""
    features = pd.DataFrame(
        {
            "key": ["a", "a", "a"],
            "event_timestamp": [hours(1)] * 3,
            "created": [hours(5), pd.NaT, hours(3)],
            "v": ["late", "null", "early"],
        }
    )
    entities = pd.DataFrame({"key": ["a"], "event_timestamp": [hours(1)]})
    got = asof_join(entities, features, "key", created_ts="created")
    assert got["v"].tolist() == ["late"]


def test_several_keys_prefix_and_dtypes():
    """Two key columns must both match; prefixed columns keep their (nullable) dtypes."""
    features = pd.DataFrame(
        {
            "a": ["x", "x", "y"],
            "b": [1, 2, 1],
            "event_timestamp": [hours(0)] * 3,
            "n": pd.array([10, 20, 30], dtype="Int64"),
            "s": pd.array(["p", "q", "r"], dtype="string"),
        }
    )
    entities = pd.DataFrame(
        {"a": ["x", "y", "y"], "b": [2, 1, 2], "event_timestamp": [hours(1)] * 3}
    )
    got = asof_join(entities, features, ["a", "b"], prefix="f_")
    assert got["f_n"].tolist()[:2] == [20, 30] and got["f_n"].isna().tolist() == [
        False,
        False,
        True,
    ]
    assert got["f_s"].dtype == "string" and got["f_n"].dtype == "Int64"


def test_agrees_with_pandas_merge_asof():
    """Without created-time ties, the join equals pandas.merge_asof(by=key, tolerance=ttl)."""
    rng = np.random.default_rng(3)
    n = 5000
    features = pd.DataFrame(
        {
            "key": rng.choice(list("abcdefg"), n),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            "v": rng.normal(size=n),
        }
    ).drop_duplicates(["key", "event_timestamp"])
    entities = pd.DataFrame(
        {
            "key": rng.choice(list("abcdefgh"), n),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        }
    )
    ttl = pd.Timedelta(minutes=30)
    got = asof_join(entities, features, "key", ttl=ttl)
    want = (
        pd.merge_asof(
            entities.reset_index().sort_values("event_timestamp"),
            features.sort_values("event_timestamp"),
            on="event_timestamp",
            by="key",
            tolerance=ttl,
        )
        .set_index("index")
        .loc[entities.index]
    )
    np.testing.assert_array_equal(got["v"].to_numpy(), want["v"].to_numpy())


def test_year_scale_is_fast():
    """330k entity rows against 26k weather-like rows join in well under 10 s."""
    rng = np.random.default_rng(0)
    year = 365 * 24 * 3600
    features = pd.DataFrame(
        {
            "origin": rng.choice(["EWR", "JFK", "LGA"], 26_000),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, year, 26_000), unit="s"),
            "temp": rng.normal(size=26_000),
        }
    )
    entities = pd.DataFrame(
        {
            "origin": rng.choice(["EWR", "JFK", "LGA"], 330_000),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, year, 330_000), unit="s"),
        }
    )
    start = time.perf_counter()
    got = asof_join(entities, features, "origin", ttl=pd.Timedelta(hours=3))
    elapsed = time.perf_counter() - start
    assert len(got) == 330_000 and got["temp"].notna().mean() > 0.5
    assert elapsed < 3.0, f"asof_join took {elapsed:.2f} s"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e, f: (e.drop(columns="key"), f), "entity frame lacks"),
        (lambda e, f: (e, f.drop(columns="event_timestamp")), "feature frame lacks"),
        (lambda e, f: (e.assign(event_timestamp="x"), f), "not a timestamp"),
        (
            lambda e, f: (e.assign(event_timestamp=e["event_timestamp"].dt.tz_localize(None)), f),
            "timezone",
        ),
        (lambda e, f: (e.assign(v=1), f), "already exist"),
        (lambda e, f: (e.assign(key=1), f), "key 'key'"),
    ],
)
def test_bad_input_is_named(change, message):
    """Bad frames fail with an error naming the frame or column."""
    entities, features = random_frames(0, 5, 5)
    entities, features = change(entities, features)
    with pytest.raises(ValueError, match=message):
        asof_join(entities, features, "key", columns=["v"])


def test_non_positive_ttl_is_rejected():
    """ttl=0 would silently mean 'no limit' in Feast; here it is an error."""
    entities, features = random_frames(0, 5, 5)
    with pytest.raises(ValueError, match="ttl must be positive"):
        asof_join(entities, features, "key", ttl=pd.Timedelta(0))
