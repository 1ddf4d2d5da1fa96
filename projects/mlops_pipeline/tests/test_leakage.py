"""Leakage demonstration, March 2013: the naive join sees the future, the point-in-time one not.

The naive training set joins weather of the scheduled departure hour in its final, corrected
version and delay rates counted by scheduled time. Both use values recorded AFTER the prediction
time (scheduled departure - 2 h); we count them. The point-in-time set joins only rows whose
availability time is at or before the prediction time, which we check value by value, and the
naive set's validation AUC comes out higher: the optimism a leaky offline metric would sell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_pipeline.features import tables as feature_tables
from mlops_pipeline.features.schema import RATE_FEATURES
from mlops_pipeline.features.tables import VIEWS
from mlops_pipeline.features.training_set import (
    build_training_set,
    entity_frame,
    naive_training_set,
)
from mlops_pipeline.source import timeline

START, END = pd.Timestamp("2013-03-01", tz="UTC"), pd.Timestamp("2013-04-01", tz="UTC")


@pytest.fixture(scope="module")
def march():
    events = timeline.build_timeline(None, END)
    flights, weather, planes = (timeline.rows(events, t) for t in ("flights", "weather", "planes"))
    tables = feature_tables.build_feature_tables(
        flights, weather, planes, START - pd.Timedelta(days=8), END
    )
    entities = entity_frame(flights, START, END)
    return {
        "flights": flights,
        "weather": weather,
        "pit": build_training_set(entities, tables, provenance=True),
        "naive": naive_training_set(flights, weather, planes, START, END),
        "departures": feature_tables.departures(flights),
    }


def test_naive_weather_was_not_yet_published_at_prediction_time(march):
    """Every naive weather value comes from an observation published after the prediction time."""
    naive, weather = march["naive"], march["weather"]
    first_published = weather.groupby(["origin", "obs_hour"])["recorded_at"].min()
    key = pd.MultiIndex.from_arrays([naive["origin"], naive["weather_obs_hour"]])
    published = pd.Series(first_published.reindex(key).to_numpy(), index=naive.index)
    has_weather = published.notna()
    future = published[has_weather] > naive.loc[has_weather, "event_timestamp"]
    assert has_weather.mean() > 0.99
    assert future.all(), f"{(~future).sum()} naive weather values were already known"


def test_naive_weather_uses_corrections_recorded_later(march):
    """Some naive precipitation/visibility values are corrections, recorded hours later."""
    naive, weather = march["naive"], march["weather"]
    corrected = weather[weather["op"] == "update"][["origin", "obs_hour", "precip", "visib"]]
    merged = naive.merge(
        corrected.rename(columns={"obs_hour": "weather_obs_hour"}),
        on=["origin", "weather_obs_hour"],
        suffixes=("", "_final"),
    )
    assert len(merged) > 100, "March has corrected hours that departing flights were joined to"
    assert (merged["precip"] == merged["precip_final"]).all()  # naive = the final value


def test_naive_rates_count_departures_after_the_prediction_time(march):
    """For most sampled flights, the naive 3 h origin rate counts flights that had not left yet."""
    naive, departed = march["naive"], march["departures"]
    sample = naive.sample(200, random_state=0)
    leaked_rows = 0
    for row in sample.itertuples():
        end = row.sched_dep.floor("h")
        counted = departed[
            (departed["origin"] == row.origin)
            & (departed["sched_dep"] > end - pd.Timedelta(hours=3))
            & (departed["sched_dep"] <= end)
        ]
        leaked_rows += bool((counted["available_at"] > row.event_timestamp).any())
    assert leaked_rows / len(sample) > 0.8


def test_point_in_time_set_uses_nothing_recorded_after_prediction_time(march):
    """Every joined row of every view was available at or before the entity's event_timestamp."""
    pit = march["pit"]
    for view in VIEWS:
        known_at = pit[f"{view}__event_timestamp"]
        present = known_at.notna()
        assert present.mean() > 0.8, view
        assert (known_at[present] <= pit.loc[present, "event_timestamp"]).all(), view


def test_point_in_time_rate_counts_only_known_departures(march):
    """Sampled 3 h origin rates recomputed by brute force from departures known by then."""
    pit, departed = march["pit"], march["departures"]
    for row in pit.sample(100, random_state=1).itertuples():
        t = row.origin_delay_rates__event_timestamp
        counted = departed[
            (departed["origin"] == row.origin)
            & (departed["available_at"] > t - pd.Timedelta(hours=3))
            & (departed["available_at"] <= t)
        ]
        assert (counted["available_at"] <= row.event_timestamp).all()
        expected = (counted["dep_delay"] > 15).mean() if len(counted) else np.nan
        assert row.origin_delay_rate_3h == pytest.approx(expected, nan_ok=True)


def test_naive_validation_auc_is_inflated(march):
    """Trained on 1-21 March, scored on 22-31 March: leaky rate features look better."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cut = pd.Timestamp("2013-03-22", tz="UTC")
    scores = {}
    for name in ("pit", "naive"):
        data = march[name]
        train, valid = data[data["sched_dep"] < cut], data[data["sched_dep"] >= cut]
        model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500))
        model.fit(train[RATE_FEATURES], train["delayed"])
        scores[name] = roc_auc_score(
            valid["delayed"], model.predict_proba(valid[RATE_FEATURES])[:, 1]
        )
    assert scores["pit"] > 0.6, scores  # the honest features still carry signal
    assert scores["naive"] > scores["pit"] + 0.02, scores
