"""Realised AUC per ISO week from delayed labels: maturity, joins, gauges, the landing zone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import roc_auc_score

from mlops_pipeline import data
from mlops_pipeline.cdc.landing import write_batch
from mlops_pipeline.monitoring import realised
from mlops_pipeline.paths import Paths
from mlops_pipeline.pipeline.steps import LABEL_MATURITY
from mlops_pipeline.source.schema import landing_schema

NOW = pd.Timestamp("2013-03-20T12:00:00Z")


@pytest.fixture(scope="module")
def flights():
    """ISO weeks 10-12 of 2013 and the start of week 13: real schedules and outcomes."""
    return data.flights("2013-03-04T05:00:00Z", "2013-03-28T04:00:00Z")


@pytest.fixture(scope="module")
def predictions(flights):
    """A logged prediction per flight, 2 h ahead, that knows something about the outcome."""
    rng = np.random.default_rng(0)
    signal = flights["dep_delay"].fillna(0).to_numpy() / 30 + rng.normal(0, 1.5, len(flights))
    return pd.DataFrame(
        {
            "flight_id": flights["flight_id"],
            "as_of": flights["sched_dep"] - pd.Timedelta(hours=2),
            "delay_probability": 1 / (1 + np.exp(-signal)),
        }
    )


def _week(stamps: pd.Series) -> pd.Series:
    iso = stamps.dt.tz_convert(data.LOCAL_TZ).dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)


def test_weekly_auc_equals_sklearn_on_the_matured_labelled_flights(flights, predictions):
    """Per ISO week (New York time): sklearn's AUC over flights scheduled >= a day before now,
    departed (cancelled have no label); fresher flights are counted as predictions only."""
    frame = realised.realised_auc(predictions, flights, NOW)
    joined = predictions.merge(flights, on="flight_id")
    joined = joined.assign(week=_week(joined["sched_dep"]))
    matured = joined.loc[(joined["sched_dep"] <= NOW - LABEL_MATURITY) & ~joined["cancelled"]]
    assert frame["week"].tolist() == ["2013-W10", "2013-W11", "2013-W12", "2013-W13"]
    for row in frame.itertuples():
        week = matured.loc[matured["week"] == row.week]
        assert row.predictions == int((joined["week"] == row.week).sum())
        assert row.labelled == len(week)
        if len(week):
            y = (week["dep_delay"] > 15).astype(int)
            assert row.auc == pytest.approx(roc_auc_score(y, week["delay_probability"]))
            assert row.base_rate == pytest.approx(y.mean())
        else:
            assert np.isnan(row.auc)
    complete = dict(zip(frame["week"], frame["complete"], strict=True))
    assert complete == {"2013-W10": True, "2013-W11": True, "2013-W12": False, "2013-W13": False}
    assert frame.set_index("week").loc["2013-W10", "auc"] > 0.7


def test_the_latest_prediction_before_departure_counts(flights, predictions):
    """A retry logged later (still before departure) replaces the first; one logged after the
    departure is ignored (it could have seen the outcome)."""
    first = predictions.iloc[:400].copy()
    later = first.assign(as_of=first["as_of"] + pd.Timedelta(hours=1), delay_probability=0.5)
    after = first.assign(
        as_of=first["as_of"] + pd.Timedelta(hours=3),
        delay_probability=1.0 - first["delay_probability"],
    )
    frame = realised.realised_auc(pd.concat([first, later, after]), flights, NOW)
    # Every counted score is the constant 0.5 of the later retry: AUC exactly 0.5.
    assert frame.loc[frame["labelled"] > 0, "auc"].tolist() == [0.5]
    assert frame["predictions"].sum() == 400


def test_missing_columns_and_duplicate_outcomes_are_refused(flights, predictions):
    """A prediction log without scores, or two states of one flight, are named errors."""
    with pytest.raises(ValueError, match="delay_probability"):
        realised.realised_auc(predictions.drop(columns="delay_probability"), flights, NOW)
    with pytest.raises(ValueError, match="several rows"):
        realised.realised_auc(predictions, pd.concat([flights, flights.iloc[:1]]), NOW)


def test_gauges_per_week_in_prometheus_text_format(flights, predictions, tmp_path):
    """mlops_realised_auc{week} for weeks with an AUC, counts and completeness for all."""
    frame = realised.realised_auc(predictions, flights, NOW)
    text = generate_latest(realised.realised_auc_registry(frame)).decode()
    samples = {
        (s.name, s.labels["week"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    aucs = frame.dropna(subset=["auc"])
    for row in aucs.itertuples():
        assert samples[("mlops_realised_auc", row.week)] == pytest.approx(row.auc)
    assert ("mlops_realised_auc", "2013-W13") not in samples  # nothing matured yet
    assert samples[("mlops_realised_labelled_flights", "2013-W13")] == 0
    assert samples[("mlops_realised_week_complete", "2013-W10")] == 1
    path = realised.write_textfile(frame, tmp_path / "textfile" / "realised_auc.prom")
    assert path.read_text() == text


def _landing_rows(rows: list[dict]) -> pa.Table:
    """Landing-zone rows of the flights table (the CDC columns filled in order)."""
    frame = pd.DataFrame(rows)
    frame["_lsn"] = np.arange(1, len(frame) + 1) * 100
    frame["_seq"] = 0
    frame["_commit_time"] = frame["recorded_at"]
    schema = landing_schema("flights")
    for field in schema:
        if field.name not in frame:
            frame[field.name] = None
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def test_outcomes_from_the_landing_zone_as_known_at_now(tmp_path):
    """Updates recorded after `now` are not known yet; a deleted duplicate is gone."""
    t = pd.Timestamp("2013-03-10T12:00:00Z")
    base = {"carrier": "UA", "flight": 1, "tailnum": "N1", "origin": "EWR", "dest": "IAH",
            "distance": 1400, "cancelled": False}  # fmt: skip

    def row(flight_id, op, recorded, delay=None):
        sched = t + pd.Timedelta(hours=flight_id)
        dep = None if delay is None else sched + pd.Timedelta(minutes=delay)
        return base | {"flight_id": flight_id, "_op": op, "recorded_at": recorded,
                       "sched_dep": sched, "dep_at": dep, "dep_delay": delay}  # fmt: skip

    rows = [
        row(1, "i", t - pd.Timedelta(days=1)),
        row(2, "i", t - pd.Timedelta(days=1)),
        row(3, "i", t - pd.Timedelta(days=1)),
        row(1, "u", t + pd.Timedelta(hours=1, minutes=30), delay=30.0),
        row(3, "d", t),
        row(2, "u", t + pd.Timedelta(hours=40), delay=5.0),
    ]
    paths = Paths.at(tmp_path)
    write_batch(paths.landing, "flights", _landing_rows(rows), lsn=100)
    known = realised.outcomes_from_landing(tmp_path, now=t + pd.Timedelta(hours=12))
    assert known["flight_id"].tolist() == [1, 2]
    assert known["dep_delay"].iloc[0] == 30.0 and np.isnan(known["dep_delay"].iloc[1])
    everything = realised.outcomes_from_landing(tmp_path)
    assert everything["dep_delay"].tolist() == [30.0, 5.0]
