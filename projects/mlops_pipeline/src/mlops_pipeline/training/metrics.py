"""Classification metrics of P(delayed) scores, on one set of rows or on many resamples at once.

`resampled_metric` scores a (B, n) matrix of row counts (how often each holdout row was drawn
in each of B bootstrap resamples) in a few vectorised passes instead of B calls to
scikit-learn: scoring a resample is the same as scoring every row with its count as weight.
The bootstrap in `gates.paired_bootstrap_diff` is then ~100x faster than a Python loop, which
is what lets the gate use 1,000 resamples of a 100,000-row holdout inside a pipeline run.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False}
"""The metrics the promotion gate can compare models on, and which direction is better."""
EPS = float(np.finfo(np.float64).eps)  # what scikit-learn's log_loss clips to


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss, Brier score and PR AUC (average precision) of scores `p`."""
    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "base_rate": float(y.mean()),
        "rows": float(len(y)),
    }


def resampled_metric(metric: str, y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`metric` of scores `p` under each row of `weights` (shape (B, n), row counts or weights).

    ROC AUC counts ties as one half, like scikit-learn; a resample with a single class has no
    AUC and gives NaN.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if metric == "log_loss":
        q = np.clip(p, EPS, 1 - EPS)
        loss = -(y * np.log(q) + (1 - y) * np.log1p(-q))
        return (w @ loss) / w.sum(axis=1)
    if metric == "roc_auc":
        order = np.argsort(p, kind="stable")
        scores, labels, w = p[order], y[order], w[:, order]
        # One column per distinct score: positives and negatives of each tie group.
        starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
        pos = np.add.reduceat(w * labels, starts, axis=1)
        neg = np.add.reduceat(w * (1 - labels), starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg  # negatives with a strictly lower score
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pairs > 0, wins / pairs, np.nan)
    raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(GREATER_IS_BETTER)}")


def metric_value(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    """`metric` on all rows once (every weight 1)."""
    return float(resampled_metric(metric, y, p, np.ones((1, len(y))))[0])
