"""Checkpoints 0.4 and 0.5: error budgets, burn rates and multi-window burn-rate alerts.

Numbers by hand follow chapter 5 of Google's *The Site Reliability Workbook* (99.9 % over 30
days allows 43.2 minutes; 14.4x for an hour spends 2 % of the budget). Alert masks are checked
against hand-computed incident timelines and a brute-force per-minute oracle written here.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def slo():
    return import_learner("sysdesign.slo")


def _oracle_burn(good, bad, window, objective):
    """Burn rate at every minute by slicing: minutes max(0, t - window + 1) .. t."""
    good, bad = np.asarray(good, float), np.asarray(bad, float)
    out = np.zeros(good.size)
    for t in range(good.size):
        lo = max(0, t - window + 1)
        b, total = bad[lo : t + 1].sum(), good[lo : t + 1].sum() + bad[lo : t + 1].sum()
        out[t] = 0.0 if total == 0 else b / total / (1 - objective)
    return out


def _oracle_alerts(good, bad, objective, alerts):
    return {
        a.name: (_oracle_burn(good, bad, a.long_window_min, objective) > a.threshold)
        & (_oracle_burn(good, bad, a.short_window_min, objective) > a.threshold)
        for a in alerts
    }


def _incident(minutes=6000, start=4500, length=300, per_minute=1000, error_ratio=0.02):
    good = np.full(minutes, float(per_minute))
    bad = np.zeros(minutes)
    bad[start : start + length] = per_minute * error_ratio
    good[start : start + length] -= bad[start : start + length]
    return good, bad


def _firing_span(mask):
    idx = np.flatnonzero(mask)
    return (int(idx[0]), int(idx[-1])) if idx.size else None


# --- 0.4 -----------------------------------------------------------------------------------


@pytest.mark.checkpoint("0.4")
def test_allowed_downtime_sre_workbook_numbers(slo):
    cases = [
        (0.999, timedelta(days=30), 43.2),
        (0.9999, timedelta(days=30), 4.32),
        (0.99, timedelta(days=7), 100.8),
        (0.999, timedelta(days=28), 40.32),
        (0.9995, timedelta(days=365), 262.8),
    ]
    for objective, window, minutes in cases:
        got = slo.allowed_downtime(objective, window)
        assert isinstance(got, timedelta)
        assert got.total_seconds() / 60 == pytest.approx(minutes, rel=1e-6), (objective, window)
    assert slo.allowed_downtime(0.999).total_seconds() / 60 == pytest.approx(43.2, rel=1e-6)


@pytest.mark.checkpoint("0.4")
def test_error_budget(slo):
    assert slo.error_budget(0.999, 10_000_000) == pytest.approx(10_000)
    assert slo.error_budget(0.99, 2_500) == pytest.approx(25)
    assert slo.error_budget(0.95, 0) == 0
    rng = np.random.default_rng(4)
    for objective, total in zip(rng.uniform(0.9, 0.99999, 50), rng.integers(0, 10**9, 50),
                                strict=True):  # fmt: skip
        assert slo.error_budget(objective, int(total)) == pytest.approx((1 - objective) * total)


@pytest.mark.checkpoint("0.4")
def test_burn_rate(slo):
    assert slo.burn_rate(10, 1000, 0.999) == pytest.approx(10.0)  # 1 % errors vs 0.1 % budget
    assert slo.burn_rate(1, 1000, 0.999) == pytest.approx(1.0)
    assert slo.burn_rate(0, 1000, 0.999) == 0
    assert slo.burn_rate(0, 0, 0.999) == 0, "no traffic burns no budget"
    # 14.4x for one hour of a 30-day window spends 2 % of the budget
    rate = slo.burn_rate(144, 10_000, 0.999)
    assert rate == pytest.approx(14.4)
    assert rate * 1 / (30 * 24) == pytest.approx(0.02)


@pytest.mark.checkpoint("0.4")
def test_budget_remaining(slo):
    assert slo.budget_remaining(500, 1_000_000, 0.999) == pytest.approx(0.5)
    assert slo.budget_remaining(0, 1_000_000, 0.999) == pytest.approx(1.0)
    assert slo.budget_remaining(1000, 1_000_000, 0.999) == pytest.approx(0.0, abs=1e-9)
    assert slo.budget_remaining(3000, 1_000_000, 0.999) == pytest.approx(-2.0)
    assert slo.budget_remaining(0, 0, 0.99) == pytest.approx(1.0)


# --- 0.5 -----------------------------------------------------------------------------------


@pytest.mark.checkpoint("0.5")
def test_rolling_burn_rate_matches_brute_force(slo):
    rng = np.random.default_rng(17)
    n = 400
    traffic = rng.poisson(rng.choice([5, 200, 2000], n)).astype(float)
    traffic[rng.random(n) < 0.05] = 0  # silent minutes
    bad = rng.binomial(traffic.astype(int), rng.choice([0.0, 0.001, 0.05], n)).astype(float)
    good = traffic - bad
    for window in (1, 5, 30, 60, 1000):  # 1000 > data: partial windows all along
        got = np.asarray(slo.rolling_burn_rate(good, bad, window, 0.999), dtype=float)
        assert got.shape == (n,)
        np.testing.assert_allclose(got, _oracle_burn(good, bad, window, 0.999), rtol=1e-9)


@pytest.mark.checkpoint("0.5")
def test_rolling_burn_rate_is_a_ratio_of_sums(slo):
    # a quiet minute with 1 failure in 10 must not weigh as much as a busy, clean minute
    good = np.array([9.0, 1000.0] * 4)
    bad = np.array([1.0, 0.0] * 4)
    got = slo.rolling_burn_rate(good, bad, 2, 0.99)
    assert got[-1] == pytest.approx((1 / 1010) / 0.01)  # about 0.099, not (0.1 + 0) / 2 / 0.01


@pytest.mark.checkpoint("0.5")
def test_alerts_quiet_service(slo):
    good = np.full(5000, 600.0)
    fires = slo.evaluate_alerts(good, np.zeros(5000), 0.999)
    assert set(fires) == {"page-1h", "page-6h", "ticket-3d"}
    for name, mask in fires.items():
        assert np.asarray(mask).shape == (5000,) and not np.any(mask), name


@pytest.mark.checkpoint("0.5")
def test_alerts_sustained_incident_hand_computed(slo):
    """2 % errors (burn 20x at 99.9 %) for 300 minutes, from minute 4500, after 3 clean days.

    page-1h fires once 20 k / 60 > 14.4 (k = 44 incident minutes), page-6h once
    20 k / 360 > 6 (k = 109), ticket-3d once 20 k / 4320 > 1 (k = 217). After the incident,
    the short windows stop them: 5 min at 20 (5 - j) / 5 > 14.4 holds for j <= 1 minutes
    after the last bad minute (4799); 30 min for j <= 20; 6 h for j <= 341.
    """
    good, bad = _incident()
    fires = slo.evaluate_alerts(good, bad, 0.999)
    assert _firing_span(fires["page-1h"]) == (4500 + 43, 4799 + 1)
    assert _firing_span(fires["page-6h"]) == (4500 + 108, 4799 + 20)
    assert _firing_span(fires["ticket-3d"]) == (4500 + 216, 4799 + 341)
    for name, mask in fires.items():  # and continuously in between
        first, last = _firing_span(mask)
        assert np.all(mask[first : last + 1]), name


@pytest.mark.checkpoint("0.5")
def test_alerts_short_spike_pages_only_fast(slo):
    """A 40-minute total outage: pages fast, then stops paging once it is over."""
    good, bad = _incident(minutes=3000, start=1000, length=40, error_ratio=1.0)
    fires = slo.evaluate_alerts(good, bad, 0.999)
    span = _firing_span(fires["page-1h"])
    # 1000x burn: one bad minute in the hour is already 16.7x > 14.4
    assert span is not None and span[0] == 1000
    # the 5-minute window ending at 1043 still holds 1 bad minute (200x); the one ending at
    # 1044 holds none, although the hour still burns at 40 / 60 x 1000 = 667x
    assert span[1] == 1043
    assert not fires["page-1h"][1044:].any()


@pytest.mark.checkpoint("0.5")
def test_alerts_match_brute_force_with_custom_policy_and_partial_windows(slo):
    rng = np.random.default_rng(23)
    n = 900
    traffic = rng.poisson(300, n).astype(float)
    ratio = np.where((np.arange(n) > 200) & (np.arange(n) < 320), 0.03, 0.0005)
    ratio[600:610] = 0.5
    bad = rng.binomial(traffic.astype(int), ratio).astype(float)
    good = traffic - bad
    policy = [
        slo.BurnRateAlert("fast", "page", long_window_min=60, short_window_min=5, threshold=14.4),
        slo.BurnRateAlert("slow", "ticket", long_window_min=2000, short_window_min=120,
                          threshold=2.0),
    ]  # fmt: skip
    fires = slo.evaluate_alerts(good, bad, 0.995, policy)
    assert set(fires) == {"fast", "slow"}
    expected = _oracle_alerts(good, bad, 0.995, policy)
    for name in expected:
        got = np.asarray(fires[name], dtype=bool)
        mismatch = np.flatnonzero(got != expected[name])
        assert mismatch.size == 0, f"{name}: differs at minutes {mismatch[:10].tolist()}"
        assert expected[name].any(), "the scenario should make every alert fire"
