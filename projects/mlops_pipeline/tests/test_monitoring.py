"""Drift monitors: the statistics, the day-level alarm rule, data quality, the monthly run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from training_fixtures import build_training_set

from mlops_pipeline.monitoring import alarms, drift, stats
from mlops_pipeline.monitoring.alarms import Thresholds, day_halves, days_of, decide
from mlops_pipeline.monitoring.features import feature_cache, month_bounds
from mlops_pipeline.monitoring.quality import feature_ranges


@pytest.fixture(scope="module")
def march():
    """Four weeks of real point-in-time rows (the test-only direct computation)."""
    return build_training_set("2013-03-04", "2013-04-01")


# --- stats (the checkpoint grades them against scipy; these guard the package's use) -------


def test_psi_zero_for_identical_and_large_for_a_shift():
    """PSI of a sample with itself is 0; a one-sigma shift is a major shift (> 0.25)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    assert stats.psi(x, x) == pytest.approx(0.0, abs=1e-12)
    assert stats.psi(x, x + 1.0) > 0.25


def test_ks_2samp_matches_scipy_on_flight_sized_samples():
    """At the sizes the monitor uses (tens of thousands) the p-value is scipy's asymptotic one."""
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=25_000), rng.normal(0.02, size=30_000)
    expected = ks_2samp(a, b)
    assert stats.ks_2samp(a, b) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-9)


def test_stats_refuse_infinite_and_non_numeric_values():
    """Infinities and strings are errors that name the sample, not silent NaNs."""
    with pytest.raises(ValueError, match="infinite"):
        stats.psi([1.0, np.inf], [1.0, 2.0])
    with pytest.raises(ValueError, match="current"):
        stats.ks_2samp([1.0, 2.0], ["a", "b"])
    with pytest.raises(ValueError, match="non-missing"):
        stats.ks_2samp([np.nan], [1.0])
    with pytest.raises(ValueError, match="method"):
        stats.ks_pvalue(0.1, 10, 10, "bootstrap")


def test_ks_pvalue_accepts_pandas_nullable_input():
    """pd.NA in a nullable Float64 column counts as missing."""
    a = pd.Series([1.0, 2.0, None, 4.0], dtype="Float64")
    assert stats.ks_2samp(a, [1.0, 2.0, 4.0]) == pytest.approx((0.0, 1.0))


# --- the alarm rule ---------------------------------------------------------------------


def test_day_halves_split_days_not_flights(march):
    """Every day lands whole in one half; half of the days in each."""
    days = days_of(march)
    for mask in day_halves(days, 3, seed=0):
        assert not set(days[mask]) & set(days[~mask])
        assert len(set(days[mask])) == len(set(days)) // 2


def test_identical_windows_raise_no_alert(march):
    """The same rows on both sides: PSI and KS are 0, nothing alarms."""
    comparison = drift.compare_windows(march, march, score=None)
    assert not comparison.alerts
    numeric = comparison.table[comparison.table["kind"] == "numeric"]
    assert numeric["psi"].abs().max() == pytest.approx(0.0, abs=1e-12)
    assert numeric["ks_statistic"].max() == 0.0


def test_day_unit_stays_quiet_where_the_flight_unit_cries_wolf(march):
    """Random halves of the same days: counting flights, weather 'drifts' in every split;
    counting days (and asking PSI >= 0.25 too), no split alarms."""
    for mask in day_halves(days_of(march), 4, seed=3):
        comparison = drift.compare_windows(
            march.loc[mask], march.loc[~mask], score=None, flight_pvalues=True
        )
        naive = decide(comparison.table, Thresholds(unit="flight"))
        assert {a.kind for a in naive} >= {"feature_drift"}
        assert comparison.table["ks_pvalue_flights"].min() < 1e-10
        assert not comparison.alerts, [a.message for a in comparison.alerts]


def test_a_warmer_month_alarms_on_temperature_with_the_runbook(march):
    """Temperature 25 F warmer: a feature_drift alert on temp, no other feature."""
    warmer = march.assign(temp=march["temp"] + 25)
    comparison = drift.compare_windows(march, warmer, month="2013-07", score=None)
    assert comparison.alerted() == ["temp"]
    (alert,) = comparison.alerts
    assert alert.kind == "feature_drift" and alert.month == "2013-07"
    assert alert.value >= 0.25 and alert.threshold == 0.25
    assert alert.runbook_url.endswith("/docs/runbooks/feature-drift.md")
    assert "days" in alert.message


def test_prediction_drift_uses_the_score_column(march):
    """Scores shifted upwards alarm as prediction_drift; the features alone do not."""
    rng = np.random.default_rng(4)
    ref = march.assign(delay_probability=rng.uniform(0.0, 0.4, len(march)))
    cur = march.assign(delay_probability=rng.uniform(0.3, 0.9, len(march)))
    comparison = drift.compare_windows(ref, cur)
    assert [(a.kind, a.feature) for a in comparison.alerts] == [
        ("prediction_drift", "delay_probability")
    ]


def test_a_stalled_feed_raises_a_missing_rate_alert_but_gusts_do_not(march):
    """Pressure missing on three weeks of four alarms; wind_gust missing is information."""
    days = days_of(march)
    stalled = days >= np.datetime64("2013-03-11")
    broken = march.copy()
    broken.loc[stalled, "pressure"] = np.nan
    broken.loc[stalled, "wind_gust"] = np.nan
    comparison = drift.compare_windows(march, broken, score=None)
    kinds = {(a.kind, a.feature) for a in comparison.alerts}
    assert ("missing_rate", "pressure") in kinds
    assert not any(feature == "wind_gust" for kind, feature in kinds if kind == "missing_rate")


def test_values_outside_the_contract_always_alarm(march):
    """Visibility above 10 miles and an unknown carrier code are out_of_range alerts."""
    broken = march.copy()
    broken.loc[broken.index[:5], "visib"] = 12.0
    broken["carrier"] = broken["carrier"].astype(object)
    broken.loc[broken.index[:3], "carrier"] = "ZZ"
    comparison = drift.compare_windows(march, broken, score=None)
    out = {a.feature: a.value for a in comparison.alerts if a.kind == "out_of_range"}
    assert out == {"visib": 5.0, "carrier": 3.0}


def test_a_carrier_mix_change_alarms_as_categorical_drift(march):
    """Half of the flights moved to one carrier: categorical_drift on carrier."""
    moved = march.copy()
    moved["carrier"] = moved["carrier"].astype(object)
    moved.loc[moved.index[::2], "carrier"] = "HA"
    comparison = drift.compare_windows(march, moved, score=None)
    assert ("categorical_drift", "carrier") in {(a.kind, a.feature) for a in comparison.alerts}


def test_compare_windows_refuses_incomplete_input(march):
    """Missing columns, an empty window or a score on one side only are named errors."""
    with pytest.raises(ValueError, match="lacks columns"):
        drift.compare_windows(march, march.drop(columns="temp"))
    with pytest.raises(ValueError, match="empty"):
        drift.compare_windows(march, march.iloc[:0])
    with pytest.raises(ValueError, match="score"):
        drift.compare_windows(march.assign(delay_probability=0.2), march)


def test_deciding_by_flights_needs_flight_p_values(march):
    """A table compared by days cannot silently be judged by flights."""
    comparison = drift.compare_windows(march, march, score=None)
    with pytest.raises(ValueError, match="flight_pvalues"):
        decide(comparison.table, Thresholds(unit="flight"))


def test_thresholds_are_validated():
    """Nonsense thresholds are refused; Bonferroni divides alpha by the tests."""
    with pytest.raises(ValueError):
        Thresholds(alpha=0)
    with pytest.raises(ValueError):
        Thresholds(unit="hour")
    assert Thresholds(alpha=0.05).per_test_alpha(40) == pytest.approx(0.00125)
    assert alarms.runbook_url("https://x.example/rb/").endswith("/rb/feature-drift.md")


def test_contract_ranges_cover_every_feature():
    """Weather ranges come from the weather contract, plane age from the year built."""
    ranges = feature_ranges()
    assert (ranges["temp"].low, ranges["temp"].high) == (-40, 130)
    assert ranges["temp"].source.startswith("weather v")
    assert ranges["plane_age"].high == 2013 - 1903
    assert set(ranges["origin"].allowed) == {"EWR", "JFK", "LGA"}


# --- the monthly run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cached_home(tmp_path_factory):
    """A home whose feature cache holds January-March (rows from the test-only computation;
    March's temperature feed shifted by 30 F so one month clearly drifts)."""
    home = tmp_path_factory.mktemp("monitor-home")
    start, _ = month_bounds("2013-01")
    _, end = month_bounds("2013-03")
    rows = build_training_set(str(start), str(end))
    folder = feature_cache(home) / "timeline-seed0"
    folder.mkdir(parents=True)
    for month in ("2013-01", "2013-02", "2013-03"):
        lo, hi = month_bounds(month)
        part = rows.loc[(rows["sched_dep"] >= lo) & (rows["sched_dep"] < hi)]
        if month == "2013-03":
            part = part.assign(temp=part["temp"] + 30)
        part.reset_index(drop=True).to_parquet(folder / f"{month}.parquet", index=False)
    return home


def test_run_monthly_finds_the_drifted_month_and_writes_its_result(cached_home):
    """Reference January: February has no drift (its one alert is real: the source's 1,048 mph
    wind speed at EWR on 12 February, outside the contract), March alarms on temp (pressure
    really differed in March 2013 too); the JSON says so."""
    messages = []
    result = drift.run_monthly(
        cached_home,
        reference=("2013-01", "2013-01"),
        months=["2013-02", "2013-03"],
        model_family="logistic",
        evidently=False,
        reports=False,
        progress=messages.append,
    )
    assert [m.month for m in result.months] == ["2013-02", "2013-03"]
    month, features = result.first_detection()
    assert month == "2013-03" and "temp" in features
    february = result.months[0].comparison.alerts
    assert [(a.kind, a.feature) for a in february] == [("out_of_range", "wind_speed")]
    assert any(m.startswith("2013-03: feature_drift:temp") for m in messages)
    saved = json.loads(result.path.read_text())
    assert saved["first_detection"] == {"month": "2013-03", "features": features}
    assert saved["months"][1]["alerts"][0]["runbook_url"].endswith("feature-drift.md")
    table = result.months[1].table()
    assert {"delay_probability", "temp", "carrier"} <= set(table["feature"])
    assert "month" not in set(table["feature"])


def test_run_monthly_refuses_overlapping_windows(cached_home):
    """A monitored month inside the reference window is a configuration error."""
    with pytest.raises(ValueError, match="reference"):
        drift.run_monthly(cached_home, reference=("2013-01", "2013-02"), months=["2013-02"])


def test_false_alarm_study_counts_every_monitor_on_the_same_splits(march):
    """Same-month day halves: ours stays quiet, the naive flight-level and PSI-only rules
    alarm on every split (the measurement `make bench` reports, on a smaller sample)."""
    from mlops_pipeline.monitoring.bench import false_alarm_rates

    result = false_alarm_rates({"2013-03": march}, n_splits=3, seed=1, evidently=False)
    assert result["trials"] == 3
    assert result["rates"]["ours"] == 0.0 and result["ours_within_target"]
    assert result["rates"]["naive_flight_ks"] == 1.0
    assert result["rates"]["naive_psi"] == 1.0
    assert "evidently_dataset" not in result["rates"]
