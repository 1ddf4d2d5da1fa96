"""Feast over the feature tables: same training set as asof_join and merge_asof; online lookups.

One week of real 2013 data: feature tables are written under a temporary home, the generated
repository is applied with the Python API, and the point-in-time training set from Feast's
`get_historical_features` must equal ours row for row. Materialised values are then read back
online from SQLite and from a PostgreSQL started here (pgserver, stopped at the end).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

from mlops_pipeline.features import feast_repo
from mlops_pipeline.features import tables as feature_tables
from mlops_pipeline.features.bench import merge_asof_training_set
from mlops_pipeline.features.tables import VIEWS
from mlops_pipeline.features.training_set import build_training_set, entity_frame
from mlops_pipeline.paths import Paths
from mlops_pipeline.source import timeline

pytestmark = pytest.mark.slow

START, END = pd.Timestamp("2013-03-08", tz="UTC"), pd.Timestamp("2013-03-15", tz="UTC")
TABLES_FROM = START - pd.Timedelta(days=8)


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    """Tables for [START - 8 days, END) written to Parquet, the entity frame, an applied repo."""
    events = timeline.build_timeline(None, END)
    flights, weather, planes = (timeline.rows(events, t) for t in ("flights", "weather", "planes"))
    tables = feature_tables.build_feature_tables(flights, weather, planes, TABLES_FROM, END)
    paths = Paths.at(tmp_path_factory.mktemp("home"))
    feature_tables.write_feature_tables(paths, tables, TABLES_FROM, END)
    repo = feast_repo.write_repo(paths)
    store = feast_repo.apply(repo, paths.features)
    return {
        "paths": paths,
        "store": store,
        "tables": tables,
        "entities": entity_frame(flights, START, END),
    }


def test_repository_files_and_registry(week):
    """feature_store.yaml names the file offline store and the views are registered."""
    config = (week["paths"].feature_repo / "feature_store.yaml").read_text()
    assert "type: file" in config and "type: sqlite" in config
    assert (week["paths"].feature_repo / "features.py").exists()
    registered = {fv.name for fv in week["store"].list_feature_views()}
    assert registered == set(VIEWS)
    ttl = {fv.name: fv.ttl for fv in week["store"].list_feature_views()}
    assert ttl["weather"] == pd.Timedelta(hours=3).to_pytimedelta()


def test_feast_training_set_is_identical_to_asof_and_merge_asof(week):
    """Same rows, same order, same values (NaN where missing) from all three joins."""
    ours = build_training_set(week["entities"], week["tables"])
    theirs = build_training_set(week["entities"], method="feast", repo=week["store"])
    baseline = merge_asof_training_set(week["entities"], week["tables"])
    assert len(ours) == len(week["entities"]) > 5000
    pd.testing.assert_frame_equal(theirs, ours)
    pd.testing.assert_frame_equal(baseline, ours)
    # Not vacuous: most weather and rate features are present.
    assert (
        ours["temp"].notna().mean() > 0.95 and ours["carrier_delay_rate_24h"].notna().mean() > 0.9
    )


def _latest(tables, view, key, value, end):
    table = tables[view.name]
    rows = table[(table[view.key] == value) & (table["event_timestamp"] <= end)]
    return rows.sort_values("event_timestamp").iloc[-1]


def _check_online(store, tables, flight):
    got = feast_repo.online_features(store, flight)
    for view in VIEWS.values():
        want = _latest(tables, view, view.key, flight[view.key], END)
        for feature in view.features:
            expected = want[feature]
            if pd.isna(expected):
                assert got[feature] is None, feature
            else:
                assert got[feature] == pytest.approx(expected), feature


def test_materialize_then_online_lookup_sqlite(week):
    """After materialising the week, one flight's online features are each view's latest row."""
    feast_repo.materialize(week["store"], TABLES_FROM, END)
    flight = week["entities"].iloc[-1].to_dict()
    _check_online(week["store"], week["tables"], flight)


def test_online_lookup_postgres(week, tmp_path):
    """The same lookup against Feast's PostgreSQL online store on a pgserver instance."""
    import pgserver

    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="stop")
    try:
        uri = urlparse(server.get_uri())
        socket_dir = parse_qs(uri.query)["host"][0]
        paths = Paths(week["paths"].home)
        pg_paths = Paths.at(tmp_path / "pg_home")
        pg_paths.home.mkdir()
        (pg_paths.home / "features").symlink_to(paths.features)
        repo = feast_repo.write_repo(pg_paths, online="postgres", pg_host=socket_dir)
        store = feast_repo.apply(repo, paths.features)
        feast_repo.materialize(store, TABLES_FROM, END)
        flight = week["entities"].iloc[-1].to_dict()
        _check_online(store, week["tables"], flight)
        # The online table holds one row per airport and feature: 3 airports x 8 features.
        count = server.psql("SELECT count(*) FROM flight_delays_weather;")
        assert int(count.split()[2]) == 3 * len(VIEWS["weather"].features)
    finally:
        server.cleanup()


def test_online_lookup_of_unknown_entity_is_empty(week):
    """An airport, carrier, route and plane the store never saw give missing features."""
    got = feast_repo.online_features(
        week["store"], {"origin": "SFO", "carrier": "ZZ", "route": "SFO-LAX", "tailnum": np.nan}
    )
    assert all(got[f] is None for v in VIEWS.values() for f in v.features)
