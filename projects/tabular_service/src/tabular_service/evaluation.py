"""Metrics for an imbalanced credit problem, and the cost-optimal decision threshold.

With 5 % defaults, accuracy is useless (always predicting "repaid" scores 95 %). What matters:
- ranking: ROC AUC (any threshold) and PR AUC (how clean the top of the ranking is);
- probabilities: log-loss and the Brier score, and a calibration curve, because the threshold
  below and any pricing built on the score assume the probabilities mean what they say;
- decisions: the expected cost at the chosen threshold, in the business's own units.

The costs are stated, not tuned: approving a loan that defaults loses most of the principal,
rejecting a good loan loses the interest margin. `COSTS` is the assumption every report
shows next to its threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Costs:
    """Relative costs of the two mistakes (only their ratio moves the threshold)."""

    missed_default: float = 5.0  # false negative: approve, then the loan defaults
    rejected_good: float = 1.0  # false positive: reject an applicant who would have repaid

    def bayes_threshold(self) -> float:
        """The threshold that is optimal when the probabilities are perfectly calibrated."""
        return self.rejected_good / (self.rejected_good + self.missed_default)


COSTS = Costs()


def expected_cost(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs = COSTS) -> float:
    """Mean cost per application when rejecting every p >= threshold."""
    reject = np.asarray(p) >= threshold
    y = np.asarray(y)
    missed = np.sum(~reject & (y == 1)) * costs.missed_default
    rejected = np.sum(reject & (y == 0)) * costs.rejected_good
    return float((missed + rejected) / len(y))


def cost_optimal_threshold(y: np.ndarray, p: np.ndarray, costs: Costs = COSTS) -> float:
    """The threshold (one of the scores themselves) with the lowest expected cost on (y, p).

    Every distinct score is a candidate; rejecting everything at or above it. Sorting once and
    taking cumulative sums scores all candidates in O(n log n) rather than O(n^2). Ties on cost
    go to the highest threshold (approve more when it costs nothing). Choose it on validation
    data, never on the test set, or the test cost is optimistic.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError("y and p must be 1-D arrays of the same, non-zero length")
    # BEGIN SOLUTION 1.8: score every distinct threshold with cumulative sums
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    # Rejecting the top k rows: defaults caught = cumsum(y), good loans rejected = k - caught.
    caught = np.concatenate([[0.0], np.cumsum(y_sorted)])
    rejected = np.arange(len(y) + 1) - caught
    cost = (y.sum() - caught) * costs.missed_default + rejected * costs.rejected_good
    # A threshold can only sit where the score changes: after the last of a run of ties.
    valid = np.concatenate([[True], p_sorted[1:] != p_sorted[:-1], [True]])
    valid[0] = False  # k = 0 (reject nothing) has no threshold among the scores
    candidates = np.flatnonzero(valid[1:]) + 1  # k values ending a run of ties
    best = candidates[np.argmin(cost[candidates])]
    threshold = p_sorted[best - 1]
    if cost[0] < cost[best]:  # approving everyone is cheaper still
        threshold = np.nextafter(p.max(), np.inf)
    return float(threshold)
    # END SOLUTION


@dataclass(frozen=True)
class Report:
    """Everything logged per model: ranking, probability quality and the decision's cost."""

    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    threshold: float
    expected_cost: float
    approve_rate: float
    default_rate_approved: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in asdict(self).items()}


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs = COSTS) -> Report:
    """All metrics of one model's probabilities `p` on labels `y` at a fixed threshold."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1 - 1e-15)
    approved = p < threshold
    return Report(
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        brier=float(brier_score_loss(y, p)),
        threshold=float(threshold),
        expected_cost=expected_cost(y, p, threshold, costs),
        approve_rate=float(approved.mean()),
        default_rate_approved=float(y[approved].mean()) if approved.any() else 0.0,
    )


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Mean predicted vs observed default rate in quantile bins of the score.

    Quantile bins (not uniform ones) because with 5 % defaults most scores sit below 0.1 and
    uniform bins would leave the upper ones nearly empty.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    predicted, observed, counts = [], [], []
    for b in range(len(edges) - 1):
        mask = which == b
        if mask.any():
            predicted.append(float(p[mask].mean()))
            observed.append(float(y[mask].mean()))
            counts.append(int(mask.sum()))
    return {"predicted": predicted, "observed": observed, "count": counts}
