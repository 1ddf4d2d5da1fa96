"""Checkpoint 2.10: the serving policy for missing and stale online features.

Grades `mlops_pipeline.serving.policy.apply_feature_policy(readings, as_of, views, defaults)`.
The views here are written out in the test (two small ones with a TTL and one without), and the
expected outcome of each case is spelled out by hand: nothing is compared with the reference.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from learn.testing import import_learner

AS_OF = pd.Timestamp("2013-03-15 12:00", tz="UTC")


@pytest.fixture
def policy():
    return import_learner("mlops_pipeline.serving.policy")


@pytest.fixture
def views():
    tables = import_learner("mlops_pipeline.features.tables")
    return {
        "weather": tables.View("weather", "origin", ("temp", "precip"), pd.Timedelta(hours=3), ""),
        "rates": tables.View("rates", "origin", ("rate_3h",), pd.Timedelta(hours=2), ""),
        "planes": tables.View("planes", "tailnum", ("seats",), None, ""),
    }


def _reading(policy, values, hours_old):
    stamp = None if hours_old is None else AS_OF - pd.Timedelta(hours=hours_old)
    return policy.ViewReading(values, stamp)


@pytest.mark.checkpoint("2.10")
def test_fresh_rows_are_used_as_they_are(policy, views):
    """Every view fresh: values copied, nothing flagged, not degraded."""
    readings = {
        "weather": _reading(policy, {"temp": 41.0, "precip": 0.02}, 1),
        "rates": _reading(policy, {"rate_3h": 0.25}, 0.5),
        "planes": _reading(policy, {"seats": 179}, 24 * 400),
    }
    out = policy.apply_feature_policy(readings, AS_OF, views)
    assert out.features == {"temp": 41.0, "precip": 0.02, "rate_3h": 0.25, "seats": 179.0}
    assert out.missing == [] and out.stale == [] and not out.degraded
    assert out.views == {"weather": "ok", "rates": "ok", "planes": "ok"}
    assert out.staleness_seconds == {"weather": 3600.0, "rates": 1800.0, "planes": 400 * 86400.0}


@pytest.mark.checkpoint("2.10")
def test_rows_older_than_the_ttl_are_stale_and_replaced(policy, views):
    """Weather 4 h old (TTL 3 h) is stale: defaults used, flagged, staleness still recorded."""
    readings = {
        "weather": _reading(policy, {"temp": 41.0, "precip": 0.02}, 4),
        "rates": _reading(policy, {"rate_3h": 0.25}, 1),
        "planes": _reading(policy, {"seats": 179}, 1),
    }
    out = policy.apply_feature_policy(readings, AS_OF, views, defaults={"temp": 55.0})
    assert out.stale == ["temp", "precip"] and out.missing == []
    assert out.features["temp"] == 55.0 and math.isnan(out.features["precip"])
    assert out.features["rate_3h"] == 0.25
    assert out.views["weather"] == "stale" and out.degraded
    assert out.staleness_seconds["weather"] == 4 * 3600.0


@pytest.mark.checkpoint("2.10")
def test_exactly_ttl_old_is_fresh_and_views_without_ttl_never_go_stale(policy, views):
    """The TTL bound is inclusive (as in checkpoint 2.3); planes have no TTL at all."""
    readings = {
        "weather": _reading(policy, {"temp": 1.0, "precip": 0.0}, 3),
        "rates": _reading(policy, {"rate_3h": 0.1}, 2 + 1 / 3600),
        "planes": _reading(policy, {"seats": 20}, 24 * 365 * 30),
    }
    out = policy.apply_feature_policy(readings, AS_OF, views)
    assert out.views == {"weather": "ok", "rates": "stale", "planes": "ok"}
    assert out.stale == ["rate_3h"]


@pytest.mark.checkpoint("2.10")
def test_absent_views_are_missing_in_declared_order(policy, views):
    """No row, a None reading, or a view left out entirely: missing, never an exception."""
    readings = {
        "weather": _reading(policy, {"temp": None, "precip": None}, None),
        "planes": None,
    }
    out = policy.apply_feature_policy(readings, AS_OF, views, defaults={"seats": 150.0})
    assert out.missing == ["temp", "precip", "rate_3h", "seats"] and out.stale == []
    assert out.features["seats"] == 150.0 and math.isnan(out.features["rate_3h"])
    assert out.views == {"weather": "missing", "rates": "missing", "planes": "missing"}
    assert out.staleness_seconds == {}
    assert list(out.features) == ["temp", "precip", "rate_3h", "seats"]


@pytest.mark.checkpoint("2.10")
def test_nulls_in_a_fresh_row_pass_through_unflagged(policy, views):
    """A fresh row with a null value (no gust reported) is data, not a missing feature."""
    readings = {
        "weather": _reading(policy, {"temp": 30.0, "precip": None}, 0),
        "rates": _reading(policy, {"rate_3h": 0.0}, 0),
        "planes": _reading(policy, {"seats": 100}, 0),
    }
    out = policy.apply_feature_policy(readings, AS_OF, views, defaults={"precip": 9.0})
    assert math.isnan(out.features["precip"]) and not out.degraded


@pytest.mark.checkpoint("2.10")
def test_rows_from_after_as_of_count_as_fresh_with_zero_age(policy, views):
    """A replay's store may be ahead of its clock: never a negative staleness."""
    readings = {
        "weather": _reading(policy, {"temp": 30.0, "precip": 0.0}, -2),
        "rates": _reading(policy, {"rate_3h": 0.3}, -0.5),
        "planes": _reading(policy, {"seats": 100}, 0),
    }
    out = policy.apply_feature_policy(readings, AS_OF, views)
    assert out.staleness_seconds["weather"] == 0.0 and out.views["weather"] == "ok"
