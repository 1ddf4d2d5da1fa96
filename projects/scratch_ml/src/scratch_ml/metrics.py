"""Classification and regression metrics, in numpy, equal to scikit-learn's on the same input.

Every function here is checked against ``sklearn.metrics`` on seeded data (tests/test_metrics.py)
so the estimators' ``score`` methods and the benchmarks can rely on them without importing
scikit-learn at run time. Conventions follow scikit-learn's where a value is undefined (a single
class for ROC AUC, fewer than two samples for R^2): an ``UndefinedMetricWarning`` and ``nan``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = [
    "UndefinedMetricWarning",
    "accuracy_score",
    "log_loss",
    "mean_squared_error",
    "r2_score",
    "roc_auc_score",
]


class UndefinedMetricWarning(UserWarning):
    """A metric is not defined for this input (scikit-learn's warning of the same name)."""


def _check_lengths(*arrays: np.ndarray | None) -> None:
    lengths = [len(a) for a in arrays if a is not None]
    if len(set(lengths)) > 1:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {lengths}")


def _weights(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D, got shape {w.shape}.")
    _check_lengths(np.empty(n), w)
    return w


def _1d(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} should be a 1d array, got an array of shape {arr.shape} instead.")
    return arr


def accuracy_score(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """Fraction (or weighted fraction) of predictions equal to the true label."""
    y_true, y_pred = _1d(y_true, "y_true"), _1d(y_pred, "y_pred")
    _check_lengths(y_true, y_pred)
    w = _weights(sample_weight, len(y_true))
    return float(np.average(y_true == y_pred, weights=w))


def log_loss(
    y_true: Any,
    proba: Any,
    *,
    labels: Any = None,
    sample_weight: Any = None,
    normalize: bool = True,
) -> float:
    """Cross-entropy of predicted probabilities, scikit-learn's ``log_loss``.

    ``proba`` is 1-D (probability of the larger of two labels) or n x k with columns in the
    sorted order of ``labels`` (default: the labels found in ``y_true``). Probabilities are
    clipped to ``[eps, 1 - eps]`` with ``eps`` the machine epsilon of their dtype, as
    scikit-learn does since 1.5, so a confident wrong prediction costs about 36, not infinity.
    """
    y_true = _1d(y_true, "y_true")
    proba = np.asarray(proba)
    if proba.dtype.kind not in "f":
        proba = proba.astype(np.float64)
    if proba.ndim not in (1, 2):
        raise ValueError(f"proba must be 1-D or 2-D, got shape {proba.shape}.")
    _check_lengths(y_true, proba)
    if len(y_true) == 0:
        raise ValueError("Found empty input: log_loss needs at least one sample.")
    if proba.max() > 1:
        raise ValueError(f"y_prob contains values greater than 1: {proba.max()}")
    if proba.min() < 0:
        raise ValueError(f"y_prob contains values lower than 0: {proba.min()}")
    w = _weights(sample_weight, len(y_true))

    classes = np.unique(y_true if labels is None else np.asarray(labels))
    if len(classes) == 1:
        if labels is not None:
            raise ValueError(
                "The labels array needs to contain at least two labels for log_loss, "
                f"got {classes}."
            )
        raise ValueError(
            f"y_true contains only one label ({classes[0]}). Please provide the list of all "
            "expected class labels explicitly through the labels argument."
        )
    if proba.ndim == 1:
        proba = proba[:, None]
    if proba.shape[1] == 1:
        proba = np.hstack([1 - proba, proba])
    eps = np.finfo(proba.dtype).eps
    if not np.allclose(proba.sum(axis=1), 1, rtol=np.sqrt(eps), atol=0):
        warnings.warn(
            "The y_prob values do not sum to one. Make sure to pass probabilities.",
            UserWarning,
            stacklevel=2,
        )
    if proba.shape[1] != len(classes):
        raise ValueError(
            f"y_true and y_prob contain different number of classes: {len(classes)} vs "
            f"{proba.shape[1]}. Please provide the true labels explicitly through the "
            f"labels argument. Classes found in y_true: {classes}"
        )
    index = np.searchsorted(classes, y_true)
    index = np.clip(index, 0, len(classes) - 1)
    if not np.array_equal(classes[index], y_true):
        raise ValueError(f"y_true contains values not in labels: {classes}")
    p_true = np.clip(proba, eps, 1 - eps)[np.arange(len(y_true)), index]
    losses = -np.log(p_true)
    if not normalize:
        return float(np.sum(losses if w is None else losses * w))
    return float(np.average(losses, weights=w))


def roc_auc_score(y_true: Any, y_score: Any, sample_weight: Any = None) -> float:
    """Area under the ROC curve for a binary problem (the larger label is positive).

    Computed as the (weighted) probability that a positive outranks a negative, ties counting
    one half: a Mann-Whitney statistic over groups of tied scores, which is exactly the
    trapezoidal area under scikit-learn's ROC curve. One sort, no loop over thresholds.
    """
    y_true, y_score = _1d(y_true, "y_true"), _1d(y_score, "y_score").astype(np.float64)
    _check_lengths(y_true, y_score)
    if len(y_true) == 0:
        raise ValueError("Found empty input: roc_auc_score needs at least one sample.")
    if not np.isfinite(y_score).all():
        raise ValueError("Input y_score contains NaN or infinity.")
    w = _weights(sample_weight, len(y_true))
    w = np.ones(len(y_true)) if w is None else w
    classes = np.unique(y_true)
    if len(classes) > 2:
        raise ValueError(
            f"roc_auc_score here supports binary targets only; y_true has {len(classes)} classes."
        )
    if len(classes) < 2:
        warnings.warn(
            "Only one class is present in y_true. ROC AUC score is not defined in that case.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return float("nan")
    positive = y_true == classes[1]
    # Group equal scores: inverse[i] is the group of sample i, groups in increasing score.
    _, inverse = np.unique(y_score, return_inverse=True)
    w_pos = np.bincount(inverse, weights=w * positive)
    w_neg = np.bincount(inverse, weights=w * ~positive)
    neg_below = np.cumsum(w_neg) - w_neg  # negative weight strictly below each group
    total_pos, total_neg = w_pos.sum(), w_neg.sum()
    if total_pos == 0 or total_neg == 0:
        warnings.warn(
            "Only one class has positive weight; ROC AUC score is not defined in that case.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return float("nan")
    return float(np.sum(w_pos * (neg_below + 0.5 * w_neg)) / (total_pos * total_neg))


def _regression_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.ndim != 2 or y_pred.ndim != 2:
        raise ValueError("y_true and y_pred must be 1-D or 2-D.")
    _check_lengths(y_true, y_pred)
    if y_true.shape[1] != y_pred.shape[1]:
        raise ValueError(
            f"y_true and y_pred have different number of output ({y_true.shape[1]}!="
            f"{y_pred.shape[1]})"
        )
    if len(y_true) == 0:
        raise ValueError("Found empty input: a regression metric needs at least one sample.")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("Input contains NaN or infinity.")
    return y_true, y_pred


def mean_squared_error(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """(Weighted) mean of squared errors, averaged uniformly over outputs."""
    y_true, y_pred = _regression_pair(y_true, y_pred)
    w = _weights(sample_weight, len(y_true))
    return float(np.mean(np.average((y_true - y_pred) ** 2, axis=0, weights=w)))


def r2_score(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """Coefficient of determination, averaged uniformly over outputs.

    scikit-learn's ``force_finite`` conventions: a constant target scores 1.0 when predicted
    perfectly and 0.0 otherwise, instead of the ``nan``/``-inf`` of the bare formula.
    """
    y_true, y_pred = _regression_pair(y_true, y_pred)
    if len(y_true) < 2:
        warnings.warn(
            "R^2 score is not well-defined with less than two samples.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return float("nan")
    w = _weights(sample_weight, len(y_true))
    w2 = np.ones((len(y_true), 1)) if w is None else w[:, None]
    numerator = np.sum(w2 * (y_true - y_pred) ** 2, axis=0)
    mean = np.average(y_true, axis=0, weights=w2[:, 0])
    denominator = np.sum(w2 * (y_true - mean) ** 2, axis=0)
    scores = np.ones(y_true.shape[1])
    valid = (numerator != 0) & (denominator != 0)
    scores[valid] = 1 - numerator[valid] / denominator[valid]
    scores[(numerator != 0) & (denominator == 0)] = 0.0
    return float(np.mean(scores))
