"""Histogram-based gradient boosting (scikit-learn's HistGradientBoosting, in numpy).

Gradient boosting builds an additive model ``F(x) = F_0 + sum_m nu * f_m(x)`` of *raw
predictions* (log-odds for classification, the target itself for regression). Each new tree
``f_m`` is fitted to a second-order Taylor expansion of the loss around the current raw
predictions: with per-sample gradients ``g_i`` and hessians ``h_i`` of the loss, a leaf
holding samples ``I`` lowers the loss most with the Newton step

    w = -G / (H + l2),   G = sum_{i in I} g_i,   H = sum_{i in I} h_i,

and a split's worth is how much those steps lower the expansion (the gain used by
:mod:`scratch_ml._hist_tree`). The learning rate ``nu`` shrinks every step: many small steps
generalise better than a few large ones.

Speed comes from binning (:mod:`scratch_ml.binning`): every feature is mapped once to at most
255 ``uint8`` codes, so split finding works on per-bin histograms instead of sorted values.

What is modelled on scikit-learn's ``HistGradientBoostingClassifier``/``Regressor``: the
baseline (log-odds of the class prior, or the mean), best-first growth bounded by
``max_leaf_nodes``/``max_depth``/``min_samples_leaf``, ``l2_regularization``, early stopping
on a (stratified) validation split judged by the loss, ``"auto"`` meaning "on above 10,000
samples", and one tree per class per iteration for more than two classes. Differences:
``n_estimators`` instead of ``max_iter``; row ``subsample`` per iteration (stochastic gradient
boosting, from scikit-learn's exact ``GradientBoostingClassifier``); ``train_score_`` always
recorded (for learning curves); ``feature_importances_`` as total split gain; no missing values
or categorical features.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

from scratch_ml._hist_tree import (
    HistTree,
    Workspace,
    grow_tree,
    make_workspace,
    n_useful_threads,
)
from scratch_ml._param_validation import Interval, RealNotInt, StrOptions
from scratch_ml.base import BaseEstimator, ClassifierMixin, RegressorMixin, check_random_state
from scratch_ml.binning import MAX_BINS_LIMIT, BinMapper
from scratch_ml.validation import (
    check_array,
    check_features,
    check_sample_weight,
    check_X_y,
    encode_labels,
    record_features,
)

#: Early stopping "auto" switches on above this many samples, as in scikit-learn.
AUTO_EARLY_STOPPING_MIN_SAMPLES = 10_000

#: Histograms are built by several threads only for training sets at least this large;
#: below, starting threads costs more than it saves.
PARALLEL_MIN_SAMPLES = 20_000


# --------------------------------------------------------------------------------------
# Losses. Raw predictions have shape (n_samples, n_trees_per_iteration).
# --------------------------------------------------------------------------------------


def expit(z: np.ndarray) -> np.ndarray:
    """The logistic sigmoid 1 / (1 + exp(-z)), written as (1 + tanh(z / 2)) / 2.

    The tanh form never overflows (exp(-z) does for z < -709) and needs one transcendental
    function instead of two.
    """
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row maximum keeps exp() from overflowing."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_loss_gradient_hessian(y: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and hessian of the binary log-loss with respect to the raw prediction.

    Per sample, with ``p = sigmoid(raw)`` and ``y`` in {0, 1}, the loss is
    ``log(1 + exp(raw)) - y * raw``. Returns arrays shaped like ``raw``: the first and second
    derivatives of that loss in ``raw``.
    """
    # BEGIN SOLUTION 1.6: gradient p - y and hessian p (1 - p) of the log-loss in the raw score
    p = expit(raw)
    return p - y, p * (1.0 - p)
    # END SOLUTION


def softmax_gradient_hessian(y: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and diagonal hessian of the multinomial log-loss, one column per class.

    ``y`` holds class indices (n_samples,), ``raw`` the scores (n_samples, n_classes); the
    loss is ``logsumexp(raw) - raw[y]``. Like scikit-learn, each class's tree only sees the
    diagonal of the hessian, ``p_k (1 - p_k)``.
    """
    # BEGIN SOLUTION 1.6: gradient p_k - [y == k] and diagonal hessian p_k (1 - p_k)
    p = softmax(raw)
    grad = p.copy()
    grad[np.arange(len(y)), y] -= 1.0
    return grad, p * (1.0 - p)
    # END SOLUTION


def squared_error_gradient_hessian(y: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, None]:
    """Gradient ``raw - y`` of the half squared error ``(raw - y)^2 / 2``; its hessian is 1.

    ``None`` stands for the constant hessian, so the tree grower can reuse the sample counts
    instead of summing ones.
    """
    return raw - y, None


def newton_leaf_values(
    sum_gradients: np.ndarray, sum_hessians: np.ndarray, l2_regularization: float
) -> np.ndarray:
    """The Newton step of each leaf from its gradient and hessian sums (before shrinkage).

    Minimising ``G w + (H + l2) w^2 / 2`` over the leaf's value ``w`` gives ``-G / (H + l2)``:
    the L2 term pulls small or uncertain leaves towards 0.
    """
    # BEGIN SOLUTION 1.6: the leaf value -G / (H + l2), for every leaf at once
    return -sum_gradients / (sum_hessians + l2_regularization)
    # END SOLUTION


def update_raw_predictions(
    raw: np.ndarray, leaf_index: np.ndarray, leaf_values: np.ndarray, learning_rate: float
) -> None:
    """Add the new tree's shrunken output to the raw predictions, in place.

    ``leaf_index[i]`` is the position in ``leaf_values`` of the leaf sample ``i`` fell in;
    each sample moves by ``learning_rate`` times its leaf's value.
    """
    # BEGIN SOLUTION 1.6: raw += learning_rate * (value of each sample's leaf)
    raw += learning_rate * leaf_values[leaf_index]
    # END SOLUTION


class _Loss:
    """A loss with its baseline, gradients/hessians and mean value (weighted)."""

    name = ""

    def baseline(self, y: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def gradient_hessian(self, y, raw):  # pragma: no cover - overridden
        raise NotImplementedError

    def per_sample(self, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mean(self, y: np.ndarray, raw: np.ndarray, sample_weight: np.ndarray | None) -> float:
        return float(np.average(self.per_sample(y, raw), weights=sample_weight))


class _BinomialLoss(_Loss):
    def baseline(self, y, sample_weight):
        eps = np.finfo(np.float64).eps
        p = np.clip(np.average(y, weights=sample_weight), eps, 1 - eps)
        return np.array([np.log(p / (1 - p))])

    def gradient_hessian(self, y, raw):
        return log_loss_gradient_hessian(y[:, None], raw)

    def per_sample(self, y, raw):
        return softplus(raw[:, 0]) - y * raw[:, 0]


class _MultinomialLoss(_Loss):
    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes

    def baseline(self, y, sample_weight):
        # The log of the (clipped) class priors, centred: softmax is unchanged by a shift and
        # centring keeps the scores symmetric (scikit-learn's symmetric multinomial logit).
        eps = np.finfo(np.float64).eps
        w = np.ones(len(y)) if sample_weight is None else sample_weight
        prior = np.bincount(y, weights=w, minlength=self.n_classes) / w.sum()
        log_prior = np.log(np.clip(prior, eps, 1 - eps))
        return log_prior - log_prior.mean()

    def gradient_hessian(self, y, raw):
        return softmax_gradient_hessian(y, raw)

    def per_sample(self, y, raw):
        top = raw.max(axis=1)
        lse = top + np.log(np.exp(raw - top[:, None]).sum(axis=1))
        return lse - raw[np.arange(len(y)), y]


class _SquaredErrorLoss(_Loss):
    def baseline(self, y, sample_weight):
        return np.array([np.average(y, weights=sample_weight)])

    def gradient_hessian(self, y, raw):
        return squared_error_gradient_hessian(y[:, None], raw)

    def per_sample(self, y, raw):
        return 0.5 * (raw[:, 0] - y) ** 2


# --------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------


class _BaseGradientBoosting(BaseEstimator):
    """Fitting, early stopping and prediction shared by the classifier and the regressor."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left"), None],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "l2_regularization": [Interval(Real, 0, None, closed="left")],
        "max_bins": [Interval(Integral, 2, MAX_BINS_LIMIT, closed="both")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
            None,
        ],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        loss: str,
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        max_depth: int | None = None,
        max_leaf_nodes: int | None = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        max_bins: int = 255,
        subsample: float = 1.0,
        early_stopping: str | bool = "auto",
        validation_fraction: float | int | None = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-7,
        random_state: None | int | np.random.Generator = None,
    ) -> None:
        self.loss = loss
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_bins = max_bins
        self.subsample = subsample
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state

    # ---- hooks for the subclasses ------------------------------------------------------

    def _validate_y(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _make_loss(self) -> _Loss:
        raise NotImplementedError

    def _stratify_labels(self, y: np.ndarray) -> np.ndarray | None:
        return None

    # ---- fit -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseGradientBoosting:
        """Fit ``n_estimators`` boosting iterations (fewer if early stopping triggers).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Multiplies each sample's gradient and hessian (and its share of the baseline and
            of the reported losses). Bin thresholds and ``min_samples_leaf`` ignore weights.

        Returns
        -------
        self
        """
        self._validate_params()
        X_arr, y_arr = self._validate_y(X, y)
        n_samples = X_arr.shape[0]
        sw = None if sample_weight is None else check_sample_weight(sample_weight, n_samples)
        if sw is not None and not sw.any():
            raise ValueError("Sample weights must contain at least one non-zero number.")
        record_features(self, X, X_arr)
        rng = check_random_state(self.random_state)
        loss = self._make_loss()
        self._loss = loss

        if self.early_stopping == "auto":
            self.do_early_stopping_ = n_samples > AUTO_EARLY_STOPPING_MIN_SAMPLES
        else:
            self.do_early_stopping_ = bool(self.early_stopping)
        train_rows = val_rows = None
        if self.do_early_stopping_ and self.validation_fraction is not None:
            train_rows, val_rows = self._validation_split(y_arr, rng)

        # Thresholds come from the training rows only; all rows are binned once, uint8.
        self._bin_mapper = BinMapper(max_bins=self.max_bins, random_state=rng)
        self._bin_mapper._fit_rows(X_arr, train_rows)
        X_binned = self._bin_mapper._transform(X_arr)
        if train_rows is not None:
            X_val_binned = np.asfortranarray(X_binned[val_rows])
            X_binned = np.asfortranarray(X_binned[train_rows])
            y_train, y_val = y_arr[train_rows], y_arr[val_rows]
            sw_train = None if sw is None else sw[train_rows]
            sw_val = None if sw is None else sw[val_rows]
        else:
            X_val_binned = y_val = sw_val = None
            y_train, sw_train = y_arr, sw

        self._fit_boosting(loss, X_binned, y_train, sw_train, X_val_binned, y_val, sw_val, rng)
        return self

    def _validation_split(
        self, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sorted train and validation row indices, stratified by class for classifiers."""
        n = len(y)
        vf = self.validation_fraction
        n_val = int(vf) if isinstance(vf, Integral) else math.ceil(float(vf) * n)
        if not 1 <= n_val < n:
            raise ValueError(
                f"validation_fraction={vf!r} leaves {n - n_val} training and {n_val} "
                f"validation samples out of {n}; both need at least one."
            )
        perm = rng.permutation(n)
        labels = self._stratify_labels(y)
        if labels is None:
            val = perm[:n_val]
        else:
            # Shuffle, then group by class (a stable sort keeps the random order within each
            # class) and take each class's share of the validation set from its group.
            order = perm[np.argsort(labels[perm], kind="stable")]
            counts = np.bincount(labels)
            share = np.minimum(np.round(counts * n_val / n).astype(np.intp), counts - 1)
            share = np.maximum(share, 0)
            starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
            position = np.arange(n) - np.repeat(starts, counts)
            val = order[position < np.repeat(share, counts)]
            if len(val) == 0:  # tiny data: fall back to an unstratified pick
                val = perm[:n_val]
        is_val = np.zeros(n, dtype=bool)
        is_val[val] = True
        return np.flatnonzero(~is_val), np.flatnonzero(is_val)

    def _fit_boosting(
        self,
        loss: _Loss,
        X_binned: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        sw_val: np.ndarray | None,
        rng: np.random.Generator,
    ) -> None:
        n_samples, n_features = X_binned.shape
        n_threads = n_useful_threads() if n_samples >= PARALLEL_MIN_SAMPLES else 1
        with contextlib.ExitStack() as stack:
            # Histogram threads live only for this fit: no global pool to leak or to break
            # in a forked child process.
            pool = stack.enter_context(ThreadPoolExecutor(n_threads)) if n_threads > 1 else None
            workspace = make_workspace(
                X_binned, self._bin_mapper.n_bins_per_feature_, pool, n_threads
            )
            self._boost(loss, X_binned, y, sw, X_val, y_val, sw_val, rng, workspace)

    def _boost(
        self,
        loss: _Loss,
        X_binned: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        X_val: np.ndarray | None,
        y_val: np.ndarray | None,
        sw_val: np.ndarray | None,
        rng: np.random.Generator,
        workspace: Workspace,
    ) -> None:
        n_samples, n_features = X_binned.shape
        self._baseline = loss.baseline(y, sw)
        n_trees = len(self._baseline)
        raw = np.tile(self._baseline, (n_samples, 1))
        raw_val = None if X_val is None else np.tile(self._baseline, (X_val.shape[0], 1))
        use_val = raw_val is not None

        self._predictors: list[list[HistTree]] = []
        gains = np.zeros(n_features)
        train_score = [-loss.mean(y, raw, sw)]
        val_score = [-loss.mean(y_val, raw_val, sw_val)] if use_val else []
        n_inbag = max(1, int(self.subsample * n_samples))
        thresholds = self._bin_mapper.bin_thresholds_
        n_bins = self._bin_mapper.n_bins_per_feature_
        # The root's count histogram is the same every iteration unless rows are subsampled.
        root_counts = workspace.root_counts

        for _ in range(self.n_estimators):
            grad, hess = loss.gradient_hessian(y, raw)
            if sw is not None:
                grad = grad * sw[:, None]
                hess = (
                    np.broadcast_to(sw[:, None], grad.shape) if hess is None else hess * sw[:, None]
                )
            rows = None
            if n_inbag < n_samples:
                rows = np.sort(rng.choice(n_samples, size=n_inbag, replace=False))
            trees = []
            for k in range(n_trees):
                grown = grow_tree(
                    X_binned,
                    rows,
                    np.ascontiguousarray(grad[:, k]),
                    None if hess is None else np.ascontiguousarray(hess[:, k]),
                    n_bins_per_feature=n_bins,
                    bin_thresholds=thresholds,
                    max_leaf_nodes=self.max_leaf_nodes,
                    max_depth=self.max_depth,
                    min_samples_leaf=self.min_samples_leaf,
                    l2_regularization=float(self.l2_regularization),
                    root_counts=root_counts if rows is None else None,
                    workspace=workspace,
                )
                tree = grown.tree
                values = newton_leaf_values(
                    grown.leaf_sum_grad, grown.leaf_sum_hess, float(self.l2_regularization)
                )
                tree.value = np.zeros(len(tree.feature))
                tree.value[grown.leaf_ids] = self.learning_rate * values
                # Which leaf each training row fell in: in-bag rows from the grower's
                # partition, out-of-bag rows (row subsampling) by running them down the tree.
                leaf_index = np.empty(n_samples, dtype=np.intp)
                for position, leaf_rows in enumerate(grown.leaf_rows):
                    leaf_index[leaf_rows] = position
                if rows is not None:
                    out_of_bag = np.ones(n_samples, dtype=bool)
                    out_of_bag[rows] = False
                    position_of_node = np.zeros(len(tree.feature), dtype=np.intp)
                    position_of_node[grown.leaf_ids] = np.arange(len(grown.leaf_ids))
                    leaf_index[out_of_bag] = position_of_node[
                        tree.apply(X_binned[out_of_bag], binned=True)
                    ]
                update_raw_predictions(raw[:, k], leaf_index, values, float(self.learning_rate))
                if use_val:
                    raw_val[:, k] += tree.predict(X_val, binned=True)
                internal = ~tree.is_leaf
                gains += np.bincount(
                    tree.feature[internal], weights=tree.gain[internal], minlength=n_features
                )
                trees.append(tree)
            self._predictors.append(trees)
            train_score.append(-loss.mean(y, raw, sw))
            if use_val:
                val_score.append(-loss.mean(y_val, raw_val, sw_val))
            if self.do_early_stopping_ and self._should_stop(val_score if use_val else train_score):
                break

        self.n_iter_ = len(self._predictors)
        self.n_trees_per_iteration_ = n_trees
        self.train_score_ = np.asarray(train_score)
        self.validation_score_ = np.asarray(val_score)
        self._feature_gains = gains

    def _should_stop(self, scores: list[float]) -> bool:
        """Stop when none of the last ``n_iter_no_change`` scores beats the one before them
        by more than ``tol`` (scores are negative losses: higher is better)."""
        reference = self.n_iter_no_change + 1
        if len(scores) < reference:
            return False
        best_allowed = scores[-reference] + self.tol
        return not any(score > best_allowed for score in scores[-reference + 1 :])

    # ---- prediction ------------------------------------------------------------------

    def _validate_X_predict(self, X: Any) -> np.ndarray:
        self._check_is_fitted("_predictors")
        X_arr = check_array(X, estimator=self)
        check_features(self, X, X_arr)
        return X_arr

    def _staged_raw_predict(self, X: Any) -> Iterator[np.ndarray]:
        X_arr = self._validate_X_predict(X)
        raw = np.tile(self._baseline, (X_arr.shape[0], 1))
        for trees in self._predictors:
            for k, tree in enumerate(trees):
                raw[:, k] += tree.predict(X_arr)
            yield raw.copy()

    def _raw_predict(self, X: Any) -> np.ndarray:
        X_arr = self._validate_X_predict(X)
        raw = np.tile(self._baseline, (X_arr.shape[0], 1))
        for trees in self._predictors:
            for k, tree in enumerate(trees):
                raw[:, k] += tree.predict(X_arr)
        return raw

    @property
    def feature_importances_(self) -> np.ndarray:
        """Total split gain of each feature over all trees, normalised to sum to 1.

        All zeros when no tree made a split (e.g. a constant target).
        """
        self._check_is_fitted("_feature_gains")
        total = self._feature_gains.sum()
        return self._feature_gains / total if total > 0 else np.zeros_like(self._feature_gains)


class GradientBoostingClassifier(ClassifierMixin, _BaseGradientBoosting):
    """Histogram gradient-boosting classifier on the (multinomial) log-loss.

    Two classes: one tree per iteration on the log-odds. ``K > 2`` classes: ``K`` trees per
    iteration, one per class score, combined with a softmax.

    Parameters
    ----------
    loss : {"log_loss"}, default="log_loss"
    learning_rate : float, default=0.1
        Shrinkage of each tree's contribution.
    n_estimators : int, default=100
        Boosting iterations (scikit-learn's ``max_iter``).
    max_depth : int or None, default=None
        Edges from the root to the deepest leaf; None for no limit.
    max_leaf_nodes : int or None, default=31
        Leaves per tree; nodes are split best-first until this many exist.
    min_samples_leaf : int, default=20
        Fewest training samples a leaf may hold.
    l2_regularization : float, default=0.0
        Added to each leaf's hessian sum: shrinks leaves with little curvature towards 0.
    max_bins : int, default=255
        Bins per feature (2 to 255).
    subsample : float, default=1.0
        Fraction of the training rows, drawn without replacement each iteration, that the
        iteration's trees are grown on; below 1.0 this is stochastic gradient boosting.
    early_stopping : "auto" or bool, default="auto"
        "auto" enables it when there are more than 10,000 samples.
    validation_fraction : float, int or None, default=0.1
        Held-out share (or count) of the samples whose loss decides early stopping,
        stratified by class; None judges by the training loss.
    n_iter_no_change : int, default=10
        Stop when none of the last ``n_iter_no_change`` scores improves on the score before
        them by more than ``tol``.
    tol : float, default=1e-7
    random_state : None, int or numpy Generator, default=None
        Controls the bin subsample, the validation split and row subsampling.

    Notes
    -----
    On training sets of at least 20,000 rows the histograms of large nodes are built by up
    to 4 threads (no more than the CPUs available), each summing whole features, so the
    fitted model is the same with or without threads.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_trees_per_iteration_ : int
        1 for two classes, else the number of classes.
    n_iter_ : int
        Iterations actually fitted (fewer than ``n_estimators`` after early stopping).
    train_score_ : ndarray of shape (n_iter_ + 1,)
        Negative mean log-loss on the training rows, before the first tree (index 0) and
        after each iteration.
    validation_score_ : ndarray of shape (n_iter_ + 1,) or (0,)
        The same on the validation rows when early stopping used a validation set.
    do_early_stopping_ : bool
    feature_importances_ : ndarray of shape (n_features,)
    n_features_in_ : int
    feature_names_in_ : ndarray, only for DataFrames with string column names.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseGradientBoosting._parameter_constraints,
        "loss": [StrOptions({"log_loss"})],
    }

    def __init__(
        self,
        loss: str = "log_loss",
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        max_depth: int | None = None,
        max_leaf_nodes: int | None = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        max_bins: int = 255,
        subsample: float = 1.0,
        early_stopping: str | bool = "auto",
        validation_fraction: float | int | None = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-7,
        random_state: None | int | np.random.Generator = None,
    ) -> None:
        super().__init__(
            loss=loss,
            learning_rate=learning_rate,
            n_estimators=n_estimators,
            max_depth=max_depth,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            l2_regularization=l2_regularization,
            max_bins=max_bins,
            subsample=subsample,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            random_state=random_state,
        )

    def _validate_y(self, X, y):
        X_arr, y_arr = check_X_y(X, y, estimator=self)
        self.classes_, encoded = encode_labels(y_arr, estimator=self)
        return X_arr, encoded

    def _make_loss(self) -> _Loss:
        n_classes = len(self.classes_)
        return _BinomialLoss() if n_classes == 2 else _MultinomialLoss(n_classes)

    def _stratify_labels(self, y: np.ndarray) -> np.ndarray:
        return y

    def _raw_to_proba(self, raw: np.ndarray) -> np.ndarray:
        if raw.shape[1] == 1:
            p = expit(raw[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(raw)

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw scores: log-odds of ``classes_[1]`` (shape (n,)) or per-class scores (n, K)."""
        raw = self._raw_predict(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order."""
        return self._raw_to_proba(self._raw_predict(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        proba = self.predict_proba(X)  # first: raises NotFittedError before classes_ exists
        return self.classes_[np.argmax(proba, axis=1)]

    def staged_decision_function(self, X: Any) -> Iterator[np.ndarray]:
        for raw in self._staged_raw_predict(X):
            yield raw[:, 0] if raw.shape[1] == 1 else raw

    def staged_predict_proba(self, X: Any) -> Iterator[np.ndarray]:
        """Probabilities after each iteration: for learning curves without refitting."""
        for raw in self._staged_raw_predict(X):
            yield self._raw_to_proba(raw)

    def staged_predict(self, X: Any) -> Iterator[np.ndarray]:
        for proba in self.staged_predict_proba(X):
            yield self.classes_[np.argmax(proba, axis=1)]


class GradientBoostingRegressor(RegressorMixin, _BaseGradientBoosting):
    """Histogram gradient-boosting regressor on the squared error.

    Parameters and attributes are those of :class:`GradientBoostingClassifier` except
    ``loss`` ({"squared_error"}) and no ``classes_``; ``train_score_`` and
    ``validation_score_`` hold the negative half mean squared error.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseGradientBoosting._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        learning_rate: float = 0.1,
        n_estimators: int = 100,
        max_depth: int | None = None,
        max_leaf_nodes: int | None = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        max_bins: int = 255,
        subsample: float = 1.0,
        early_stopping: str | bool = "auto",
        validation_fraction: float | int | None = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-7,
        random_state: None | int | np.random.Generator = None,
    ) -> None:
        super().__init__(
            loss=loss,
            learning_rate=learning_rate,
            n_estimators=n_estimators,
            max_depth=max_depth,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            l2_regularization=l2_regularization,
            max_bins=max_bins,
            subsample=subsample,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            random_state=random_state,
        )

    def _validate_y(self, X, y):
        X_arr, y_arr = check_X_y(X, y, estimator=self, y_numeric=True)
        return X_arr, y_arr.astype(np.float64)

    def _make_loss(self) -> _Loss:
        return _SquaredErrorLoss()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,)."""
        return self._raw_predict(X)[:, 0]

    def staged_predict(self, X: Any) -> Iterator[np.ndarray]:
        """Predictions after each iteration."""
        for raw in self._staged_raw_predict(X):
            yield raw[:, 0]
