"""Checkpoint 2.8: the drift statistics, PSI and the two-sample Kolmogorov-Smirnov test.

Grades `mlops_pipeline.monitoring.stats`: `psi(reference, current, bins, *, smoothing)`,
`psi_categorical(reference, current, *, smoothing)`, `ks_statistic(reference, current)`,
`ks_pvalue(statistic, n1, n2, method)` and `ks_2samp(reference, current, method)` built on them.
The oracles are written out here: PSI by explicit loops over bins and rows, the KS statistic
by evaluating both empirical CDFs at every pooled value, and scipy.stats.ks_2samp, which the
learner's statistic and p-value must match to 1e-9 (scipy's "auto": exact when both samples
have at most 10,000 values, asymptotic otherwise; "exact" and "asymp" when forced).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from learn.testing import import_learner


@pytest.fixture
def stats():
    return import_learner("mlops_pipeline.monitoring.stats")


def _oracle_psi(reference, current, bins=10, smoothing=1e-4):
    """PSI from its definition: quantile edges of the reference's non-missing values
    (np.quantile at k/bins, deduplicated), bins (-inf, e0], (e0, e1], ..., (e_last, inf)
    plus a missing bin, shares over all rows, an empty bin's share replaced by `smoothing`."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    values = reference[~np.isnan(reference)]
    edges = sorted(set(np.quantile(values, [k / bins for k in range(1, bins)]).tolist()))

    def shares(sample):
        counts = [0] * (len(edges) + 2)  # the value bins, then the missing bin
        for x in sample:
            if math.isnan(x):
                counts[-1] += 1
                continue
            slot = len(edges)
            for i, edge in enumerate(edges):
                if x <= edge:
                    slot = i
                    break
            counts[slot] += 1
        return [c / len(sample) if c else smoothing for c in counts]

    r, c = shares(reference), shares(current)
    return sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c, strict=True))


def _oracle_ks_statistic(a, b):
    """max |F_a(x) - F_b(x)| over every pooled value, F(x) = share of values <= x."""
    a, b = list(a), list(b)
    return max(
        abs(sum(v <= x for v in a) / len(a) - sum(v <= x for v in b) / len(b)) for x in a + b
    )


def _samples(rng, kind, n1, n2):
    """Two samples of a given flavour: continuous, heavy ties, or rounded with a shift."""
    if kind == "continuous":
        return rng.normal(size=n1), rng.normal(rng.uniform(0, 0.6), 1.2, size=n2)
    if kind == "ties":
        return rng.integers(0, 6, n1).astype(float), rng.integers(0, 7, n2).astype(float)
    return np.round(rng.exponential(1.0, n1), 1), np.round(rng.exponential(1.3, n2), 1)


@pytest.mark.checkpoint("2.8")
def test_ks_statistic_is_the_largest_gap_between_the_ecdfs(stats):
    """The statistic equals max |F1 - F2| over the pooled values, ties included."""
    rng = np.random.default_rng(1)
    for kind in ("continuous", "ties", "rounded"):
        for n1, n2 in ((1, 1), (3, 7), (40, 25), (60, 60)):
            a, b = _samples(rng, kind, n1, n2)
            expected = _oracle_ks_statistic(a, b)
            assert stats.ks_statistic(a, b) == pytest.approx(expected, abs=1e-12), (kind, n1, n2)


@pytest.mark.checkpoint("2.8")
def test_ks_2samp_agrees_with_scipy_on_many_samples(stats):
    """Statistic and p-value equal scipy's (method 'auto') to 1e-9: sizes 1-400, equal and
    unequal, continuous, tied and rounded values, shifted or not."""
    rng = np.random.default_rng(2)
    for trial in range(150):
        n1 = int(rng.integers(1, 400))
        n2 = n1 if trial % 5 == 0 else int(rng.integers(1, 400))
        a, b = _samples(rng, ("continuous", "ties", "rounded")[trial % 3], n1, n2)
        expected = scipy.stats.ks_2samp(a, b)
        statistic, pvalue = stats.ks_2samp(a, b)
        assert statistic == pytest.approx(expected.statistic, abs=1e-9), (trial, n1, n2)
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-9), (trial, n1, n2)


@pytest.mark.checkpoint("2.8")
def test_ks_2samp_switches_to_the_asymptotic_distribution_above_10000(stats):
    """Both samples <= 10,000: exact; either larger: asymptotic (scipy's rule), to 1e-9."""
    rng = np.random.default_rng(3)
    for n1, n2 in ((10_000, 2_500), (10_001, 400), (12_000, 15_000), (3_000, 2_000)):
        a, b = rng.normal(size=n1), rng.normal(0.03, size=n2)
        expected = scipy.stats.ks_2samp(a, b)
        statistic, pvalue = stats.ks_2samp(a, b)
        assert statistic == pytest.approx(expected.statistic, abs=1e-9), (n1, n2)
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-9), (n1, n2)


@pytest.mark.checkpoint("2.8")
def test_ks_2samp_forced_methods_agree_with_scipy(stats):
    """method='exact' and method='asymp' give scipy's numbers for the same method."""
    rng = np.random.default_rng(4)
    for n1, n2 in ((50, 80), (300, 120), (700, 700)):
        a, b = _samples(rng, "continuous", n1, n2)
        for method in ("exact", "asymp"):
            expected = scipy.stats.ks_2samp(a, b, method=method)
            statistic, pvalue = stats.ks_2samp(a, b, method=method)
            assert statistic == pytest.approx(expected.statistic, abs=1e-9), (n1, n2, method)
            assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-9), (n1, method)


@pytest.mark.checkpoint("2.8")
def test_ks_pvalue_from_a_statistic_and_sample_sizes(stats):
    """ks_pvalue(D, n1, n2) is the p-value scipy gives samples of those sizes with that D."""
    rng = np.random.default_rng(5)
    for n1, n2 in ((31, 59), (15, 16), (20_000, 30_000)):
        a, b = rng.normal(size=n1), rng.normal(0.4, size=n2)
        expected = scipy.stats.ks_2samp(a, b)
        statistic, pvalue = stats.ks_pvalue(float(expected.statistic), n1, n2)
        assert statistic == pytest.approx(expected.statistic, abs=1e-9)
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-9), (n1, n2)


@pytest.mark.checkpoint("2.8")
def test_ks_2samp_drops_missing_values(stats):
    """NaNs are left out of the test: the result equals scipy's on the non-missing values."""
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=200), rng.normal(0.3, size=150)
    a[::7], b[::5] = np.nan, np.nan
    expected = scipy.stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)])
    statistic, pvalue = stats.ks_2samp(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-9)


@pytest.mark.checkpoint("2.8")
def test_identical_samples_give_ks_zero_and_p_one(stats):
    """The same values on both sides: D = 0 and p = 1."""
    values = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    assert tuple(stats.ks_2samp(values, values[::-1])) == pytest.approx((0.0, 1.0))


@pytest.mark.checkpoint("2.8")
def test_psi_matches_the_definition_on_continuous_samples(stats):
    """Ten quantile bins of the reference, shares per bin, sum (c - r) ln(c / r)."""
    rng = np.random.default_rng(7)
    for shift in (0.0, 0.2, 1.0):
        reference, current = rng.normal(size=2000), rng.normal(shift, 1.3, size=1500)
        assert stats.psi(reference, current) == pytest.approx(
            _oracle_psi(reference, current), rel=1e-9, abs=1e-12
        )


@pytest.mark.checkpoint("2.8")
def test_psi_with_ties_deduplicated_edges_and_values_outside_the_range(stats):
    """90 % zeros give repeated quantile edges (kept once); current values beyond the
    reference's range fall into the open first and last bins."""
    rng = np.random.default_rng(8)
    reference = np.where(rng.random(3000) < 0.9, 0.0, rng.exponential(0.2, 3000))
    current = np.concatenate([reference[:1000], [-5.0, -1.0, 50.0, 80.0]])
    for bins in (10, 4):
        assert stats.psi(reference, current, bins) == pytest.approx(
            _oracle_psi(reference, current, bins), rel=1e-9, abs=1e-12
        )


@pytest.mark.checkpoint("2.8")
def test_psi_smooths_an_empty_bin(stats):
    """A bin the current sample leaves empty counts with the share `smoothing`, not 0."""
    reference = np.arange(100, dtype=float)  # ten bins of ten values
    current = np.arange(10, 100, dtype=float)  # nothing in the first bin
    for smoothing in (1e-4, 1e-2):
        assert stats.psi(reference, current, smoothing=smoothing) == pytest.approx(
            _oracle_psi(reference, current, smoothing=smoothing), rel=1e-9
        )
    # The empty bin alone adds (eps - 0.1) * ln(eps / 0.1); the other nine bins add the rest.
    others = sum((1 / 9 - 0.1) * math.log((1 / 9) / 0.1) for _ in range(9))
    empty = (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert stats.psi(reference, current) == pytest.approx(empty + others, rel=1e-9)


@pytest.mark.checkpoint("2.8")
def test_psi_counts_missing_values_in_their_own_bin(stats):
    """NaNs are a bin of their own: a feed that starts sending nulls raises PSI."""
    rng = np.random.default_rng(9)
    reference = rng.normal(size=1000)
    reference[:50] = np.nan
    current = rng.normal(size=1000)
    current[:300] = np.nan
    assert stats.psi(reference, current) == pytest.approx(_oracle_psi(reference, current), rel=1e-9)
    no_missing = reference[~np.isnan(reference)]
    assert stats.psi(no_missing, np.concatenate([no_missing[:700], [np.nan] * 300])) > 0.25


@pytest.mark.checkpoint("2.8")
def test_psi_is_zero_for_identical_samples_and_grows_with_the_shift(stats):
    """PSI(x, x) = 0, PSI >= 0, and a larger shift of the current sample gives a larger PSI."""
    rng = np.random.default_rng(10)
    reference = rng.normal(size=5000)
    assert stats.psi(reference, reference.copy()) == pytest.approx(0.0, abs=1e-12)
    values = [stats.psi(reference, reference + shift) for shift in (0.1, 0.3, 0.6, 1.0, 2.0)]
    assert all(v >= 0 for v in values)
    assert values == sorted(values) and values[0] < 0.1 < values[-1]


@pytest.mark.checkpoint("2.8")
def test_psi_refuses_bad_input(stats):
    """Fewer than two bins, an empty sample or a smoothing outside (0, 1) are errors."""
    assert stats.psi([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], bins=2) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        stats.psi([1.0, 2.0], [1.0], bins=1)
    with pytest.raises(ValueError):
        stats.psi([], [1.0])
    with pytest.raises(ValueError):
        stats.psi([1.0, 2.0], [1.0], smoothing=0.0)


@pytest.mark.checkpoint("2.8")
def test_categorical_psi_with_a_new_category_and_missing_values(stats):
    """One bin per category seen on either side, missing values as a category of their own,
    a category absent from one side smoothed like an empty bin."""
    reference = ["UA"] * 50 + ["AA"] * 30 + ["DL"] * 20
    current = ["UA"] * 40 + ["AA"] * 30 + ["WN"] * 20 + [None] * 10
    r = {"UA": 0.5, "AA": 0.3, "DL": 0.2, "WN": 1e-4, "missing": 1e-4}
    c = {"UA": 0.4, "AA": 0.3, "DL": 1e-4, "WN": 0.2, "missing": 0.1}
    expected = sum((c[k] - r[k]) * math.log(c[k] / r[k]) for k in r)
    assert stats.psi_categorical(reference, current) == pytest.approx(expected, rel=1e-9)
    assert stats.psi_categorical(reference, list(reversed(reference))) == pytest.approx(0.0)
