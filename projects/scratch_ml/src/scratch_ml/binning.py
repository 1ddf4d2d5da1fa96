"""Quantile binning: turn each float feature into at most 255 small integer codes.

Why bin at all? A histogram gradient-boosting tree only ever asks "which side of a threshold
is this sample on?". If every feature takes at most 255 distinct codes, the best split of a
node is found from a 255-entry histogram of gradient sums instead of a sort of the node's
samples, and the whole training matrix fits in one byte per value (``uint8``), an eighth of
the float64 input. Thresholds sit at quantiles, so each bin holds about the same number of
samples and the splits the tree can choose from follow the data's distribution.

This is scikit-learn's ``_BinMapper`` (``sklearn.ensemble._hist_gradient_boosting``) minus
the missing-value bin and categorical features: NaN is rejected by validation instead.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from scratch_ml._param_validation import Interval
from scratch_ml.base import BaseEstimator, check_random_state
from scratch_ml.validation import check_array, check_features, record_features

#: A uint8 code can name 256 bins; like scikit-learn we allow at most 255 for values.
MAX_BINS_LIMIT = 255


def find_bin_thresholds(values: np.ndarray, max_bins: int) -> np.ndarray:
    """Increasing thresholds that cut ``values`` into at most ``max_bins`` bins.

    A value ``x`` belongs to bin ``i`` when ``thresholds[i - 1] < x <= thresholds[i]``, so
    there is one bin more than thresholds.

    - With at most ``max_bins`` distinct values every distinct value gets its own bin: the
      thresholds are the midpoints between consecutive distinct values (a midpoint, not the
      value itself, so an unseen value between two training values goes to the nearer one).
    - Otherwise the thresholds are the ``max_bins - 1`` inner quantiles at
      ``100 * k / max_bins`` percent, ``k = 1 .. max_bins - 1``, computed with the
      ``averaged_inverted_cdf`` method: the midpoint of the two order statistics that straddle
      the quantile when it falls exactly between them. Heavily repeated values make some
      quantiles equal; duplicates are dropped, so there may be fewer thresholds.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        One feature's finite values (a subsample is fine: thresholds are estimates).
    max_bins : int
        The most bins allowed, 2 to 255.

    Returns
    -------
    ndarray of shape (n_thresholds,), float64, strictly increasing, ``n_thresholds < max_bins``.
    """
    # BEGIN SOLUTION 1.5: midpoints of distinct values, or quantiles when more than max_bins
    values = np.asarray(values, dtype=np.float64)
    distinct = np.unique(values)
    if distinct.size <= max_bins:
        return 0.5 * (distinct[:-1] + distinct[1:])
    percentiles = np.linspace(0.0, 100.0, max_bins + 1)[1:-1]
    quantiles = np.percentile(values, percentiles, method="averaged_inverted_cdf")
    return np.unique(quantiles)
    # END SOLUTION


def map_to_bins(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Bin codes of ``values``: the number of thresholds strictly below each value.

    ``x <= thresholds[i]`` and ``x > thresholds[i - 1]`` give code ``i``, the convention of
    :func:`find_bin_thresholds`. One binary search per value, vectorised: no Python loop.

    Returns
    -------
    ndarray of shape values.shape, dtype uint8.
    """
    # BEGIN SOLUTION 1.5: map each value to its bin with one vectorised binary search
    return np.searchsorted(thresholds, values, side="left").astype(np.uint8)
    # END SOLUTION


class BinMapper(BaseEstimator):
    """Map each feature of a float matrix to ``uint8`` quantile-bin codes.

    Parameters
    ----------
    max_bins : int, default=255
        The most bins per feature (2 to 255). Fewer when a feature has fewer distinct values
        or many ties.
    subsample : int or None, default=200_000
        Thresholds are computed from at most this many randomly chosen rows: quantiles of
        200,000 samples are already accurate to a fraction of a bin, and sorting all rows of
        a very large matrix would dominate the fit. ``None`` uses every row.
    random_state : None, int or numpy Generator, default=None
        Picks the subsample.

    Attributes
    ----------
    bin_thresholds_ : list of ndarray
        Per feature, the increasing thresholds; value ``x`` goes to bin ``i`` when
        ``thresholds[i - 1] < x <= thresholds[i]``.
    n_bins_per_feature_ : ndarray of shape (n_features,), dtype intp
        ``len(bin_thresholds_[j]) + 1``, the bins feature ``j`` actually uses.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X was a DataFrame with string column names.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "max_bins": [Interval(Integral, 2, MAX_BINS_LIMIT, closed="both")],
        "subsample": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        max_bins: int = 255,
        subsample: int | None = 200_000,
        random_state: None | int | np.random.Generator = None,
    ) -> None:
        self.max_bins = max_bins
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> BinMapper:
        """Compute each feature's thresholds from (a subsample of) X. ``y`` is ignored."""
        self._validate_params()
        X_arr = check_array(X, estimator=self)
        record_features(self, X, X_arr)
        self._fit_rows(X_arr, None)
        return self

    def _fit_rows(self, X: np.ndarray, rows: np.ndarray | None) -> BinMapper:
        """Fit on ``X[rows]`` (all rows when None) one column at a time.

        Gradient boosting calls this with its training rows so that the validation rows of
        early stopping never influence the thresholds, without copying the training part of
        X as a whole: only one column of floats exists at a time. The caller has validated the
        parameters (``fit`` here, or the booster's own ``fit``).
        """
        n_rows = X.shape[0] if rows is None else len(rows)
        if self.subsample is not None and n_rows > self.subsample:
            rng = check_random_state(self.random_state)
            picked = np.sort(rng.choice(n_rows, size=int(self.subsample), replace=False))
            rows = picked if rows is None else np.asarray(rows)[picked]
        thresholds = []
        for j in range(X.shape[1]):
            column = X[:, j] if rows is None else X[rows, j]
            thresholds.append(find_bin_thresholds(column, int(self.max_bins)))
        self.bin_thresholds_ = thresholds
        self.n_bins_per_feature_ = np.array([len(t) + 1 for t in thresholds], dtype=np.intp)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Bin codes of X, shape (n_samples, n_features), dtype uint8, Fortran order.

        Fortran (column-major) order because the histogram builder reads one feature at a
        time for a subset of rows: a contiguous column makes that gather cache friendly.
        """
        self._check_is_fitted("bin_thresholds_")
        X_arr = check_array(X, estimator=self)
        check_features(self, X, X_arr)
        return self._transform(X_arr)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        binned = np.empty(X.shape, dtype=np.uint8, order="F")
        for j, thresholds in enumerate(self.bin_thresholds_):
            binned[:, j] = map_to_bins(X[:, j], thresholds)
        return binned

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    def __sklearn_tags__(self):  # pragma: no cover - exercised by scikit-learn's checks
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags()
        return tags
