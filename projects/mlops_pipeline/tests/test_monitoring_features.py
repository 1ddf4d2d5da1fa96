"""The monitor's features: the package's point-in-time builders, a month at a time, cached."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_pipeline.features import tables, training_set
from mlops_pipeline.features.training_set import TRAINING_COLUMNS
from mlops_pipeline.monitoring import features
from mlops_pipeline.source import timeline

pytestmark = pytest.mark.slow  # the source's timeline of the year takes ~12 s to build


def test_month_bounds_are_new_york_midnights():
    """January starts at 05:00 UTC (EST); July at 04:00 UTC (EDT)."""
    assert features.month_bounds("2013-01") == (
        pd.Timestamp("2013-01-01T05:00Z"),
        pd.Timestamp("2013-02-01T05:00Z"),
    )
    assert features.month_bounds("2013-07")[0] == pd.Timestamp("2013-07-01T04:00Z")
    with pytest.raises(ValueError, match="not a month"):
        features.as_month("March")


def test_a_month_alone_equals_the_same_flights_in_a_longer_build(tmp_path):
    """February built on its own (history margins, table margins) gives exactly the rows a
    build over late January to early March gives for February's flights; a second load reads
    the cache."""
    frames, report = features.load_months(["2013-02"], tmp_path)
    assert report.built == ["2013-02"] and not report.cached
    february = frames["2013-02"]
    start, end = features.month_bounds("2013-02")
    events = timeline.build_timeline(None, "2013-03-05")
    history = {t: timeline.rows(events, t) for t in ("flights", "weather", "planes")}
    built = tables.build_feature_tables(
        history["flights"], history["weather"], history["planes"], "2013-01-20", "2013-03-05"
    )
    entities = training_set.entity_frame(history["flights"], start, end)
    expected = training_set.build_training_set(entities, built)
    pd.testing.assert_frame_equal(february, expected)
    assert list(february.columns) == TRAINING_COLUMNS
    assert february["sched_dep"].between(start, end, inclusive="left").all()
    again, report = features.load_months(["2013-02"], tmp_path)
    assert report.cached == ["2013-02"] and not report.built
    pd.testing.assert_frame_equal(again["2013-02"], february)
    cached = features.feature_cache(tmp_path) / "timeline-seed0" / "2013-02.parquet"
    assert cached.is_file() and not list(cached.parent.glob(".*tmp"))
