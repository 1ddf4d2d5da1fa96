"""Checkpoint 2.5: the promotion gate's paired bootstrap interval and its decision.

Grades `mlops_pipeline.training.gates.paired_bootstrap_diff(y, p_new, p_old, metric, n_boot,
alpha, seed) -> (low, high, point)` and `decide(low, high, metric, margin)`. The oracles are
written out here: scikit-learn's metrics on the full sample, a brute-force bootstrap loop, an
unpaired bootstrap for comparison, and a finite population whose true log-loss difference is
known exactly (for coverage). Nothing is compared with the reference implementation.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import log_loss, roc_auc_score

from learn.testing import import_learner


@pytest.fixture
def gates():
    return import_learner("mlops_pipeline.training.gates")


def _scores(n: int, seed: int, signal: float = 1.0):
    """Labels and a model's scores with some skill: logit = signal * (latent) + noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(latent - 1)))).astype(int)
    p = 1 / (1 + np.exp(-(signal * latent - 1 + rng.normal(0, 1, n))))
    return y, p, rng


def _auc(y, p):
    """Mann-Whitney: ROC AUC from average ranks (ties count one half), no scikit-learn call."""
    ranks = rankdata(p)
    positives = y.sum()
    negatives = len(y) - positives
    return (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def _log_loss(y, p):
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def _oracle_bootstrap(y, p_new, p_old, metric, n_boot, alpha, seed, paired=True):
    """Brute force: one resample at a time, the metric from its definition, numpy percentiles."""
    score = _auc if metric == "roc_auc" else _log_loss
    rng = np.random.default_rng(seed)
    n, diffs = len(y), []
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        other = rows if paired else rng.integers(0, n, n)
        if len(np.unique(y[rows])) < 2 or len(np.unique(y[other])) < 2:
            continue
        diffs.append(score(y[rows], p_new[rows]) - score(y[other], p_old[other]))
    return np.quantile(diffs, [alpha / 2, 1 - alpha / 2])


@pytest.mark.checkpoint("2.5")
def test_point_is_the_full_sample_difference(gates):
    """The third value is metric(p_new) - metric(p_old) on all rows, for ROC AUC and log loss."""
    y, p_old, rng = _scores(400, seed=1)
    p_new = np.clip(p_old + rng.normal(0, 0.1, len(y)), 0.01, 0.99)
    _, _, auc_point = gates.paired_bootstrap_diff(y, p_new, p_old, "roc_auc", 50, 0.05, 0)
    _, _, loss_point = gates.paired_bootstrap_diff(y, p_new, p_old, "log_loss", 50, 0.05, 0)
    assert auc_point == pytest.approx(roc_auc_score(y, p_new) - roc_auc_score(y, p_old), abs=1e-9)
    assert loss_point == pytest.approx(log_loss(y, p_new) - log_loss(y, p_old), abs=1e-9)


@pytest.mark.checkpoint("2.5")
def test_identical_models_give_a_zero_interval(gates):
    """The same scores for both models: every resampled difference, hence the interval, is 0."""
    y, p, _ = _scores(300, seed=2)
    low, high, point = gates.paired_bootstrap_diff(y, p, p.copy(), "roc_auc", 100, 0.05, 0)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0, abs=1e-12)
    assert point == pytest.approx(0, abs=1e-12)


@pytest.mark.checkpoint("2.5")
def test_resamples_are_paired(gates):
    """Both models are scored on the same rows: a monotone rescoring has AUC difference 0 on
    every resample, so its interval is exactly 0 (independent resamples would spread it)."""
    y, p, _ = _scores(300, seed=3)
    low, high, _ = gates.paired_bootstrap_diff(y, p**2, p, "roc_auc", 100, 0.05, 0)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0, abs=1e-12)


@pytest.mark.checkpoint("2.5")
def test_paired_interval_is_narrower_than_an_unpaired_one(gates):
    """Two close models: the paired interval is far narrower than resampling them separately."""
    y, p_old, rng = _scores(800, seed=4)
    p_new = np.clip(p_old + rng.normal(0, 0.03, len(y)), 0.001, 0.999)
    low, high, _ = gates.paired_bootstrap_diff(y, p_new, p_old, "roc_auc", 200, 0.05, 0)
    u_low, u_high = _oracle_bootstrap(y, p_new, p_old, "roc_auc", 400, 0.05, 1, paired=False)
    assert 0 < high - low < 0.4 * (u_high - u_low)


@pytest.mark.checkpoint("2.5")
def test_interval_matches_a_brute_force_bootstrap(gates):
    """The percentile interval agrees with a brute-force loop within Monte Carlo error."""
    y, p_old, rng = _scores(500, seed=5)
    p_new = _scores(500, seed=5, signal=1.6)[1]
    for metric, alpha in (("roc_auc", 0.05), ("log_loss", 0.3)):
        low, high, point = gates.paired_bootstrap_diff(y, p_new, p_old, metric, 800, alpha, 11)
        o_low, o_high = _oracle_bootstrap(y, p_new, p_old, metric, 2000, alpha, seed=12)
        width = o_high - o_low  # tolerance: ~5 Monte Carlo standard errors of a percentile
        assert low == pytest.approx(o_low, abs=0.15 * width), (metric, alpha)
        assert high == pytest.approx(o_high, abs=0.15 * width), (metric, alpha)
        assert low < point < high


@pytest.mark.checkpoint("2.5")
def test_seed_makes_the_interval_reproducible(gates):
    """The same seed gives the same interval; another seed gives another (random) interval."""
    y, p_old, rng = _scores(300, seed=6)
    p_new = np.clip(p_old + rng.normal(0, 0.1, len(y)), 0.01, 0.99)
    first = gates.paired_bootstrap_diff(y, p_new, p_old, "roc_auc", 100, 0.05, seed=7)
    again = gates.paired_bootstrap_diff(y, p_new, p_old, "roc_auc", 100, 0.05, seed=7)
    other = gates.paired_bootstrap_diff(y, p_new, p_old, "roc_auc", 100, 0.05, seed=8)
    assert first == again
    assert first[:2] != other[:2] and first[2] == other[2]


@pytest.mark.checkpoint("2.5")
def test_clearly_better_and_clearly_worse_models(gates):
    """A much better model's interval lies above 0 (and is promoted); swapped, below 0."""
    y, weak, _ = _scores(1000, seed=9, signal=0.3)
    strong = _scores(1000, seed=9, signal=2.5)[1]
    low, high, point = gates.paired_bootstrap_diff(y, strong, weak, "roc_auc", 200, 0.05, 0)
    assert 0 < low < point < high
    assert gates.decide(low, high, "roc_auc", 0.0)
    low, high, _ = gates.paired_bootstrap_diff(y, weak, strong, "roc_auc", 200, 0.05, 0)
    assert low < high < 0
    assert not gates.decide(low, high, "roc_auc", 0.0)


@pytest.mark.checkpoint("2.5")
def test_interval_covers_a_known_difference(gates):
    """An 80% interval contains the true log-loss difference of two fixed models in about 80%
    of samples from a population where that difference is known exactly."""
    q = np.linspace(0.05, 0.6, 12)  # P(delayed | x) for 12 kinds of flight
    p_new = np.clip(q + 0.05, 0.01, 0.99)
    p_old = np.full(12, q.mean())
    entropy = lambda p: -(q * np.log(p) + (1 - q) * np.log(1 - p))  # noqa: E731
    truth = entropy(p_new).mean() - entropy(p_old).mean()
    rng = np.random.default_rng(10)
    covered, reps = 0, 40
    for rep in range(reps):
        x = rng.integers(0, 12, 200)
        y = (rng.random(200) < q[x]).astype(int)
        low, high, _ = gates.paired_bootstrap_diff(
            y, p_new[x], p_old[x], "log_loss", 100, 0.2, seed=rep
        )
        covered += low <= truth <= high
    assert 25 <= covered <= 38, f"covered {covered} of {reps}, expected about 32"


@pytest.mark.checkpoint("2.5")
def test_decision_needs_the_whole_interval_past_the_margin(gates):
    """ROC AUC: promote when low > margin; log loss (lower is better): when high < -margin."""
    assert gates.decide(0.004, 0.02, "roc_auc", 0.0)
    assert not gates.decide(-0.001, 0.02, "roc_auc", 0.0)
    assert not gates.decide(0.0, 0.02, "roc_auc", 0.0)  # touching the margin is not enough
    assert not gates.decide(0.004, 0.02, "roc_auc", 0.005)
    assert gates.decide(0.006, 0.02, "roc_auc", 0.005)
    assert gates.decide(-0.02, -0.004, "log_loss", 0.0)
    assert not gates.decide(-0.02, 0.001, "log_loss", 0.0)
    assert not gates.decide(0.004, 0.02, "log_loss", 0.0)  # the candidate's loss is HIGHER
    assert not gates.decide(-0.02, -0.004, "log_loss", 0.005)
    assert gates.decide(-0.02, -0.006, "log_loss", 0.005)
