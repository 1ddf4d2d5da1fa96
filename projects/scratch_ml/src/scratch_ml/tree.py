"""CART decision trees (classification and regression) in numpy, with scikit-learn's API.

A tree is grown depth first: each node asks :func:`best_split` for the cut with the largest
weighted impurity decrease, sends its samples left (``x[feature] <= threshold``) or right, and
stops when it is pure, too small, too deep or cannot be cut. The fitted tree lives in flat
arrays (:class:`Tree`), as in scikit-learn, so prediction walks *all* samples down the tree one
level at a time: as many numpy steps as the tree is deep, never a Python loop per sample.

Speed: every feature is argsorted once, at the root. When a node splits, each child's sorted
orders are the parent's orders filtered by a boolean mask (a stable partition keeps them
sorted), so no node sorts again and each level of the tree costs O(n_samples x n_features).
What dominates is that per-element work, not Python's per-node overhead (a depth-8 tree has at
most 255 nodes): the split search scores only the cuts between distinct values, and gathers and
partitions go through flat ``np.take``/``np.compress``, several times faster than 2-D fancy
indexing.

Differences from scikit-learn worth knowing: X is kept in float64 (scikit-learn casts to
float32), values closer than 1e-7 still count as distinct (scikit-learn treats them as equal),
and ties between equally good features go to the lowest feature index rather than to the
feature drawn first, so a fit never depends on ``random_state`` unless ``max_features`` draws
a subset. ``tree_.value`` has no output axis: (node_count, n_classes) for the classifier (class
proportions) and (node_count, 1) for the regressor.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from scratch_ml._param_validation import Interval, RealNotInt, StrOptions
from scratch_ml._tree_split import (
    CLASSIFICATION_CRITERIA,
    REGRESSION_CRITERIA,
    Split,
    best_split,
)
from scratch_ml.base import BaseEstimator, ClassifierMixin, RegressorMixin, check_random_state
from scratch_ml.validation import (
    check_array,
    check_features,
    check_sample_weight,
    check_X_y,
    encode_labels,
    record_features,
)

__all__ = [
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "Split",
    "Tree",
    "best_split",
    "leaf_value",
    "node_impurity",
]

TREE_LEAF = -1  # children_left/right of a leaf (scikit-learn's convention)
TREE_UNDEFINED = -2  # feature and threshold of a leaf
_EPSILON = np.finfo(np.float64).eps  # a node this pure is a leaf


def leaf_value(
    y: np.ndarray, sample_weight: np.ndarray, n_classes: int | None = None
) -> np.ndarray:
    """What a node predicts: its weighted class proportions, or its weighted mean target.

    ``n_classes`` given means classification: ``y`` holds class codes ``0 .. n_classes - 1`` and
    the result, shape ``(n_classes,)``, sums to one (classes absent from the node get 0). Without
    it ``y`` is a float target and the result is ``[weighted mean]``, shape ``(1,)``. These are
    the predictions that minimise the node's log-loss and squared error respectively, which is
    why the tree's impurities and its leaves agree.
    """
    # BEGIN SOLUTION 1.4: weighted class proportions (classification) or weighted mean (regression)
    if n_classes is not None:
        counts = np.bincount(y, weights=sample_weight, minlength=n_classes)
        return counts / counts.sum()
    return np.array([np.sum(sample_weight * y) / np.sum(sample_weight)])
    # END SOLUTION


def node_impurity(
    y: np.ndarray, sample_weight: np.ndarray, criterion: str, n_classes: int | None = None
) -> float:
    """Impurity of one node: Gini, entropy (base 2) or weighted variance of its samples.

    A node whose impurity is (numerically) zero is pure and becomes a leaf. The variance is
    computed around the node's mean (two passes) so a constant target gives exactly zero.
    """
    # BEGIN SOLUTION 1.4: Gini 1 - sum p^2, entropy -sum p log2 p, or the weighted variance
    if criterion in CLASSIFICATION_CRITERIA:
        p = np.bincount(y, weights=sample_weight, minlength=n_classes) / np.sum(sample_weight)
        if criterion == "gini":
            return float(1.0 - np.sum(p * p))
        p = p[p > 0]
        return float(-np.sum(p * np.log2(p)))
    mean = np.sum(sample_weight * y) / np.sum(sample_weight)
    return float(np.sum(sample_weight * (y - mean) ** 2) / np.sum(sample_weight))
    # END SOLUTION


class Tree:
    """A fitted binary tree as parallel arrays indexed by node id (root = 0, preorder).

    ``children_left[i] == children_right[i] == -1`` marks a leaf, whose ``feature`` and
    ``threshold`` are -2. ``value[i]`` is what node ``i`` predicts (see the module docstring for
    its shape), ``impurity[i]`` its impurity, ``n_node_samples[i]`` and
    ``weighted_n_node_samples[i]`` how many samples (of positive weight) and how much weight
    reached it during fit.
    """

    def __init__(
        self,
        children_left: np.ndarray,
        children_right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        value: np.ndarray,
        impurity: np.ndarray,
        n_node_samples: np.ndarray,
        weighted_n_node_samples: np.ndarray,
        max_depth: int,
        n_features: int,
    ) -> None:
        self.children_left = children_left
        self.children_right = children_right
        self.feature = feature
        self.threshold = threshold
        self.value = value
        self.impurity = impurity
        self.n_node_samples = n_node_samples
        self.weighted_n_node_samples = weighted_n_node_samples
        self.max_depth = max_depth
        self.n_features = n_features

    @property
    def node_count(self) -> int:
        return len(self.children_left)

    @property
    def n_leaves(self) -> int:
        return int(np.sum(self.children_left == TREE_LEAF))

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf id of every row of ``X``: all samples step down one level per iteration."""
        node = np.zeros(X.shape[0], dtype=np.intp)
        active = np.arange(X.shape[0])
        while active.size:
            current = node[active]
            inner = self.children_left[current] != TREE_LEAF
            active, current = active[inner], current[inner]
            go_left = X[active, self.feature[current]] <= self.threshold[current]
            node[active] = np.where(
                go_left, self.children_left[current], self.children_right[current]
            )
        return node

    def compute_feature_importances(self) -> np.ndarray:
        """Total weighted impurity decrease per feature, normalised to sum to one.

        Node ``i`` contributes ``W_i * impurity_i - W_left * impurity_left - W_right *
        impurity_right`` to its feature (scikit-learn's "mean decrease in impurity").
        """
        inner = np.flatnonzero(self.children_left != TREE_LEAF)
        left, right = self.children_left[inner], self.children_right[inner]
        w, imp = self.weighted_n_node_samples, self.impurity
        decrease = w[inner] * imp[inner] - w[left] * imp[left] - w[right] * imp[right]
        importances = np.bincount(self.feature[inner], weights=decrease, minlength=self.n_features)
        total = importances.sum()
        return importances / total if total > 0 else importances


def _grow(
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray,
    *,
    criterion: str,
    n_classes: int | None,
    max_depth: int,
    min_samples_split: int,
    min_samples_leaf: int,
    max_features: int,
    rng: np.random.Generator,
) -> Tree:
    """Grow a tree depth first from presorted feature orders (see the module docstring)."""
    n_samples, n_features = X.shape
    X = np.asfortranarray(X)  # columns contiguous: the split search gathers along them
    index = np.int32 if n_samples < 2**31 else np.int64
    order = np.argsort(X, axis=0, kind="stable").T.astype(index)  # (n_features, n_samples)
    goes_left = np.zeros(n_samples, dtype=bool)
    all_features = np.arange(n_features)

    nodes: dict[str, list[Any]] = {
        key: []
        for key in (
            "left", "right", "feature", "threshold", "value", "impurity", "n", "weighted_n",
        )
    }  # fmt: skip
    max_reached = 0
    # Pending nodes: (sorted orders, depth, parent id, is left child). Pushing the right child
    # first pops the left one first, so node ids come out in preorder like scikit-learn's.
    stack: list[tuple[np.ndarray, int, int, bool]] = [(order, 0, -1, False)]
    while stack:
        order, depth, parent, is_left = stack.pop()
        rows = order[0]
        y_node, w_node = y[rows], sample_weight[rows]
        node_id = len(nodes["left"])
        if parent >= 0:
            nodes["left" if is_left else "right"][parent] = node_id
        impurity = node_impurity(y_node, w_node, criterion, n_classes)
        nodes["left"].append(TREE_LEAF)
        nodes["right"].append(TREE_LEAF)
        nodes["feature"].append(TREE_UNDEFINED)
        nodes["threshold"].append(float(TREE_UNDEFINED))
        nodes["value"].append(leaf_value(y_node, w_node, n_classes))
        nodes["impurity"].append(impurity)
        nodes["n"].append(rows.size)
        nodes["weighted_n"].append(float(w_node.sum()))
        max_reached = max(max_reached, depth)

        n_node = rows.size
        if (
            depth >= max_depth
            or n_node < min_samples_split
            or n_node < 2 * min_samples_leaf
            or impurity <= _EPSILON
        ):
            continue
        # Constant features cannot split the node; max_features draws among the others.
        first, last = X[order[:, 0], all_features], X[order[:, -1], all_features]
        candidates = np.flatnonzero(first < last)
        if candidates.size > max_features:
            candidates = np.sort(rng.choice(candidates, size=max_features, replace=False))
        split = best_split(
            X, y, sample_weight, criterion=criterion, n_classes=n_classes,
            min_samples_leaf=min_samples_leaf, features=candidates, order=order,
        )  # fmt: skip
        if split is None:
            continue
        nodes["feature"][node_id] = split.feature
        nodes["threshold"][node_id] = split.threshold
        goes_left[rows] = X[rows, split.feature] <= split.threshold
        # Flat take/compress: several times faster than goes_left[order] and order[mask].
        mask = goes_left.take(order).ravel()  # every feature's row has the same count of True
        n_left = int(np.count_nonzero(mask[:n_node]))
        flat = order.ravel()
        right = flat.compress(np.logical_not(mask)).reshape(n_features, n_node - n_left)
        stack.append((right, depth + 1, node_id, False))
        stack.append((flat.compress(mask).reshape(n_features, n_left), depth + 1, node_id, True))

    return Tree(
        children_left=np.array(nodes["left"], dtype=np.intp),
        children_right=np.array(nodes["right"], dtype=np.intp),
        feature=np.array(nodes["feature"], dtype=np.intp),
        threshold=np.array(nodes["threshold"], dtype=np.float64),
        value=np.array(nodes["value"], dtype=np.float64),
        impurity=np.array(nodes["impurity"], dtype=np.float64),
        n_node_samples=np.array(nodes["n"], dtype=np.intp),
        weighted_n_node_samples=np.array(nodes["weighted_n"], dtype=np.float64),
        max_depth=max_reached,
        n_features=n_features,
    )


class _BaseDecisionTree(BaseEstimator):
    """Parameter constraints, fitting and the shared read-outs of both trees."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_split": [
            Interval(Integral, 2, None, closed="left"),
            Interval(RealNotInt, 0.0, 1.0, closed="right"),
        ],
        "min_samples_leaf": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0.0, 1.0, closed="neither"),
        ],
        "max_features": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0.0, 1.0, closed="right"),
            StrOptions({"sqrt", "log2"}),
            None,
        ],
        "random_state": ["random_state"],
    }

    def _resolve_params(self, n_samples: int, n_features: int) -> dict[str, Any]:
        """Turn the (already validated) hyper-parameters into counts for this training set.

        Fractions become counts of samples or features; an int ``max_features`` above the
        number of features is the one check that needs the data.
        """
        max_depth = np.iinfo(np.int32).max if self.max_depth is None else int(self.max_depth)

        leaf = self.min_samples_leaf
        if isinstance(leaf, Integral):
            min_samples_leaf = int(leaf)
        else:
            min_samples_leaf = max(1, math.ceil(leaf * n_samples))

        split = self.min_samples_split
        if isinstance(split, Integral):
            min_samples_split = int(split)
        else:
            min_samples_split = max(2, math.ceil(split * n_samples))
        min_samples_split = max(min_samples_split, 2 * min_samples_leaf)

        mf = self.max_features
        if mf is None:
            max_features = n_features
        elif isinstance(mf, str):  # "sqrt" or "log2"
            root = math.sqrt if mf == "sqrt" else math.log2
            max_features = max(1, int(root(n_features)))
        elif isinstance(mf, Integral):
            if mf > n_features:
                raise ValueError(
                    f"The 'max_features' parameter of {type(self).__name__} must be at most "
                    f"the number of features, {n_features}, when it is an int. Got {mf!r} "
                    "instead."
                )
            max_features = int(mf)
        else:
            max_features = max(1, int(mf * n_features))
        return {
            "max_depth": max_depth,
            "min_samples_leaf": min_samples_leaf,
            "min_samples_split": min_samples_split,
            "max_features": max_features,
        }

    def _fit(
        self, X_raw: Any, X: np.ndarray, y: np.ndarray, sample_weight: Any, n_classes: int | None
    ) -> None:
        weights = check_sample_weight(sample_weight, X.shape[0])
        params = self._resolve_params(X.shape[0], X.shape[1])
        # Samples of zero weight take no part (scikit-learn drops them too): they must not move
        # thresholds or count towards min_samples_leaf, or weight 0 would differ from absence.
        keep = weights > 0
        if not keep.any():
            raise ValueError("Sample weights must not all be zero: nothing to fit.")
        self.tree_ = _grow(
            X[keep],
            y[keep],
            weights[keep],
            criterion=self.criterion,
            n_classes=n_classes,
            rng=check_random_state(self.random_state),
            **params,
        )
        self.max_features_ = params["max_features"]
        self.feature_importances_ = self.tree_.compute_feature_importances()
        record_features(self, X_raw, X)

    def _validate_X_predict(self, X: Any) -> np.ndarray:
        self._check_is_fitted()
        X_arr = check_array(X, estimator=self)
        check_features(self, X, X_arr)
        return X_arr

    def apply(self, X: Any) -> np.ndarray:
        """Index (into ``tree_``'s arrays) of the leaf each sample lands in."""
        X_arr = self._validate_X_predict(X)  # before touching tree_: NotFittedError first
        return self.tree_.apply(X_arr)

    def get_depth(self) -> int:
        """Depth of the fitted tree: the longest root-to-leaf path, in edges."""
        self._check_is_fitted()
        return self.tree_.max_depth

    def get_n_leaves(self) -> int:
        """Number of leaves of the fitted tree."""
        self._check_is_fitted()
        return self.tree_.n_leaves


class DecisionTreeClassifier(ClassifierMixin, _BaseDecisionTree):
    """CART classification tree: binary splits chosen by Gini or entropy decrease.

    Parameters
    ----------
    criterion : "gini" (default), "entropy" or "log_loss" (the same as "entropy").
    max_depth : deepest level a node may sit at (root = 0); None grows until pure or too small.
    min_samples_split : a node needs at least this many samples to be split (int, or a float
        fraction of the training samples).
    min_samples_leaf : each child must keep at least this many samples (int or fraction).
    max_features : features drawn at random at each node: None (all), an int, a float fraction,
        "sqrt" or "log2". Drawing fewer decorrelates the trees of a forest.
    random_state : seed for that draw (None, an int or a numpy Generator/RandomState).

    Attributes
    ----------
    classes_, n_classes_, n_features_in_, feature_names_in_ (DataFrames), max_features_,
    tree_ (:class:`Tree`), feature_importances_.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseDecisionTree._parameter_constraints,
        "criterion": [StrOptions(CLASSIFICATION_CRITERIA)],
    }

    def __init__(
        self,
        criterion: str = "gini",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = None,
        random_state: Any = None,
    ) -> None:
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DecisionTreeClassifier:
        """Grow the tree on (X, y); labels may be any sortable values (strings included)."""
        self._validate_params()
        X_arr, y_arr = check_X_y(X, y, estimator=self)
        classes, codes = encode_labels(y_arr, estimator=self)
        self.classes_ = classes
        self.n_classes_ = len(classes)
        self._fit(X, X_arr, codes.astype(np.intp), sample_weight, self.n_classes_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: the weighted class proportions of each sample's leaf."""
        leaves = self.apply(X)
        return self.tree_.value[leaves]  # a copy: callers may modify it

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba` (``-inf`` for classes absent from the leaf)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each sample's leaf (the lowest class on a tie)."""
        proba = self.predict_proba(X)  # validates first: NotFittedError, not AttributeError
        return self.classes_[np.argmax(proba, axis=1)]


class DecisionTreeRegressor(RegressorMixin, _BaseDecisionTree):
    """CART regression tree: binary splits chosen by squared-error (variance) decrease.

    Parameters are those of :class:`DecisionTreeClassifier` except ``criterion``, which is
    "squared_error" (the only one). Leaves predict the weighted mean of their targets.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseDecisionTree._parameter_constraints,
        "criterion": [StrOptions(REGRESSION_CRITERIA)],
    }

    def __init__(
        self,
        criterion: str = "squared_error",
        max_depth: int | None = None,
        min_samples_split: int | float = 2,
        min_samples_leaf: int | float = 1,
        max_features: int | float | str | None = None,
        random_state: Any = None,
    ) -> None:
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DecisionTreeRegressor:
        """Grow the tree on (X, y) with a numeric target."""
        self._validate_params()
        X_arr, y_arr = check_X_y(X, y, estimator=self, y_numeric=True)
        self._fit(X, X_arr, y_arr.astype(np.float64), sample_weight, None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Weighted mean target of each sample's leaf."""
        leaves = self.apply(X)
        return self.tree_.value[leaves, 0]
