"""Feature tables from history rows: availability times, corrections, deletes, idempotent writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_pipeline.features import tables
from mlops_pipeline.features.schema import (
    CALENDAR_FEATURES,
    KEY_COLUMNS,
    LABEL,
    PREDICTION_LEAD,
    WEATHER_FEATURES,
)
from mlops_pipeline.features.training_set import TRAINING_COLUMNS, build_training_set, entity_frame
from mlops_pipeline.paths import Paths
from mlops_pipeline.source import timeline

T0 = pd.Timestamp("2013-03-01", tz="UTC")


def _h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def _weather(rows) -> pd.DataFrame:
    """History rows (recorded_at, op, origin, obs_hour, temp); the other values constant."""
    frame = pd.DataFrame(rows, columns=["recorded_at", "op", "origin", "obs_hour", "temp"])
    for column in WEATHER_FEATURES[1:]:
        frame[column] = 1.0
    return frame


@pytest.fixture(scope="module")
def march():
    """Real history up to mid-March 2013 and its feature tables for 1-15 March."""
    events = timeline.build_timeline(None, "2013-03-15")
    flights, weather, planes = (timeline.rows(events, t) for t in ("flights", "weather", "planes"))
    built = tables.build_feature_tables(flights, weather, planes, "2013-03-01", "2013-03-15")
    return flights, weather, planes, built


def test_correction_of_newest_hour_is_a_new_row_from_its_correction_time():
    """The preliminary value stays what was known until the correction was recorded."""
    history = _weather(
        [
            (_h(1), "insert", "JFK", _h(0), 10.0),
            (_h(2), "insert", "JFK", _h(1), 11.0),
            (_h(3), "update", "JFK", _h(1), 12.0),  # corrects the newest hour
            (_h(3), "insert", "EWR", _h(2), 5.0),
        ]
    )
    table = tables.weather_features(history)
    jfk = table[table["origin"] == "JFK"]
    assert jfk["event_timestamp"].tolist() == [_h(1), _h(2), _h(3)]
    assert jfk["temp"].tolist() == [10.0, 11.0, 12.0]
    assert jfk["obs_hour"].tolist() == [_h(0), _h(1), _h(1)]


def test_correction_of_an_older_hour_does_not_replace_newer_weather():
    """A late correction of hour 0 arriving after hour 1 was published is not 'current'."""
    history = _weather(
        [
            (_h(1), "i", "LGA", _h(0), 10.0),
            (_h(2), "i", "LGA", _h(1), 11.0),
            (_h(6), "u", "LGA", _h(0), 99.0),
        ]
    )
    table = tables.weather_features(history)
    assert table["temp"].tolist() == [10.0, 11.0]


def test_history_rejects_unknown_operations():
    """An op outside insert/update/delete (or s/i/u/d) is named in the error."""
    with pytest.raises(ValueError, match=r"weather: unknown operations \['x'\]"):
        tables.weather_features(_weather([(_h(1), "x", "JFK", _h(0), 1.0)]))


def test_deleted_duplicates_are_not_flights(march):
    """Erroneous duplicates (inserted, then deleted) never reach departures or entities."""
    flights = march[0]
    deleted = set(flights.loc[flights["op"] == "delete", "flight_id"])
    assert deleted, "the timeline should contain deleted duplicates"
    assert not deleted & set(tables.final_flights(flights)["flight_id"])
    departed = tables.departures(flights)
    assert not deleted & set(departed["flight_id"])
    assert (departed["available_at"] >= departed["dep_at"]).all()


def test_rate_tables_are_dense_hourly_and_use_known_departures(march):
    """One row per group and hour; every count equals departures recorded in the window."""
    flights, _, _, built = march
    origin = built["origin_delay_rates"]
    hours = pd.date_range("2013-03-01", "2013-03-15", freq="h", inclusive="left", tz="UTC")
    assert len(origin) == 3 * len(hours)
    departed = tables.departures(flights)
    row = origin.iloc[500]
    t = row["event_timestamp"]
    window = departed[
        (departed["origin"] == row["origin"])
        & (departed["available_at"] > t - pd.Timedelta(hours=3))
        & (departed["available_at"] <= t)
    ]
    assert row["origin_n_departed_3h"] == len(window)
    if len(window):
        assert row["origin_delay_rate_3h"] == pytest.approx((window["dep_delay"] > 15).mean())
    assert set(built["route_delay_rates"].columns) == {
        "route", "event_timestamp", "route_delay_rate_7d", "route_n_departed_7d",
    }  # fmt: skip


def test_entity_frame_and_training_set_columns(march):
    """Departed flights only, predicted PREDICTION_LEAD early, with the schema's columns."""
    flights, _, _, built = march
    entities = entity_frame(flights, "2013-03-08", "2013-03-15")
    assert list(entities.columns) == [*KEY_COLUMNS, *CALENDAR_FEATURES, LABEL]
    assert (entities["sched_dep"] - entities["event_timestamp"] == PREDICTION_LEAD).all()
    final = tables.final_flights(flights).set_index("flight_id")
    assert final.loc[entities["flight_id"], "dep_at"].notna().all()
    training = build_training_set(entities, built)
    assert list(training.columns) == TRAINING_COLUMNS
    assert len(training) == len(entities)
    assert training["temp"].notna().mean() > 0.95


def test_write_is_idempotent_and_replaces_only_the_interval(tmp_path, march):
    """Writing twice gives the same bytes; rewriting a sub-interval keeps the rest of the day."""
    weather = march[3]["weather"]
    paths = Paths.at(tmp_path)
    lo, hi = "2013-03-01", "2013-03-03"
    day = weather[(weather["event_timestamp"] >= lo) & (weather["event_timestamp"] < hi)]
    written = tables.write_feature_table(paths, "weather", day, lo, hi)
    assert [p.parent.name for p in written] == ["date=2013-03-01", "date=2013-03-02"]
    first = [p.read_bytes() for p in written]
    tables.write_feature_table(paths, "weather", day, lo, hi)
    assert [p.read_bytes() for p in written] == first
    assert not list(tmp_path.rglob("*.tmp"))

    # Replace 06:00-12:00 of 1 March by nothing: only those rows disappear.
    tables.write_feature_table(paths, "weather", day.iloc[:0], _h(6), _h(12))
    back = tables.read_feature_table(paths, "weather")
    stamp = day["event_timestamp"]
    kept = day[(stamp < _h(6)) | (stamp >= _h(12))].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, kept, check_dtype=False)


def test_write_rejects_rows_outside_the_interval(tmp_path, march):
    """Rows outside [start, end) are an error naming the view and interval."""
    weather = march[3]["weather"]
    with pytest.raises(ValueError, match="weather: .* rows have event_timestamp outside"):
        tables.write_feature_table(Paths.at(tmp_path), "weather", weather, T0, _h(1))


def test_planes_are_available_from_their_load_date(march):
    """plane_age = 2013 - year built, known from 2012-12-31 (the snapshot)."""
    planes_history, built = march[2], march[3]
    planes = built["planes"]
    assert (planes["event_timestamp"] == timeline.PLANES_LOADED_AT).all()
    row = planes_history.dropna(subset=["year"]).iloc[0]
    got = planes.set_index("tailnum").loc[row["tailnum"]]
    assert got["plane_age"] == 2013 - row["year"] and got["seats"] == row["seats"]
    assert np.isnan(planes.loc[planes_history["year"].isna().to_numpy(), "plane_age"]).all()
