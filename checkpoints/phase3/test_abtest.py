"""Checkpoint 3.10: the A/B test - difference, confidence interval, p-value and sample size.

Grades `rag_service.abtest.compare_proportions(successes_a, n_a, successes_b, n_b,
confidence=0.95)`, whose result has `difference` (rate_b - rate_a), `ci_low`, `ci_high` (the
Wald interval with the UNPOOLED standard error), `p_value` (two-sided z-test with the POOLED
standard error), `rate_a`, `rate_b`, `n_a`, `n_b`; and `sample_size_per_variant(baseline_rate,
minimum_detectable_effect, alpha=0.05, power=0.8)`, the two-proportion formula rounded up.
The normal quantiles are written out; the p-values use erfc: 2 * (1 - Phi(z)) = erfc(z / sqrt 2).
"""

from __future__ import annotations

import math

import pytest

from learn.testing import import_learner

Z_975 = 1.959963984540054  # Phi^-1(0.975), for a 95 % interval and alpha = 0.05
Z_95 = 1.6448536269514722  # Phi^-1(0.95), for a 90 % interval
Z_80 = 0.8416212335729143  # Phi^-1(0.80), for power 0.8


@pytest.fixture
def abtest():
    return import_learner("rag_service.abtest")


@pytest.mark.checkpoint("3.10")
def test_difference_is_b_minus_a(abtest):
    """100/1000 against 120/1000: rates 0.10 and 0.12, difference +0.02."""
    result = abtest.compare_proportions(100, 1000, 120, 1000)
    assert (result.rate_a, result.rate_b) == pytest.approx((0.10, 0.12))
    assert result.difference == pytest.approx(0.02)
    assert (result.n_a, result.n_b) == (1000, 1000)
    assert abtest.compare_proportions(120, 1000, 100, 1000).difference == pytest.approx(-0.02)


@pytest.mark.checkpoint("3.10")
def test_p_value_uses_the_pooled_standard_error(abtest):
    """20/200 vs 60/300: pooled rate 0.16, z = 0.1 / sqrt(0.16 * 0.84 * (1/200 + 1/300))."""
    z = 0.1 / math.sqrt(0.16 * 0.84 * (1 / 200 + 1 / 300))  # 2.98807
    result = abtest.compare_proportions(20, 200, 60, 300)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-6)  # 0.0028074
    even = abtest.compare_proportions(100, 1000, 120, 1000)
    z_even = 0.02 / math.sqrt(0.11 * 0.89 * (2 / 1000))  # 1.42930
    assert even.p_value == pytest.approx(math.erfc(z_even / math.sqrt(2)), rel=1e-6)  # 0.15292


@pytest.mark.checkpoint("3.10")
def test_interval_uses_the_unpooled_standard_error(abtest):
    """20/200 vs 60/300: 0.1 +- 1.96 * sqrt(0.1 * 0.9 / 200 + 0.2 * 0.8 / 300), 90 % too."""
    result = abtest.compare_proportions(20, 200, 60, 300)
    half = Z_975 * math.sqrt(0.1 * 0.9 / 200 + 0.2 * 0.8 / 300)
    assert result.ci_low == pytest.approx(0.1 - half, rel=1e-6)
    assert result.ci_high == pytest.approx(0.1 + half, rel=1e-6)
    narrow = abtest.compare_proportions(20, 200, 60, 300, confidence=0.90)
    half_90 = Z_95 * math.sqrt(0.1 * 0.9 / 200 + 0.2 * 0.8 / 300)
    assert (narrow.ci_low, narrow.ci_high) == pytest.approx((0.1 - half_90, 0.1 + half_90))


@pytest.mark.checkpoint("3.10")
def test_no_difference_at_all(abtest):
    """Both variants convert nobody: difference 0, p = 1, a zero-width interval at 0."""
    result = abtest.compare_proportions(0, 50, 0, 80)
    assert result.difference == 0 and result.p_value == pytest.approx(1.0)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.0, 0.0))


@pytest.mark.checkpoint("3.10")
def test_sample_size_by_hand(abtest):
    """10 % -> 12 %: (1.96 sqrt(2 * .11 * .89) + 0.8416 sqrt(.1 * .9 + .12 * .88))^2 / .02^2."""
    root = Z_975 * math.sqrt(2 * 0.11 * 0.89) + Z_80 * math.sqrt(0.1 * 0.9 + 0.12 * 0.88)
    assert math.ceil(root**2 / 0.02**2) == 3841
    assert abtest.sample_size_per_variant(0.10, 0.02) == 3841
    root = Z_975 * math.sqrt(2 * 0.525 * 0.475) + Z_80 * math.sqrt(0.5 * 0.5 + 0.55 * 0.45)
    assert math.ceil(root**2 / 0.05**2) == 1565
    assert abtest.sample_size_per_variant(0.5, 0.05) == 1565


@pytest.mark.checkpoint("3.10")
def test_sample_size_uses_alpha_and_power(abtest):
    """alpha 0.01 and power 0.9 use z = 2.5758 and 1.2816 in the same formula."""
    root = 2.5758293035489004 * math.sqrt(2 * 0.11 * 0.89) + 1.2815515655446004 * math.sqrt(
        0.1 * 0.9 + 0.12 * 0.88
    )
    expected = math.ceil(root**2 / 0.02**2)
    assert abtest.sample_size_per_variant(0.10, 0.02, alpha=0.01, power=0.9) == expected
    result = abtest.sample_size_per_variant(0.10, 0.02)
    assert isinstance(result, int)
