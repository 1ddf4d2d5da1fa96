"""The paired randomisation test and the bootstrap interval against independent oracles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rag_service.evaluation.significance import paired_bootstrap_ci, paired_randomization_test


def _brute_force_p(a, b) -> float:
    """Exact two-sided p: every one of the 2^n sign assignments, one at a time."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    observed = abs(sum(d))
    extreme = 0
    for signs in itertools.product((1, -1), repeat=len(d)):
        if abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed - 1e-12:
            extreme += 1
    return extreme / 2 ** len(d)


def _pair(n: int, seed: int, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    b = rng.random(n)
    a = np.clip(b + shift + rng.normal(0, 0.2, n), 0, 1)
    return a.tolist(), b.tolist()


@pytest.mark.parametrize(("n", "seed", "shift"), [(6, 0, 0.0), (9, 1, 0.05), (12, 2, 0.1)])
def test_small_samples_are_enumerated_exactly(n, seed, shift):
    """2^n <= n_resamples: the p-value equals the brute-force enumeration exactly."""
    a, b = _pair(n, seed, shift)
    assert paired_randomization_test(a, b, n_resamples=10_000) == pytest.approx(
        _brute_force_p(a, b), abs=1e-12
    )


def test_monte_carlo_estimate_is_close_to_the_exact_p():
    """2^14 assignments > 4000 draws: the estimate lies within 4 binomial SDs of the exact p."""
    a, b = _pair(14, seed=3, shift=0.06)
    exact = _brute_force_p(a, b)
    draws = 4000
    estimate = paired_randomization_test(a, b, n_resamples=draws, seed=5)
    assert 0.01 < exact < 0.99  # a p-value the estimate could miss in either direction
    assert abs(estimate - exact) < 4 * np.sqrt(exact * (1 - exact) / draws) + 1 / draws


@pytest.mark.parametrize("n", [5, 40])
def test_identical_runs_give_p_one(n):
    """No difference at all: every assignment is as extreme, p = 1 (exact and Monte Carlo)."""
    scores = np.random.default_rng(0).random(n).tolist()
    assert paired_randomization_test(scores, list(scores)) == 1.0


def test_a_clearly_better_run_gets_a_small_p():
    """A run better on almost every one of 60 queries: p at the Monte Carlo floor region."""
    a, b = _pair(60, seed=4, shift=0.3)
    p = paired_randomization_test(a, b, n_resamples=5000, seed=1)
    assert p < 0.001
    assert p == paired_randomization_test(b, a, n_resamples=5000, seed=1)  # two-sided


def test_seeded_and_reproducible():
    """The same seed gives the same p; another seed draws other assignments."""
    a, b = _pair(40, seed=6, shift=0.04)
    first = paired_randomization_test(a, b, n_resamples=3000, seed=11)
    assert first == paired_randomization_test(a, b, n_resamples=3000, seed=11)
    others = {paired_randomization_test(a, b, n_resamples=3000, seed=s) for s in range(12, 16)}
    assert others - {first}
    assert paired_bootstrap_ci(a, b, 2000, seed=3) == paired_bootstrap_ci(a, b, 2000, seed=3)


def test_bootstrap_interval_matches_the_normal_approximation():
    """400 queries: the 95 % interval is close to mean +- 1.96 SD / sqrt(n) of the differences."""
    a, b = _pair(400, seed=8, shift=0.02)
    d = np.asarray(a) - np.asarray(b)
    interval = paired_bootstrap_ci(a, b, n_resamples=4000, seed=2)
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert interval.mean_difference == pytest.approx(d.mean(), abs=1e-12)
    assert interval.low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert interval.high == pytest.approx(d.mean() + half, abs=0.15 * half)


def test_bootstrap_of_identical_runs_is_a_zero_interval():
    """Equal scores: every resampled mean difference is 0."""
    scores = [0.2, 0.5, 0.9]
    interval = paired_bootstrap_ci(scores, scores, n_resamples=100)
    assert (interval.low, interval.high, interval.mean_difference) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [([1.0, 2.0], [1.0], "paired"), ([], [], "empty"), ([1.0, float("nan")], [1.0, 2.0], "finite")],
)
def test_bad_input_raises(a, b, message):
    """Unpaired, empty or non-finite scores are refused by both functions."""
    with pytest.raises(ValueError, match=message):
        paired_randomization_test(a, b)
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_ci(a, b)
