"""The gradient checker itself: exact on known gradients, loud on wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from scratch_ml.gradcheck import check_gradient, numerical_gradient


def test_numerical_gradient_of_quadratic_is_exact():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 5))
    A = A @ A.T
    b = rng.normal(size=5)
    w = rng.normal(size=5)
    f = lambda v: 0.5 * v @ A @ v + b @ v  # noqa: E731
    np.testing.assert_allclose(numerical_gradient(f, w), A @ w + b, rtol=1e-7, atol=1e-8)


def test_numerical_gradient_keeps_shape_and_input():
    w = np.arange(6, dtype=float).reshape(2, 3)
    before = w.copy()
    g = numerical_gradient(lambda v: np.sum(np.sin(v)), w)
    assert g.shape == (2, 3)
    np.testing.assert_array_equal(w, before)
    np.testing.assert_allclose(g, np.cos(w), rtol=1e-7, atol=1e-9)


def test_check_gradient_accepts_right_and_rejects_wrong():
    rng = np.random.default_rng(1)
    w = rng.normal(size=8)
    f = lambda v: np.sum(np.log1p(np.exp(v)))  # noqa: E731
    right = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    wrong = lambda v: 1 / (1 + np.exp(v))  # noqa: E731
    assert check_gradient(f, right, w) < 1e-7
    assert check_gradient(f, wrong, w) > 1e-2
    assert check_gradient(f, lambda v: 1.01 * right(v), w) > 1e-3


def test_check_gradient_zero_gradient_and_shape_mismatch():
    w = np.zeros(3)
    assert check_gradient(lambda v: 1.0, lambda v: np.zeros(3), w) == 0.0
    with pytest.raises(ValueError, match="shape"):
        check_gradient(lambda v: float(v @ v), lambda v: np.zeros(4), w)
