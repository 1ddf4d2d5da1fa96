"""Checkpoints 1.1 and 1.2: the logistic loss and its gradient, and the Newton (IRLS) step.

Conventions graded here (documented in ``scratch_ml/linear.py``): the design matrix carries the
intercept as its last column of ones, the last weight is the intercept and is not penalised
(unless ``fit_intercept=False``), and the objective is the sample-weighted *mean* loss plus
``alpha / 2 * ||w without intercept||^2``. Everything is checked against formulas written out
in this file, central differences and scikit-learn, never against the reference code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def linear():
    return import_learner("scratch_ml.linear")


def _problem(seed: int, n: int = 60, d: int = 4, *, weighted: bool = True, scale: float = 1.0):
    """A seeded (X with intercept column, y in {0, 1}, weights, w, alpha) problem."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=(n, d)), np.ones(n)])
    y = (rng.random(n) < 0.4).astype(float)
    s = rng.uniform(0.1, 3.0, n) if weighted else None
    w = rng.normal(scale=scale, size=d + 1)
    alpha = [0.0, 0.05, 0.7][seed % 3]
    return X, y, s, w, alpha


def _reference_loss(w, X, y, alpha, s=None, fit_intercept=True):
    s = np.ones(len(y)) if s is None else s
    z = X @ w
    r = w.copy()
    if fit_intercept:
        r[-1] = 0.0
    return np.sum(s * (np.log1p(np.exp(z)) - y * z)) / s.sum() + 0.5 * alpha * r @ r


def _central_differences(f, w, eps=1e-6):
    grad = np.empty_like(w)
    for j in range(len(w)):
        e = np.zeros_like(w)
        e[j] = eps
        grad[j] = (f(w + e) - f(w - e)) / (2 * eps)
    return grad


# --- 1.1 -----------------------------------------------------------------------------------


@pytest.mark.checkpoint("1.1")
def test_sigmoid_values_and_no_overflow(linear):
    z = np.linspace(-30, 30, 121)
    np.testing.assert_allclose(linear.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-12)
    extreme = np.array([-1000.0, -745.0, 0.0, 745.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        out = np.asarray(linear.sigmoid(extreme), dtype=float)
    assert out.shape == extreme.shape
    assert np.isfinite(out).all() and ((out >= 0) & (out <= 1)).all()
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-300)
    # symmetry sigmoid(-z) = 1 - sigmoid(z), and monotone
    np.testing.assert_allclose(linear.sigmoid(-z), 1 - linear.sigmoid(z), atol=1e-15)
    assert np.all(np.diff(linear.sigmoid(z)) > 0)


@pytest.mark.checkpoint("1.1")
@pytest.mark.parametrize("seed", range(6))
def test_loss_matches_formula(linear, seed):
    X, y, s, w, alpha = _problem(seed, weighted=seed % 2 == 0)
    loss, grad = linear.log_loss_and_gradient(w, X, y, alpha, s)
    assert np.isscalar(loss) or np.ndim(loss) == 0
    assert float(loss) == pytest.approx(_reference_loss(w, X, y, alpha, s), rel=1e-10)
    assert np.shape(grad) == w.shape
    loss_no_b, _ = linear.log_loss_and_gradient(w, X, y, alpha, s, fit_intercept=False)
    expected = _reference_loss(w, X, y, alpha, s, fit_intercept=False)
    assert float(loss_no_b) == pytest.approx(expected, rel=1e-10)


@pytest.mark.checkpoint("1.1")
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gradient_matches_central_differences(linear, seed, fit_intercept):
    X, y, s, w, alpha = _problem(seed + 10, weighted=seed % 2 == 1)
    _, grad = linear.log_loss_and_gradient(w, X, y, alpha, s, fit_intercept=fit_intercept)

    def f(v):
        return _reference_loss(v, X, y, alpha, s, fit_intercept)

    numeric = _central_differences(f, w)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.checkpoint("1.1")
def test_loss_and_gradient_stable_for_huge_margins(linear):
    X, y, s, w, _ = _problem(3, weighted=True, scale=400.0)  # |z| in the hundreds/thousands
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = linear.log_loss_and_gradient(w, X, y, 0.0, s)
    z = X @ w
    softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert float(loss) == pytest.approx(np.sum(s * (softplus - y * z)) / s.sum(), rel=1e-10)
    p = 0.5 * (1 + np.tanh(z / 2))  # the sigmoid, written without any overflow
    np.testing.assert_allclose(grad, X.T @ (s * (p - y)) / s.sum(), rtol=1e-10, atol=1e-12)


# --- 1.2 -----------------------------------------------------------------------------------


def _reference_hessian_and_gradient(w, X, y, alpha, s):
    s = np.ones(len(y)) if s is None else s
    p = 1 / (1 + np.exp(-(X @ w)))
    mask = np.ones(len(w))
    mask[-1] = 0.0
    H = X.T @ np.diag(s * p * (1 - p)) @ X / s.sum() + alpha * np.diag(mask)
    g = X.T @ (s * (p - y)) / s.sum() + alpha * mask * w
    return H, g


@pytest.mark.checkpoint("1.2")
@pytest.mark.parametrize("seed", range(6))
def test_newton_step_solves_the_newton_system(linear, seed):
    X, y, s, w, alpha = _problem(seed + 20, n=50, d=5, weighted=seed % 2 == 0, scale=0.5)
    alpha = max(alpha, 1e-3) if seed < 3 else alpha  # both penalised and unpenalised cases
    H, g = _reference_hessian_and_gradient(w, X, y, alpha, s)
    d = np.asarray(linear.newton_step(w, X, y, alpha, s), dtype=float)
    assert d.shape == w.shape
    np.testing.assert_allclose(d, np.linalg.solve(H, -g), rtol=1e-8, atol=1e-10)


@pytest.mark.checkpoint("1.2")
def test_full_newton_steps_converge_quadratically(linear):
    # Full steps from zero on a well-posed problem: the gradient collapses within a few steps.
    X, y, s, _, _ = _problem(7, n=200, d=3, weighted=True)
    alpha = 0.01
    w = np.zeros(X.shape[1])
    norms = []
    for _ in range(6):
        w = w + np.asarray(linear.newton_step(w, X, y, alpha, s), dtype=float)
        norms.append(np.abs(_reference_hessian_and_gradient(w, X, y, alpha, s)[1]).max())
    assert norms[-1] < 1e-12
    assert norms[2] < 1e-4


@pytest.mark.checkpoint("1.2")
def test_fitted_newton_model_matches_sklearn(linear):
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for C in (0.05, 1.0):
        ours = linear.LogisticRegression(C=C, solver="newton").fit(X, y)
        theirs = SkLogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
        ours_loss = log_loss(y, ours.predict_proba(X))
        assert ours_loss == pytest.approx(log_loss(y, theirs.predict_proba(X)), abs=1e-4)
        assert int(np.ravel(ours.n_iter_)[0]) <= 15
        np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-3)
