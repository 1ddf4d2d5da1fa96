"""Checkpoints 0.1 and 0.2: latency percentiles from samples and from histogram buckets.

Graded against numpy (the definition the lab asks for), against hand-computed PromQL
``histogram_quantile`` results, and against properties any correct estimate must have.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from learn.testing import import_learner

INF = math.inf


@pytest.fixture
def lat():
    return import_learner("sysdesign.latency")


def _random_cases(seed: int, count: int):
    """Seeded (samples, q) pairs: tiny to large samples, skewed, tied, scaled."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        n = int(rng.choice([1, 2, 3, 5, 10, 99, 100, 101, 1000]))
        xs = rng.lognormal(mean=-3, sigma=1.0, size=n) * rng.choice([1e-3, 1.0, 1e3])
        if i % 5 == 0:
            xs = np.round(xs, 1)  # ties
        q = float(rng.integers(0, 101)) if i % 3 == 0 else float(rng.uniform(0, 100))
        yield xs, q


# --- 0.1 -----------------------------------------------------------------------------------


@pytest.mark.checkpoint("0.1")
def test_percentile_small_examples_by_hand(lat):
    xs = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert lat.percentile(xs, 50) == pytest.approx(2.5)
    assert lat.percentile(xs, 25) == pytest.approx(1.75)  # rank 0.75 between 1 and 2
    assert lat.percentile(xs, 0) == pytest.approx(1.0)
    assert lat.percentile(xs, 100) == pytest.approx(4.0)
    assert lat.percentile(xs, 90) == pytest.approx(3.7)  # rank 2.7 between 3 and 4
    assert xs == [4.0, 1.0, 3.0, 2.0], "percentile must not sort the caller's list in place"
    assert lat.percentile([7.0], 99) == pytest.approx(7.0)
    assert lat.percentile(np.array([0.2, 0.2, 0.2]), 37.5) == pytest.approx(0.2)


@pytest.mark.checkpoint("0.1")
def test_percentile_matches_numpy_linear_method(lat):
    for xs, q in _random_cases(seed=101, count=300):
        expected = float(np.percentile(xs, q))
        got = lat.percentile(xs, q)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-300), (
            f"percentile of {xs.size} samples at q={q}: expected {expected} (numpy), got {got}"
        )


@pytest.mark.checkpoint("0.1")
def test_percentile_is_monotone_and_bounded(lat):
    rng = np.random.default_rng(7)
    xs = rng.lognormal(size=257)
    values = [lat.percentile(xs, q) for q in np.linspace(0, 100, 81)]
    assert all(a <= b for a, b in zip(values, values[1:], strict=False)), "not monotone in q"
    assert values[0] == pytest.approx(xs.min()) and values[-1] == pytest.approx(xs.max())


@pytest.mark.checkpoint("0.1")
def test_summarize_matches_numpy(lat):
    rng = np.random.default_rng(2024)
    body = rng.lognormal(np.log(0.05), 0.3, 20_000)
    slow = rng.lognormal(np.log(0.8), 0.4, 20_000)
    xs = np.where(rng.random(20_000) < 0.02, slow, body)
    s = lat.summarize(xs.tolist())
    assert isinstance(s, lat.LatencySummary)
    assert s.count == 20_000 and isinstance(s.count, int)
    assert s.mean == pytest.approx(xs.mean(), rel=1e-12)
    assert s.max == pytest.approx(xs.max())
    for field, q in [("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9)]:
        assert getattr(s, field) == pytest.approx(np.percentile(xs, q), rel=1e-12), field
    # the lesson of the lab: a 2 % slow tail barely moves the median but owns the p99
    assert s.p99 > 5 * s.p50


@pytest.mark.checkpoint("0.1")
def test_summarize_single_sample(lat):
    s = lat.summarize([0.123])
    assert s.count == 1
    for field in ("mean", "p50", "p90", "p95", "p99", "p999", "max"):
        assert getattr(s, field) == pytest.approx(0.123), field


# --- 0.2 -----------------------------------------------------------------------------------


@pytest.mark.checkpoint("0.2")
def test_histogram_quantile_hand_computed(lat):
    bounds = [0.1, 0.2, 0.4, INF]
    cum = [10, 30, 90, 100]
    hq = lat.histogram_quantile
    assert hq(0.05, bounds, cum) == pytest.approx(0.05)  # rank 5 of 10 in [0, 0.1]
    assert hq(0.3, bounds, cum) == pytest.approx(0.2)  # rank 30 closes bucket (0.1, 0.2]
    assert hq(0.5, bounds, cum) == pytest.approx(0.2 + 0.2 * 20 / 60)
    assert hq(0.9, bounds, cum) == pytest.approx(0.4)
    assert hq(0.0, bounds, cum) == pytest.approx(0.0)  # natural lower bound of 0


@pytest.mark.checkpoint("0.2")
def test_histogram_quantile_in_inf_bucket_returns_highest_finite_bound(lat):
    bounds = [0.1, 0.2, 0.4, INF]
    cum = [10, 30, 90, 100]
    for q in (0.91, 0.95, 0.99, 1.0):
        assert lat.histogram_quantile(q, bounds, cum) == pytest.approx(0.4), q


@pytest.mark.checkpoint("0.2")
def test_histogram_quantile_empty_buckets_and_negative_bounds(lat):
    hq = lat.histogram_quantile
    # bucket (1, 2] is empty: rank 5 is reached by the first bucket, rank 6 only by (2, 3]
    assert hq(0.5, [1, 2, 3, INF], [5, 5, 10, 10]) == pytest.approx(1.0)
    assert hq(0.6, [1, 2, 3, INF], [5, 5, 10, 10]) == pytest.approx(2.2)
    # a first bucket with upper bound <= 0 has no natural lower bound: its bound is returned
    assert hq(0.25, [-1, 0, 1, INF], [4, 8, 10, 10]) == pytest.approx(-1.0)
    assert hq(0.75, [-1, 0, 1, INF], [4, 8, 10, 10]) == pytest.approx(-1 + 3.5 / 4)


@pytest.mark.checkpoint("0.2")
def test_histogram_quantile_per_bucket_counts_and_rates(lat):
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, INF]
    per_bucket = np.array([3, 40, 310, 420, 150, 50, 15, 9, 3], dtype=float)
    cum = np.cumsum(per_bucket)
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99):
        from_cum = lat.histogram_quantile(q, bounds, cum)
        from_per = lat.histogram_quantile(q, bounds, per_bucket, cumulative=False)
        # rate() turns counts into fractional per-second values: the quantile must not move
        from_rate = lat.histogram_quantile(q, bounds, cum / 300.0)
        assert from_per == pytest.approx(from_cum), q
        assert from_rate == pytest.approx(from_cum), q


@pytest.mark.checkpoint("0.2")
def test_histogram_quantile_brackets_the_exact_quantile(lat):
    """The estimate lies in the bucket that holds the exact (inverted-CDF) sample quantile."""
    rng = np.random.default_rng(42)
    bounds = np.array([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, INF])
    for trial in range(20):
        n = int(rng.integers(50, 3000))
        xs = rng.lognormal(np.log(0.06), 0.8, n)
        cum = np.searchsorted(np.sort(xs), bounds, side="right")
        for q in (0.1, 0.5, 0.9, 0.95, 0.99, 0.999):
            exact = float(np.quantile(xs, q, method="inverted_cdf"))
            est = lat.histogram_quantile(q, bounds, cum)
            j = int(np.searchsorted(bounds, exact, side="left"))  # exact in (bounds[j-1], b[j]]
            if j == bounds.size - 1:
                assert est == pytest.approx(bounds[-2]), (trial, q)
                continue
            lo = 0.0 if j == 0 else bounds[j - 1]
            assert lo - 1e-12 <= est <= bounds[j] + 1e-12, (
                f"q={q}: exact quantile {exact:.4f} is in bucket ({lo}, {bounds[j]}], "
                f"estimate {est:.4f} is not"
            )


@pytest.mark.checkpoint("0.2")
def test_histogram_quantile_interpolates_uniform_data(lat):
    """With data spread evenly inside every bucket, linear interpolation is nearly exact."""
    xs = (np.arange(100_000) + 0.5) / 100_000  # uniform on (0, 1)
    bounds = np.append(np.linspace(0.1, 1.0, 10), INF)
    cum = np.searchsorted(xs, bounds, side="right")
    for q in (0.03, 0.137, 0.5, 0.61, 0.955, 0.999):
        assert lat.histogram_quantile(q, bounds, cum) == pytest.approx(q, abs=1e-4), q
