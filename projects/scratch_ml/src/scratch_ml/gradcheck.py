"""Finite-difference gradient checking, for the math-refresh lab and the tests.

An analytic gradient is easy to get subtly wrong (a missing 1/n, a penalised intercept, a sign).
The cure is to compare it with a numerical one: the central difference

    df/dw_j ~ (f(w + eps e_j) - f(w - eps e_j)) / (2 eps)

has error O(eps^2) from truncation and O(machine_eps * |f| / eps) from rounding, so with
``eps = 1e-6`` and ``f`` of order one it agrees with a correct gradient to about 1e-8 to 1e-10
in relative terms, while a wrong one typically differs by 1e-2 or more. The one-sided difference
``(f(w + eps e_j) - f(w)) / eps`` is only O(eps) accurate: do not use it for checking.

Cost: two evaluations of ``f`` per coordinate, so keep the problems small (d up to a few hundred).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["check_gradient", "numerical_gradient"]


def numerical_gradient(
    f: Callable[[np.ndarray], float], w: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f`` at ``w`` (any shape).

    ``w`` is not modified; the result has ``w``'s shape, so it works for a coefficient matrix
    (multinomial models) as well as for a vector.
    """
    w = np.asarray(w, dtype=np.float64)
    flat = w.ravel().copy()
    grad = np.empty_like(flat)
    for j in range(flat.size):  # one coordinate at a time: f is a black box
        original = flat[j]
        flat[j] = original + eps
        f_plus = float(f(flat.reshape(w.shape)))
        flat[j] = original - eps
        f_minus = float(f(flat.reshape(w.shape)))
        flat[j] = original
        grad[j] = (f_plus - f_minus) / (2 * eps)
    return grad.reshape(w.shape)


def check_gradient(
    f: Callable[[np.ndarray], float],
    grad_f: Callable[[np.ndarray], np.ndarray],
    w: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Max relative error between ``grad_f(w)`` and the numerical gradient of ``f`` at ``w``.

    The relative error of coordinate j is ``|a_j - n_j| / max(|a_j| + |n_j|, 1e-8)``: symmetric
    in the two, and the floor keeps coordinates where both are ~0 from dividing by zero (they
    then count as an absolute error). Rules of thumb: below 1e-7 the gradient is right; above
    1e-4 it is almost certainly wrong; in between, look at the coordinates (kinks such as
    ``max(0, x)`` or clipping near ``w`` also inflate it).
    """
    w = np.asarray(w, dtype=np.float64)
    analytic = np.asarray(grad_f(w), dtype=np.float64)
    numeric = numerical_gradient(f, w, eps=eps)
    if analytic.shape != numeric.shape:
        raise ValueError(f"grad_f(w) has shape {analytic.shape}, but w has shape {numeric.shape}.")
    denominator = np.maximum(np.abs(analytic) + np.abs(numeric), 1e-8)
    return float(np.max(np.abs(analytic - numeric) / denominator, initial=0.0))
