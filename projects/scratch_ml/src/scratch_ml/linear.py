"""L2-regularised logistic regression from scratch: Newton (IRLS) and gradient descent.

The objective
-------------
scikit-learn's ``LogisticRegression`` minimises ``C * sum_i s_i * loss_i + 0.5 * ||coef||^2``
(``s_i`` the sample weights times the class weights, the intercept not penalised). Here the
same problem is divided by ``C * S`` with ``S = sum_i s_i``, which leaves the minimiser
unchanged and gives an objective of order one whatever the number of samples::

    f(w) = (1 / S) * sum_i s_i * loss_i(w)  +  (alpha / 2) * ||w without intercept||^2,
    alpha = 1 / (C * S).

Why rescale? A gradient-norm tolerance (``tol``) then means the same thing for 100 samples or
10 million, repeating a sample and doubling its weight give the *identical* objective (what
scikit-learn's sample-weight checks test), and gradient descent's step sizes stay sensible.

The intercept-column convention
-------------------------------
The low-level functions (``log_loss_and_gradient``, ``newton_step`` and their multinomial
counterparts) take a design matrix that already contains the intercept as its **last column,
a column of ones**, and weights whose **last entry is the intercept**. With
``fit_intercept=True`` that last weight is left out of the penalty; with ``fit_intercept=False``
there is no such column and every weight is penalised. Treating the intercept as "just another
column" keeps the algebra (and the Newton Hessian) one matrix product, at the price of one copy
of X in ``fit``.

Solvers
-------
- ``"newton"`` (default): Newton's method, a.k.a. iteratively reweighted least squares. Each
  step solves ``H d = -g`` with a Cholesky factorisation (H is symmetric positive definite when
  alpha > 0) and is followed by a backtracking line search, so it cannot diverge. Quadratic
  convergence means 5-10 iterations, each costing one ``X^T W X`` product, O(n d^2): fast for
  the tall, narrow problems this package targets, hopeless for d in the tens of thousands.
  Multinomial Newton uses the full ``(k * (d + 1))``-square Hessian (k classes, all k
  coefficient vectors, as scikit-learn parameterises the problem): fine for k * d up to a few
  thousand; for wider problems use ``solver="gd"``.
- ``"gd"``: plain gradient descent with an Armijo backtracking line search, O(n d) per
  iteration but needing many more iterations; it is here to compare against Newton.

Both stop when the largest absolute entry of the gradient of ``f`` falls to ``tol``, and warn
with ``ConvergenceWarning`` when ``max_iter`` iterations were not enough.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

from scratch_ml._param_validation import Interval, StrOptions
from scratch_ml.base import BaseEstimator, ClassifierMixin
from scratch_ml.validation import (
    check_array,
    check_features,
    check_sample_weight,
    check_X_y,
    encode_labels,
    record_features,
)

__all__ = [
    "ConvergenceWarning",
    "LogisticRegression",
    "cholesky_solve",
    "log_loss_and_gradient",
    "newton_step",
    "sigmoid",
    "softmax_loss_and_gradient",
    "softmax_newton_step",
]


class ConvergenceWarning(UserWarning):
    """The solver stopped at ``max_iter`` before the gradient reached ``tol``."""


# --- small shared helpers ------------------------------------------------------------------


def _as_weights(sample_weight: np.ndarray | None, n_samples: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n_samples)
    return np.asarray(sample_weight, dtype=np.float64)


def _penalty_mask(n_weights: int, fit_intercept: bool) -> np.ndarray:
    """1.0 for penalised weights, 0.0 for the intercept (the last weight) when fitted."""
    mask = np.ones(n_weights)
    if fit_intercept:
        mask[-1] = 0.0
    return mask


def cholesky_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``A x = b`` for a symmetric positive definite ``A`` through ``A = L L^T``.

    numpy has no triangular solver, so the two triangular systems go through ``np.linalg.solve``;
    for the (d + 1)-square systems here that costs nothing next to building ``A``. Raises
    ``np.linalg.LinAlgError`` when ``A`` is not positive definite.
    """
    L = np.linalg.cholesky(A)
    return np.linalg.solve(L.T, np.linalg.solve(L, b))


def _solve_semidefinite(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fallback when Cholesky fails: ``A`` is only positive *semi*-definite (or barely PD).

    That happens with ``alpha = 0`` (``C=np.inf``) and collinear or constant columns, or when
    the fitted probabilities saturate at 0/1 (separable data) so ``p (1 - p)`` underflows.
    Adding a small ridge ``mu * I`` (Levenberg-Marquardt damping) makes the system positive
    definite, and ``-(A + mu I)^-1 g`` is still a descent direction, so the line search keeps
    working; ``mu`` grows from 1e-10 to 1e-2 of the mean diagonal until Cholesky succeeds. If
    nothing works (NaN, or a zero matrix), least squares returns the minimum-norm solution.
    """
    scale = float(np.mean(np.abs(np.diag(A)))) or 1.0
    identity = np.eye(A.shape[0])
    for jitter in (1e-10, 1e-8, 1e-6, 1e-4, 1e-2):
        try:
            return cholesky_solve(A + jitter * scale * identity, b)
        except np.linalg.LinAlgError:
            continue
    return np.linalg.lstsq(A, b, rcond=None)[0]


# --- binary problem ------------------------------------------------------------------------


def sigmoid(z: Any) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-z))``, without overflow for any finite z.

    ``exp(-z)`` overflows for z below about -709; evaluate ``exp(-|z|)``, which lies in (0, 1],
    and use ``sigmoid(z) = 1 / (1 + e)`` for z >= 0 and ``e / (1 + e)`` for z < 0.
    """
    z = np.asarray(z, dtype=np.float64)
    # BEGIN SOLUTION 1.1: a numerically stable sigmoid (no overflow warning at z = +-1000)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    # END SOLUTION


def log_loss_and_gradient(
    w: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    sample_weight: np.ndarray | None = None,
    *,
    fit_intercept: bool = True,
) -> tuple[float, np.ndarray]:
    """Penalised mean logistic loss of the weights ``w`` and its gradient.

    Parameters: ``X`` is n x m (its last column the ones of the intercept when
    ``fit_intercept``), ``w`` has m entries (the last one the intercept), ``y`` holds 0/1
    labels, ``sample_weight`` ``s`` defaults to ones. With ``z = X w``, ``S = sum(s)`` and
    ``r = w`` with the intercept entry set to 0::

        loss = (1/S) sum_i s_i [log(1 + exp(z_i)) - y_i z_i] + (alpha/2) ||r||^2
        grad = X^T (s * (sigmoid(z) - y)) / S + alpha r

    ``log(1 + exp(z))`` must be computed stably, e.g. ``np.logaddexp(0, z)``: the naive form
    overflows for z > 709 and loses everything to rounding for z < -37.
    """
    s = _as_weights(sample_weight, X.shape[0])
    penalised = _penalty_mask(w.shape[0], fit_intercept)
    # BEGIN SOLUTION 1.1: the weighted mean log-loss plus the L2 term, and its gradient
    z = X @ w
    total = s.sum()
    r = w * penalised
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): np.logaddexp(0, z), only faster.
    softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    loss = np.dot(s, softplus - y * z) / total + 0.5 * alpha * np.dot(r, r)
    grad = X.T @ (s * (sigmoid(z) - y)) / total + alpha * r
    return float(loss), grad
    # END SOLUTION


def newton_step(
    w: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    sample_weight: np.ndarray | None = None,
    *,
    fit_intercept: bool = True,
) -> np.ndarray:
    """The Newton direction ``d`` solving ``H d = -g`` at ``w`` (same conventions as above).

    With ``p = sigmoid(X w)`` the Hessian of the objective is::

        H = X^T diag(s * p * (1 - p)) X / S + alpha * diag(penalty mask)

    which is symmetric and positive definite when alpha > 0 and the intercept column is not
    degenerate. Build it with one matrix product on a row-scaled copy of X (never a dense n x n
    ``diag``), factorise it with Cholesky and solve two triangular systems; never invert H. If
    Cholesky fails, fall back to ``_solve_semidefinite``. The caller adds ``d`` (times a line
    search step) to ``w``.
    """
    s = _as_weights(sample_weight, X.shape[0])
    penalised = _penalty_mask(w.shape[0], fit_intercept)
    # BEGIN SOLUTION 1.2: assemble the Hessian X^T W X / S + alpha I' and solve H d = -g by Cholesky
    total = s.sum()
    p = sigmoid(X @ w)
    g = X.T @ (s * (p - y)) / total + alpha * penalised * w
    curvature = s * p * (1.0 - p) / total
    # sqrt(W) X on both sides lets numpy use a symmetric rank-k update (syrk): half the flops.
    Xw = X * np.sqrt(curvature)[:, None]
    H = Xw.T @ Xw
    H[np.diag_indices_from(H)] += alpha * penalised
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return _solve_semidefinite(H, -g)
    return np.linalg.solve(L.T, np.linalg.solve(L, -g))
    # END SOLUTION


# --- multinomial problem -------------------------------------------------------------------


def _log_softmax(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.max(axis=1, keepdims=True)
    return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))


def softmax_loss_and_gradient(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    sample_weight: np.ndarray | None = None,
    *,
    fit_intercept: bool = True,
) -> tuple[float, np.ndarray]:
    """Penalised mean softmax cross-entropy of ``W`` (k x m) and its gradient (k x m).

    ``y`` holds class indices 0..k-1. With ``Z = X W^T``, ``P = softmax(Z)`` row-wise and
    ``Y`` the one-hot encoding of y::

        loss = (1/S) sum_i s_i [logsumexp(Z_i) - Z_{i, y_i}] + (alpha/2) ||W without intercepts||^2
        grad = ((P - Y) * s)^T X / S + alpha * W without intercepts

    Like scikit-learn, every class has its own coefficient vector: the softmax is unchanged by
    adding the same vector to all of them, and the penalty picks the representative whose
    coefficients sum to zero over classes.
    """
    s = _as_weights(sample_weight, X.shape[0])
    penalised = _penalty_mask(W.shape[1], fit_intercept)
    total = s.sum()
    log_p = _log_softmax(X @ W.T)
    rows = np.arange(X.shape[0])
    R = W * penalised
    loss = -np.dot(s, log_p[rows, y]) / total + 0.5 * alpha * np.sum(R * R)
    residual = np.exp(log_p)
    residual[rows, y] -= 1.0
    residual *= (s / total)[:, None]
    return float(loss), residual.T @ X + alpha * R


def softmax_newton_step(
    W: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    sample_weight: np.ndarray | None = None,
    *,
    fit_intercept: bool = True,
) -> np.ndarray:
    """The multinomial Newton direction (k x m) from the full k*m-square Hessian.

    Block (a, b) of the Hessian is ``X^T diag(s * (p_a [a == b] - p_a p_b)) X / S`` plus alpha
    on the diagonal of penalised entries. Shifting every class's weight for one column by the
    same amount leaves the softmax unchanged, so the Hessian is singular along those directions
    for every unpenalised column (the intercepts; all columns when alpha = 0). The gradient is
    orthogonal to them, so adding their projector ``u u^T`` to H changes nothing in the solution
    except making H positive definite: Cholesky then applies, and the step keeps the intercepts
    summing to zero, as in scikit-learn (whose lbfgs starts at zero and moves along gradients).
    """
    k, m = W.shape
    s = _as_weights(sample_weight, X.shape[0])
    penalised = _penalty_mask(m, fit_intercept)
    total = s.sum()
    _, G = softmax_loss_and_gradient(W, X, y, alpha, s, fit_intercept=fit_intercept)
    P = np.exp(_log_softmax(X @ W.T))
    H = np.empty((k * m, k * m))
    for a in range(k):  # k (k + 1) / 2 products of n x m matrices: vectorised over samples
        for b in range(a, k):
            c = s * P[:, a] * ((a == b) - P[:, b]) / total
            block = X.T @ (X * c[:, None])
            H[a * m : (a + 1) * m, b * m : (b + 1) * m] = block
            H[b * m : (b + 1) * m, a * m : (a + 1) * m] = block.T
    H[np.diag_indices_from(H)] += alpha * np.tile(penalised, k)
    scale = float(np.mean(np.diag(H))) or 1.0
    for j in np.flatnonzero((penalised == 0) | (alpha == 0)):
        u = np.zeros(k * m)
        u[j::m] = 1.0 / np.sqrt(k)
        H += scale * np.outer(u, u)
    g = G.ravel()
    try:
        d = cholesky_solve(H, -g)
    except np.linalg.LinAlgError:
        d = _solve_semidefinite(H, -g)
    return d.reshape(k, m)


# --- the optimiser -------------------------------------------------------------------------


def _minimise(fun, direction, w0, *, tol, max_iter, newton):
    """Descent with an Armijo backtracking line search; returns (w, n_iter, converged).

    ``fun(w) -> (f, g)``; ``direction(w, g) -> d`` (Newton) or None for steepest descent.
    Newton tries the full step t = 1 first (accepted near the optimum: quadratic convergence);
    gradient descent starts from twice the last accepted step, so it adapts to the curvature.
    """
    w = w0
    f, g = fun(w)
    step = 1.0
    for n_iter in range(1, max_iter + 1):
        d = direction(w, g) if newton else -g
        slope = float(np.vdot(g, d))
        if not np.isfinite(slope) or slope >= 0:  # not a descent direction: use -g
            d, slope = -g, -float(np.vdot(g, g))
        t = 1.0 if newton else min(2.0 * step, 1e6)
        while True:
            w_new = w + t * d
            f_new, g_new = fun(w_new)
            if f_new <= f + 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-14:  # no decrease is representable: we are at the numerical floor
                return w, n_iter, bool(np.max(np.abs(g)) <= tol)
        w, f, g, step = w_new, f_new, g_new, t
        if np.max(np.abs(g)) <= tol:
            return w, n_iter, True
    return w, max_iter, False


# --- the estimator -------------------------------------------------------------------------


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """L2-regularised logistic regression, binary and multinomial, with scikit-learn's API.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength, scaled as in scikit-learn: the objective is
        ``C * sum_i s_i * loss_i + 0.5 * ||coef||^2`` (``np.inf`` for no penalty).
    solver : {"newton", "gd"}, default="newton"
        Newton/IRLS with Cholesky solves, or gradient descent with Armijo backtracking.
    max_iter : int, default=100
        Maximum number of iterations (Newton steps or gradient steps).
    tol : float, default=1e-6
        Stop when the max-abs gradient of the objective divided by ``C * sum(s)`` is <= tol.
    class_weight : None, "balanced" or dict, default=None
        Weights per class, multiplied into the sample weights; "balanced" uses
        ``sum(s) / (n_classes * weighted class count)`` as scikit-learn does.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept.

    Attributes
    ----------
    classes_, coef_ ((1, d) binary, (k, d) multinomial), intercept_ ((1,) or (k,)),
    n_iter_ (array of shape (1,)), n_features_in_, feature_names_in_ (DataFrames only).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "C": [Interval(Real, 0, None, closed="right")],  # np.inf: no penalty
        "solver": [StrOptions({"newton", "gd"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "fit_intercept": ["boolean"],
    }

    def __init__(
        self,
        C: float = 1.0,
        solver: str = "newton",
        max_iter: int = 100,
        tol: float = 1e-6,
        class_weight: None | str | dict = None,
        fit_intercept: bool = True,
    ) -> None:
        self.C = C
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.fit_intercept = fit_intercept

    def _class_weights(self, classes: np.ndarray, y_enc: np.ndarray, sw: np.ndarray):
        """One weight per class, in the order of ``classes_`` (scikit-learn's rules)."""
        k = len(classes)
        if self.class_weight is None:
            return np.ones(k)
        if self.class_weight == "balanced":
            counts = np.bincount(y_enc, weights=sw, minlength=k)
            with np.errstate(divide="ignore"):
                return np.where(counts > 0, counts.sum() / (k * counts), 0.0)
        known = {c.item() if isinstance(c, np.generic) else c for c in classes}
        unknown = [key for key in self.class_weight if key not in known]
        if unknown:
            raise ValueError(
                f"class_weight has labels {unknown} that are not classes of y ({list(classes)})."
            )
        return np.array([float(self.class_weight.get(c, 1.0)) for c in classes.tolist()])

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit the model; ``sample_weight`` multiplies each sample's loss."""
        self._validate_params()
        X_arr, y_arr = check_X_y(X, y, estimator=self)
        classes, y_enc = encode_labels(y_arr, self)
        sw = check_sample_weight(sample_weight, X_arr.shape[0])
        sw = sw * self._class_weights(classes, y_enc, sw)[y_enc]
        total = float(sw.sum())
        if not total > 0:
            raise ValueError("Sample weights must contain at least one non-zero number.")
        record_features(self, X, X_arr)
        self.classes_ = classes

        alpha = 0.0 if np.isinf(self.C) else 1.0 / (self.C * total)
        fit_intercept = bool(self.fit_intercept)
        # Column-major (Fortran) order: the column-wise products X w, X^T r and X^T W X that
        # every iteration needs run markedly faster on it than on row-major data.
        design = np.empty((X_arr.shape[0], X_arr.shape[1] + fit_intercept), order="F")
        design[:, : X_arr.shape[1]] = X_arr
        if fit_intercept:
            design[:, -1] = 1.0
        kwargs = {"fit_intercept": fit_intercept}
        newton = self.solver == "newton"

        if len(classes) == 2:
            y01 = y_enc.astype(np.float64)

            def fun(w):
                return log_loss_and_gradient(w, design, y01, alpha, sw, **kwargs)

            def direction(w, g):
                return newton_step(w, design, y01, alpha, sw, **kwargs)

            w0 = np.zeros(design.shape[1])
        else:

            def fun(w):
                return softmax_loss_and_gradient(w, design, y_enc, alpha, sw, **kwargs)

            def direction(w, g):
                return softmax_newton_step(w, design, y_enc, alpha, sw, **kwargs)

            w0 = np.zeros((len(classes), design.shape[1]))

        w, n_iter, converged = _minimise(
            fun, direction, w0, tol=float(self.tol), max_iter=int(self.max_iter), newton=newton
        )
        if not converged:
            warnings.warn(
                f"{self.solver} solver did not converge in max_iter={self.max_iter} "
                f"iterations (tol={self.tol}). Increase max_iter, scale the features "
                "(StandardScaler), or use solver='newton'.",
                ConvergenceWarning,
                stacklevel=2,
            )
        W = np.atleast_2d(w)
        if fit_intercept:
            self.coef_, self.intercept_ = W[:, :-1].copy(), W[:, -1].copy()
            if W.shape[0] > 1:  # the softmax ignores a common shift: report centred intercepts
                self.intercept_ -= self.intercept_.mean()
        else:
            self.coef_, self.intercept_ = W.copy(), np.zeros(W.shape[0])
        self.n_iter_ = np.array([n_iter], dtype=np.int32)
        return self

    # -- prediction ---------------------------------------------------------------------------

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed distance to the boundary: shape (n,) for binary, (n, k) for multinomial."""
        self._check_is_fitted("coef_")
        X_arr = check_array(X, estimator=self)
        check_features(self, X, X_arr)
        scores = X_arr @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log-probabilities computed stably (no log of a rounded-to-zero probability)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return -np.logaddexp(0.0, np.column_stack([scores, -scores]))
        return _log_softmax(scores)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:  # sigmoid(-z), not 1 - sigmoid(z): keeps tiny values accurate
            return sigmoid(np.column_stack([-scores, scores]))
        return np.exp(_log_softmax(scores))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label."""
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]
