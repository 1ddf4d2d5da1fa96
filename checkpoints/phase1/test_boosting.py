"""Checkpoints 1.5 and 1.6: quantile binning and the gradient-boosting update.

Conventions graded here (documented in ``scratch_ml/binning.py`` and ``scratch_ml/boosting.py``):
a value ``x`` goes to bin ``i`` when ``thresholds[i - 1] < x <= thresholds[i]``; raw
predictions are log-odds (one column per class for more than two classes) starting from the
log-odds of the class prior; a leaf's value is the Newton step ``-G / (H + l2)`` shrunk by the
learning rate. Everything is checked against order statistics, formulas and central
differences written out in this file, and against scikit-learn, never the reference code.
The 1.6 tests that fit a model bin its features first, so they also need 1.5 to be done.
"""

from __future__ import annotations

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def binning():
    return import_learner("scratch_ml.binning")


@pytest.fixture
def boosting():
    return import_learner("scratch_ml.boosting")


# ---------------------------------------------------------------------------- 1.5 binning


def _columns(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.normal(size=n),
            rng.lognormal(sigma=2.0, size=n),  # heavy right tail
            rng.uniform(-5, 5, size=n),
        ]
    )


@pytest.mark.checkpoint("1.5")
@pytest.mark.parametrize(("n", "max_bins"), [(2003, 16), (5001, 255), (997, 7)])
def test_thresholds_sit_at_the_quantiles(binning, n, max_bins):
    """Threshold k sits between the order statistics around the k/max_bins quantile."""
    X = _columns(n, n)
    mapper = binning.BinMapper(max_bins=max_bins, subsample=None).fit(X)
    for j in range(X.shape[1]):
        thresholds = np.asarray(mapper.bin_thresholds_[j])
        assert thresholds.shape == (max_bins - 1,)  # distinct continuous values: no ties
        assert np.all(np.diff(thresholds) > 0)
        order = np.sort(X[:, j])
        position = n * np.arange(1, max_bins) / max_bins  # 1-based rank of the quantile
        low = order[np.clip(np.floor(position).astype(int) - 1, 0, n - 1)]
        high = order[np.clip(np.ceil(position).astype(int), 0, n - 1)]
        assert np.all(low <= thresholds) and np.all(thresholds <= high)
        # hence equal-frequency bins, up to the rounding of n / max_bins
        counts = np.bincount(np.searchsorted(thresholds, X[:, j]), minlength=max_bins)
        assert counts.max() - counts.min() <= 3


@pytest.mark.checkpoint("1.5")
def test_few_distinct_values_get_exact_midpoints(binning):
    rng = np.random.default_rng(0)
    levels = np.array([-3.0, 0.5, 1.0, 7.25, 100.0])
    X = np.column_stack([rng.choice(levels, 400), rng.integers(0, 3, 400).astype(float)])
    mapper = binning.BinMapper(max_bins=255).fit(X)
    np.testing.assert_allclose(mapper.bin_thresholds_[0], (levels[:-1] + levels[1:]) / 2)
    np.testing.assert_allclose(mapper.bin_thresholds_[1], [0.5, 1.5])
    np.testing.assert_array_equal(mapper.n_bins_per_feature_, [5, 3])
    # exactly max_bins distinct values still get one bin each; one more switches to quantiles
    exact = np.repeat(np.arange(8.0), 5)[:, None]
    np.testing.assert_allclose(
        binning.BinMapper(max_bins=8).fit(exact).bin_thresholds_[0], np.arange(7) + 0.5
    )
    constant = binning.BinMapper().fit(np.full((10, 1), 4.2))
    assert len(constant.bin_thresholds_[0]) == 0
    assert np.all(constant.transform(np.array([[-1.0], [4.2], [9.0]])) == 0)


@pytest.mark.checkpoint("1.5")
@pytest.mark.parametrize("max_bins", [2, 10, 255])
def test_at_most_max_bins_even_with_ties(binning, max_bins):
    rng = np.random.default_rng(1)
    X = np.column_stack(
        [
            np.round(rng.normal(size=3000), 1),  # ~70 distinct values, heavy ties
            np.where(rng.random(3000) < 0.8, 0.0, rng.normal(size=3000)),  # 80 % zeros
            rng.normal(size=3000),
        ]
    )
    mapper = binning.BinMapper(max_bins=max_bins).fit(X)
    codes = mapper.transform(X)
    assert codes.dtype == np.uint8 and codes.shape == X.shape
    for j in range(3):
        thresholds = np.asarray(mapper.bin_thresholds_[j])
        assert len(thresholds) <= max_bins - 1 and np.all(np.diff(thresholds) > 0)
        assert mapper.n_bins_per_feature_[j] == len(thresholds) + 1 <= max_bins
        assert codes[:, j].max() < mapper.n_bins_per_feature_[j]


@pytest.mark.checkpoint("1.5")
def test_every_value_lands_between_its_bin_edges(binning):
    X_train = _columns(7, 3000)
    mapper = binning.BinMapper(max_bins=64).fit(X_train)
    # new data, including values outside the training range and exactly on thresholds
    X = np.vstack([_columns(8, 1000), X_train.min(axis=0) - 1, X_train.max(axis=0) + 1])
    X = np.vstack([X, np.column_stack([t[:40] for t in mapper.bin_thresholds_])])
    codes = mapper.transform(X).astype(int)
    for j, thresholds in enumerate(mapper.bin_thresholds_):
        edges = np.concatenate(([-np.inf], thresholds, [np.inf]))
        assert np.all(edges[codes[:, j]] < X[:, j])
        assert np.all(X[:, j] <= edges[codes[:, j] + 1])
    assert np.all(codes[-42] == 0)  # below everything: first bin
    np.testing.assert_array_equal(codes[-41], mapper.n_bins_per_feature_ - 1)  # above: last
    np.testing.assert_array_equal(codes[-40:], np.tile(np.arange(40)[:, None], (1, 3)))


# ----------------------------------------------------------------------- 1.6 the update


def _log_loss(y: np.ndarray, raw: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(raw)) - y * raw


@pytest.mark.checkpoint("1.6")
def test_log_loss_gradient_and_hessian(boosting):
    rng = np.random.default_rng(0)
    raw = rng.normal(scale=3.0, size=(200, 1))
    y = rng.integers(0, 2, size=(200, 1)).astype(float)
    g, h = boosting.log_loss_gradient_hessian(y, raw)
    g, h = np.asarray(g), np.asarray(h)
    p = 1.0 / (1.0 + np.exp(-raw))
    np.testing.assert_allclose(g, p - y, atol=1e-12)
    np.testing.assert_allclose(h, p * (1.0 - p), atol=1e-12)
    eps = 1e-5
    numeric_g = (_log_loss(y, raw + eps) - _log_loss(y, raw - eps)) / (2 * eps)
    numeric_h = (_log_loss(y, raw + eps) - 2 * _log_loss(y, raw) + _log_loss(y, raw - eps)) / eps**2
    np.testing.assert_allclose(g, numeric_g, atol=1e-7)
    np.testing.assert_allclose(h, numeric_h, atol=1e-4)
    # extreme scores: finite, no overflow warning, and the limits 0/1 of the sigmoid
    with np.errstate(over="raise", invalid="raise"):
        g, h = boosting.log_loss_gradient_hessian(np.array([1.0, 0.0]), np.array([-1e3, 1e3]))
    np.testing.assert_allclose(g, [-1.0, 1.0])
    np.testing.assert_allclose(h, [0.0, 0.0], atol=1e-300)


@pytest.mark.checkpoint("1.6")
def test_softmax_gradient_and_diagonal_hessian(boosting):
    rng = np.random.default_rng(1)
    raw = rng.normal(scale=2.0, size=(50, 4))
    y = rng.integers(0, 4, size=50)

    def loss(z):
        top = z.max(axis=1, keepdims=True)
        return (top[:, 0] + np.log(np.exp(z - top).sum(axis=1))) - z[np.arange(50), y]

    g, h = map(np.asarray, boosting.softmax_gradient_hessian(y, raw))
    eps = 1e-5
    for k in range(4):
        e = np.zeros(4)
        e[k] = eps
        numeric_g = (loss(raw + e) - loss(raw - e)) / (2 * eps)
        numeric_h = (loss(raw + e) - 2 * loss(raw) + loss(raw - e)) / eps**2
        np.testing.assert_allclose(g[:, k], numeric_g, atol=1e-7)
        np.testing.assert_allclose(h[:, k], numeric_h, atol=1e-4)


@pytest.mark.checkpoint("1.6")
def test_leaf_values_are_shrunken_newton_steps(boosting):
    G = np.array([-4.0, 2.5, 0.0, 10.0])
    H = np.array([2.0, 0.5, 3.0, 1e-3])
    np.testing.assert_allclose(boosting.newton_leaf_values(G, H, 0.0), -G / H)
    np.testing.assert_allclose(boosting.newton_leaf_values(G, H, 1.5), -G / (H + 1.5))
    raw = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    leaf = np.array([1, 0, 1, 3, 2])
    values = np.array([-1.0, 2.0, 5.0, 0.5])
    boosting.update_raw_predictions(raw, leaf, values, 0.1)
    np.testing.assert_allclose(raw, [0.2, 0.9, 2.2, 3.05, 4.5])


def _seeded_problem(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    logit = 1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2] * X[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    w = rng.uniform(0.5, 2.0, n)  # distinct weights keep every leaf's value distinct
    return X, y, w


@pytest.mark.checkpoint("1.6")
def test_one_iteration_moves_raw_predictions_by_the_leaf_value(boosting):
    X, y, w = _seeded_problem()
    lr, l2 = 0.3, 2.0
    model = boosting.GradientBoostingClassifier(
        n_estimators=1,
        learning_rate=lr,
        l2_regularization=l2,
        max_leaf_nodes=6,
        min_samples_leaf=30,
        early_stopping=False,
    ).fit(X, y, sample_weight=w)
    p0 = np.average(y, weights=w)
    baseline = np.log(p0 / (1 - p0))
    raw = model.decision_function(X)
    g, h = w * (p0 - y), w * p0 * (1 - p0)  # gradients/hessians at the baseline
    leaves, leaf_of = np.unique(np.round(raw, 12), return_inverse=True)
    assert 2 <= len(leaves) <= 6
    G, H = np.bincount(leaf_of, weights=g), np.bincount(leaf_of, weights=h)
    np.testing.assert_allclose(raw - baseline, lr * (-G / (H + l2))[leaf_of], rtol=1e-9)
    # the regressor: baseline is the mean, hessians are 1, so a leaf moves n/(n + l2) of the
    # way from the mean to its own mean
    target = X[:, 0] * 3 + np.sin(X[:, 1])
    reg = boosting.GradientBoostingRegressor(
        n_estimators=1, learning_rate=lr, l2_regularization=l2, early_stopping=False
    ).fit(X, target)
    pred = reg.predict(X)
    _, leaf_of = np.unique(np.round(pred, 12), return_inverse=True)
    n_leaf = np.bincount(leaf_of)
    leaf_mean = np.bincount(leaf_of, weights=target) / n_leaf
    expected = target.mean() + lr * n_leaf / (n_leaf + l2) * (leaf_mean - target.mean())
    np.testing.assert_allclose(pred, expected[leaf_of], rtol=1e-9)


@pytest.mark.checkpoint("1.6")
def test_training_loss_decreases_every_iteration(boosting):
    X, y, _ = _seeded_problem(seed=1)
    model = boosting.GradientBoostingClassifier(
        n_estimators=40, learning_rate=0.05, early_stopping=False
    ).fit(X, y)
    losses = [
        np.mean(_log_loss(y, np.log(p[:, 1] / p[:, 0]))) for p in model.staged_predict_proba(X)
    ]
    assert len(losses) == 40
    assert np.all(np.diff(losses) < 0)
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.checkpoint("1.6")
def test_auc_matches_hist_gradient_boosting(boosting):
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    X, y = make_classification(
        n_samples=3000, n_features=12, n_informative=6, flip_y=0.05, random_state=0
    )
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    params = dict(learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20)
    ours = boosting.GradientBoostingClassifier(n_estimators=60, early_stopping=False, **params)
    theirs = HistGradientBoostingClassifier(max_iter=60, early_stopping=False, **params)
    auc_ours = roc_auc_score(y_te, ours.fit(X_tr, y_tr).predict_proba(X_te)[:, 1])
    # One OpenMP thread: on a busy machine scikit-learn's threads can spin for minutes.
    with threadpool_limits(limits=1, user_api="openmp"):
        auc_theirs = roc_auc_score(y_te, theirs.fit(X_tr, y_tr).predict_proba(X_te)[:, 1])
    assert auc_ours == pytest.approx(auc_theirs, abs=0.005)
    # three classes: one tree per class per iteration, combined by a softmax
    from sklearn.datasets import load_iris

    X3, y3 = load_iris(return_X_y=True)
    ours3 = boosting.GradientBoostingClassifier(n_estimators=20, early_stopping=False).fit(X3, y3)
    with threadpool_limits(limits=1, user_api="openmp"):
        theirs3 = HistGradientBoostingClassifier(max_iter=20, early_stopping=False).fit(X3, y3)
    np.testing.assert_allclose(ours3.predict_proba(X3), theirs3.predict_proba(X3), atol=2e-3)
