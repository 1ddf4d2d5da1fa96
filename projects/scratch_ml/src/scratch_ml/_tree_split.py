"""The best split of one tree node, for every threshold of every candidate feature at once.

This is where a CART tree spends its time. The naive search tries every threshold of every
feature and recomputes both children's impurity from scratch: O(n^2 d) per node. Sorting a
feature once turns "the samples left of the threshold" into "a prefix of the sorted order", so
cumulative sums give the statistics of *every* left child in one pass (the right child is the
total minus the left), and the impurity of all allowed candidate cuts is one array expression:
O(n log n d) per node, with no Python loop over thresholds.

Conventions, shared with scikit-learn:

* a split is ``x[feature] <= threshold``; thresholds sit halfway between consecutive distinct
  sorted values, so a cut never separates two equal values;
* the gain is the weighted impurity decrease *per unit of the node's weight*,
  ``impurity(node) - W_L / W * impurity(left) - W_R / W * impurity(right)``; multiplying it by the
  node's weight gives the node's contribution to the feature importances;
* impurities: Gini ``1 - sum_k p_k^2``, entropy/log-loss ``-sum_k p_k log2 p_k`` (base 2, as
  scikit-learn), squared error: the weighted variance of the target.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CLASSIFICATION_CRITERIA = ("gini", "entropy", "log_loss")
REGRESSION_CRITERIA = ("squared_error",)

# Elements of the largest (features x classes x samples) block of cumulative statistics built
# at once: about 64 MiB of float64. Nodes with more get their features scanned in blocks.
_BLOCK_ELEMENTS = 1 << 23


class Split(NamedTuple):
    """The winning cut of a node: samples with ``X[:, feature] <= threshold`` go left."""

    feature: int
    threshold: float
    gain: float


def best_split(
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray,
    *,
    criterion: str,
    n_classes: int | None = None,
    min_samples_leaf: int = 1,
    features: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> Split | None:
    """Best split of the node holding the rows of ``X``, or ``None`` if no cut is allowed.

    Parameters
    ----------
    X : (n_samples, n_features) float array.
    y : (n_samples,) class codes ``0 .. n_classes - 1`` for a classification criterion, float
        targets for ``"squared_error"``.
    sample_weight : (n_samples,) non-negative weights.
    criterion : "gini", "entropy", "log_loss" or "squared_error".
    n_classes : number of classes (classification); default ``y.max() + 1``.
    min_samples_leaf : a cut is allowed only if both children keep at least this many samples.
    features : candidate feature indices (default: all). Ties between features go to the one
        listed first, ties between thresholds to the smaller threshold.
    order : optional ``(n_features, n_node)`` int array whose row ``j`` lists the node's rows of
        ``X`` sorted by feature ``j`` (all features, not only the candidates). The tree builder
        keeps these orders from the root down so it never sorts again; by default the node is
        every row of ``X`` and it is sorted here.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    sample_weight = np.asarray(sample_weight, dtype=np.float64)
    if criterion in CLASSIFICATION_CRITERIA:
        y = y.astype(np.intp, copy=False)
        n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
    elif criterion in REGRESSION_CRITERIA:
        y = y.astype(np.float64, copy=False)
        n_classes = 1
    else:
        raise ValueError(f"Unknown criterion {criterion!r}.")
    features = np.arange(X.shape[1]) if features is None else np.asarray(features, np.intp)
    if order is None:
        order = np.argsort(X[:, features], axis=0, kind="stable").T
    else:
        order = np.asarray(order)[features]
    n_node = order.shape[1]
    if features.size == 0 or n_node < max(2, 2 * min_samples_leaf):
        return None

    # Scan the candidate features in blocks that keep the cumulative statistics small; a later
    # block wins only if strictly better, so ties still go to the feature listed first.
    per_block = max(1, _BLOCK_ELEMENTS // (n_node * n_classes))
    best: Split | None = None
    for start in range(0, features.size, per_block):
        block = slice(start, start + per_block)
        found = _best_split_block(
            X, y, sample_weight, order[block], features[block],
            criterion=criterion, n_classes=n_classes, min_samples_leaf=min_samples_leaf,
        )  # fmt: skip
        if found is not None and (best is None or found.gain > best.gain):
            best = found
    return best


def _best_split_block(
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray,
    order: np.ndarray,
    features: np.ndarray,
    *,
    criterion: str,
    n_classes: int,
    min_samples_leaf: int,
) -> Split | None:
    """Score every cut of every feature in ``features`` at once and return the best.

    ``order[j]`` lists the node's rows of ``X`` sorted by feature ``features[j]``, so
    ``X[order, features[:, None]]`` is the node's data sorted feature by feature (one row per
    feature) and ``y[order]``, ``sample_weight[order]`` are the targets and weights in the same
    orders. Cut ``i`` (``0 <= i < n_node - 1``) sends the first ``i + 1`` sorted samples left.

    Why cumulative sums: the left child of cut ``i`` is a prefix of the sorted order, so one
    ``np.cumsum`` yields its class weights (classification) or its weight and weighted target sum
    (regression) for all cuts together; the right child is the node's total minus the left.

    A cut is allowed only where the feature value changes (``x[i] < x[i + 1]``), where both
    children keep at least ``min_samples_leaf`` samples and have positive weight. Only allowed
    cuts are scored: a one-hot feature has one among its ``n_node - 1``, so on one-hot data this
    skips most of the arithmetic (the cumulative sums still run over every sample). Return ``None``
    if no cut is allowed; otherwise the first best cut in (feature, threshold) order with its
    threshold at the midpoint ``x[i] / 2 + x[i + 1] / 2`` (halves avoid overflow; should rounding
    land it on ``x[i + 1]``, use ``x[i]``) and its gain as defined in the module docstring.

    Regression needs no cumulative sum of ``w * y^2``: the node's sum of squares is the same for
    every cut, so the gain reduces to ``W_L W_R / W^2 * (mean_L - mean_R)^2``, which avoids the
    cancellation of ``E[y^2] - E[y]^2`` when the target has a large mean.
    """
    # BEGIN SOLUTION 1.3: cumulative sums along each sorted feature, allowed cuts scored, the best
    n_node = order.shape[1]
    # (n_features, n_node), each row sorted. np.take on flat indices: several times faster
    # than the equivalent X[order, features[:, None]]. X.T is free when X is Fortran-ordered.
    flat = order + (features * X.shape[0])[:, None]
    xs = np.take(np.ascontiguousarray(X.T), flat)
    # Allowed cuts first: most cuts of a few-valued feature (one-hot: all but one) fall between
    # equal values, so scoring only the allowed ones saves most of the arithmetic.
    allowed = xs[:, 1:] > xs[:, :-1]  # cut i sends the first i + 1 sorted samples left
    allowed[:, : min_samples_leaf - 1] = False
    allowed[:, n_node - min_samples_leaf :] = False
    cut = np.flatnonzero(allowed)  # in (feature, cut) order
    if cut.size == 0:
        return None
    j, i = np.divmod(cut, n_node - 1)  # feature (row of xs) and position of each allowed cut

    # Per row, the statistics whose prefix sums describe every left child: its weight per class
    # (classification), or its weight and weighted target (regression). Statistics first, so
    # that sums over them add whole rows.
    if criterion == "squared_error":
        per_row = np.stack((sample_weight, sample_weight * y))
    else:
        per_row = np.zeros((n_classes, len(y)))
        per_row[y, np.arange(len(y))] = sample_weight
    cum = np.cumsum(per_row.take(order, axis=1), axis=2)  # (n_stats, n_features, n_node)
    node_total = cum[:, :, -1]  # (n_stats, n_features): the node's totals, summed per feature
    left = cum.reshape(len(per_row), -1).take(cut + j, axis=1)  # left child of each allowed cut
    total = node_total.take(j, axis=1)  # (n_stats, n_cuts), like left
    with np.errstate(divide="ignore", invalid="ignore"):
        if criterion == "squared_error":
            w_left, w_total = left[0], total[0]
            w_right = w_total - w_left
            # Left sum of (y - node mean): the numerator of mean_L - mean_R, up to weights.
            centred_left = left[1] - w_left * (total[1] / w_total)
            gain = centred_left**2 / (w_left * w_right)
        else:
            right = np.maximum(total - left, 0.0)  # rounding must not go negative
            w_left, w_right = left.sum(axis=0), right.sum(axis=0)

            def impurity(c: np.ndarray, w: np.ndarray) -> np.ndarray:
                p = c / w
                if criterion == "gini":
                    return 1.0 - np.sum(p * p, axis=0)
                logp = np.log2(np.where(p > 0, p, 1.0))
                return -np.sum(p * logp, axis=0)

            # The node's impurity and weight, once per feature rather than once per cut.
            w_node = node_total.sum(axis=0)
            w_total = w_node.take(j)
            gain = (
                impurity(node_total, w_node).take(j)
                - (w_left * impurity(left, w_left) + w_right * impurity(right, w_right)) / w_total
            )
    gain[~((w_left > 0) & (w_right > 0))] = -np.inf
    best = int(np.argmax(gain))  # first maximum: lowest feature, then lowest cut
    if gain[best] == -np.inf:
        return None
    low, high = xs[j[best], i[best]], xs[j[best], i[best] + 1]
    threshold = low / 2.0 + high / 2.0
    if threshold >= high:
        threshold = low
    return Split(int(features[j[best]]), float(threshold), float(gain[best]))
    # END SOLUTION
