"""scratch_ml.metrics against sklearn.metrics on seeded data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from scratch_ml import metrics

SEEDS = [0, 1, 2, 3, 4]


def _weights(rng, n, use):
    return rng.uniform(0.1, 3.0, n) if use else None


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_matches_sklearn(seed, weighted):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, 200))
    w = _weights(rng, 200, weighted)
    assert metrics.accuracy_score(y_true, y_pred, sample_weight=w) == pytest.approx(
        skm.accuracy_score(y_true, y_pred, sample_weight=w), abs=1e-12
    )


def test_accuracy_string_labels_and_length_mismatch():
    assert metrics.accuracy_score(["a", "b", "a"], ["a", "a", "a"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        metrics.accuracy_score([0, 1], [0, 1, 1])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_log_loss_binary_matches_sklearn(seed, weighted):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    p[:5] = [0.0, 1.0, 1e-20, 1 - 1e-17, 0.5]  # exercise clipping
    w = _weights(rng, 300, weighted)
    assert metrics.log_loss(y, p, sample_weight=w) == pytest.approx(
        skm.log_loss(y, p, sample_weight=w), rel=1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_log_loss_multiclass_matches_sklearn(seed, weighted):
    rng = np.random.default_rng(seed)
    labels = np.array(["ant", "bee", "cat", "dog"])
    y = labels[rng.integers(0, 4, 250)]
    raw = rng.random((250, 4)) ** 3
    p = raw / raw.sum(axis=1, keepdims=True)
    w = _weights(rng, 250, weighted)
    assert metrics.log_loss(y, p, sample_weight=w) == pytest.approx(
        skm.log_loss(y, p, sample_weight=w), rel=1e-12
    )
    # labels= lets y_true miss a class that proba has a column for
    subset = y != "dog"
    assert metrics.log_loss(y[subset], p[subset], labels=labels) == pytest.approx(
        skm.log_loss(y[subset], p[subset], labels=labels), rel=1e-12
    )


def test_log_loss_errors():
    with pytest.raises(ValueError, match="only one label"):
        metrics.log_loss([1, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match="different number of classes"):
        metrics.log_loss([0, 1, 2], [[0.5, 0.5]] * 3)
    with pytest.raises(ValueError, match="greater than 1"):
        metrics.log_loss([0, 1], [0.5, 1.5])
    with pytest.warns(UserWarning, match="do not sum to one"):
        metrics.log_loss([0, 1], [[0.5, 0.6], [0.5, 0.5]])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc_matches_sklearn(seed, weighted, ties):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    score = y * 0.7 + rng.normal(size=400)
    if ties:
        score = np.round(score, 1)  # many tied scores across both classes
    w = _weights(rng, 400, weighted)
    assert metrics.roc_auc_score(y, score, sample_weight=w) == pytest.approx(
        skm.roc_auc_score(y, score, sample_weight=w), abs=1e-12
    )


def test_roc_auc_labels_and_edge_cases():
    y = np.array(["no", "yes", "no", "yes"])
    s = np.array([0.1, 0.9, 0.4, 0.4])
    assert metrics.roc_auc_score(y, s) == pytest.approx(skm.roc_auc_score(y == "yes", s))
    assert metrics.roc_auc_score([0, 0, 1, 1], [1, 1, 1, 1]) == 0.5
    with pytest.warns(metrics.UndefinedMetricWarning):
        assert np.isnan(metrics.roc_auc_score([1, 1, 1], [0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="binary"):
        metrics.roc_auc_score([0, 1, 2], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_metrics_match_sklearn(seed, weighted, outputs):
    rng = np.random.default_rng(seed)
    shape = (150,) if outputs == 1 else (150, outputs)
    y = rng.normal(size=shape)
    pred = y + rng.normal(scale=0.5, size=shape)
    w = _weights(rng, 150, weighted)
    assert metrics.r2_score(y, pred, sample_weight=w) == pytest.approx(
        skm.r2_score(y, pred, sample_weight=w), rel=1e-12
    )
    assert metrics.mean_squared_error(y, pred, sample_weight=w) == pytest.approx(
        skm.mean_squared_error(y, pred, sample_weight=w), rel=1e-12
    )


def test_r2_constant_target_conventions():
    assert metrics.r2_score([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]) == 1.0
    assert metrics.r2_score([1.0, 1.0, 1.0], [1.0, 2.0, 1.0]) == 0.0
    with pytest.warns(metrics.UndefinedMetricWarning):
        assert np.isnan(metrics.r2_score([1.0], [1.0]))
