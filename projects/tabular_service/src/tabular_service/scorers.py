"""Scorers: fitted models behind one interface, `score(EncodedBatch) -> P(default)`.

Each model family wants its inputs differently (one-hot for linear models, raw codes for trees,
embeddings for the MLP); a scorer owns that choice, so the predictor and the service never need
to know which family won.

Serving latency matters as much as accuracy here (one request = one row, budget well under a
millisecond), so the two production families are *compiled* into plain numpy after training:

- `LinearScorer` folds a one-hot logistic regression into per-category lookup tables:
  numeric @ w + sum of table lookups + b, no one-hot matrix, no scikit-learn call.
- `TreeScorer` flattens a HistGradientBoostingClassifier into node arrays and walks every
  tree at once, one numpy step per tree level. scikit-learn's own predict starts an OpenMP
  region per call, which on a busy 2-core machine costs milliseconds for a single row.

Both reproduce scikit-learn's probabilities to 1e-12 (tests/test_scorers.py). The module
imports neither torch nor scikit-learn at import time: the service loads it on every start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tabular_service.features import EncodedBatch, FeatureEncoder
from tabular_service.schema import CATEGORICAL, NUMERIC


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow warning for large |z|)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass
class SklearnScorer:
    """Any scikit-learn-style classifier with `predict_proba`, fed numerics + categories.

    `one_hot` picks the categorical encoding: indicators for linear models, codes for trees
    (HistGradientBoosting is then told which columns are categorical). The generic, slow path:
    used for models without a compiled form (scratch_ml's boosting) and as the reference the
    compiled scorers are tested against.
    """

    estimator: Any
    encoder: FeatureEncoder
    one_hot: bool
    positive_column: int = 1

    def score(self, batch: EncodedBatch) -> np.ndarray:
        X = self.encoder.design(batch, one_hot=self.one_hot)
        return np.asarray(self.estimator.predict_proba(X))[:, self.positive_column]


# ---------------------------------------------------------------------------- linear
@dataclass
class LinearScorer:
    """A logistic regression on [numerics, one-hot categories], folded into lookup tables.

    A one-hot column is 1 for exactly one category per field, so its weight can be looked up
    by the category code instead of multiplied in: logit = numeric @ w + sum_j table_j[code_j]
    + b. All tables live in one flat array (`offsets` says where each field starts) so a batch
    needs a single fancy-index.
    """

    weights: np.ndarray  # (len(NUMERIC),)
    table: np.ndarray  # concatenated per-category weights, schema order
    offsets: np.ndarray  # (len(CATEGORICAL),) start of each field's block in `table`
    intercept: float

    @classmethod
    def from_logistic(cls, model: Any, encoder: FeatureEncoder) -> LinearScorer:
        """Fold a fitted binary LogisticRegression trained on `encoder.design(.., one_hot=True)`."""
        coef = np.asarray(model.coef_, dtype=np.float64).ravel()
        sizes = [len(encoder.vocabularies[name]) for name in CATEGORICAL]
        if coef.shape[0] != len(NUMERIC) + sum(sizes):
            raise ValueError(f"expected {len(NUMERIC) + sum(sizes)} coefficients, got {coef.size}")
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        intercept = float(np.asarray(model.intercept_).ravel()[0])
        return cls(coef[: len(NUMERIC)].copy(), coef[len(NUMERIC) :].copy(), offsets, intercept)

    def logit(self, batch: EncodedBatch) -> np.ndarray:
        looked_up = self.table[batch.codes + self.offsets].sum(axis=1)
        return batch.numeric @ self.weights + looked_up + self.intercept

    def score(self, batch: EncodedBatch) -> np.ndarray:
        return sigmoid(self.logit(batch))


# ---------------------------------------------------------------------------- trees
@dataclass
class TreeScorer:
    """A fitted binary HistGradientBoostingClassifier as flat numpy node arrays.

    All trees are walked together: `idx` holds each (row, tree)'s current node and one
    iteration moves every one of them a level down. Leaves point to themselves, so running
    `depth` iterations lands every path on its leaf. A categorical split is a precomputed
    table go_left[node, code], which also encodes scikit-learn's rule that a category unseen
    in training follows the node's missing-value direction.
    """

    feature: np.ndarray  # (n_nodes,) feature column in the design (numerics, then codes)
    threshold: np.ndarray  # numeric split: go left when x <= threshold
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray  # leaf values (0 for split nodes)
    cat_row: np.ndarray  # row of `cat_left` for categorical nodes, -1 otherwise
    cat_left: np.ndarray  # (n_categorical_nodes + 1, max_code + 1) bool
    roots: np.ndarray  # (n_trees,)
    depth: int
    baseline: float
    encoder: FeatureEncoder
    chunk: int = field(default=2048)

    @classmethod
    def from_hist_gb(cls, model: Any, encoder: FeatureEncoder) -> TreeScorer:
        """Compile a binary HistGradientBoostingClassifier fitted on design(..., one_hot=False)."""
        if len(model.classes_) != 2:
            raise ValueError("TreeScorer supports binary classifiers only")
        # scikit-learn reorders the columns (categorical first) and ordinal-encodes the
        # categories it saw in training; map both back to our design's columns and codes.
        width = max(len(v) for v in encoder.vocabularies.values())
        column, seen = _hist_gb_columns(model, width)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("f", "t", "l", "r", "v", "c")}
        cat_rows: list[np.ndarray] = []
        roots, depth, offset = [], 0, 0
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            n = len(nodes)
            ids = np.arange(offset, offset + n)
            leaf = nodes["is_leaf"].astype(bool)
            parts["f"].append(np.where(leaf, 0, column[nodes["feature_idx"]]).astype(np.int64))
            parts["t"].append(nodes["num_threshold"].astype(np.float64))
            parts["l"].append(np.where(leaf, ids, nodes["left"].astype(np.int64) + offset))
            parts["r"].append(np.where(leaf, ids, nodes["right"].astype(np.int64) + offset))
            parts["v"].append(np.where(leaf, nodes["value"], 0.0).astype(np.float64))
            row = np.full(n, -1, dtype=np.int64)
            for i in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~leaf):
                bits = predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]]
                ordinal = seen[nodes["feature_idx"][i]]  # our code -> sklearn's, -1 if unseen
                go_left = _in_bitset(bits, np.maximum(ordinal, 0))
                # A category unseen in training becomes NaN and follows the missing direction.
                go_left = np.where(ordinal >= 0, go_left, bool(nodes["missing_go_to_left"][i]))
                row[i] = len(cat_rows)
                cat_rows.append(go_left)
            parts["c"].append(row)
            roots.append(offset)
            depth = max(depth, int(nodes["depth"].max()))
            offset += n
        cat_left = np.vstack([*cat_rows, np.zeros(width, bool)])  # last row: non-categorical
        cat_row = np.concatenate(parts["c"])
        cat_row[cat_row < 0] = len(cat_rows)
        baseline = float(np.asarray(model._baseline_prediction).ravel()[0])
        return cls(
            *(np.concatenate(parts[k]) for k in ("f", "t", "l", "r", "v")),
            cat_row,
            cat_left,
            np.asarray(roots, dtype=np.int64),
            depth,
            baseline,
            encoder,
        )

    def logit(self, batch: EncodedBatch) -> np.ndarray:
        X = self.encoder.design(batch, one_hot=False)
        if np.isnan(X).any():
            raise ValueError("TreeScorer input has missing values; the schema forbids them")
        out = np.empty(len(X))
        for start in range(0, len(X), self.chunk):
            out[start : start + self.chunk] = self._logit(X[start : start + self.chunk])
        return out

    def _logit(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        rows = np.arange(n)[:, None]
        idx = np.broadcast_to(self.roots, (n, len(self.roots)))
        codes = np.clip(X, 0, self.cat_left.shape[1] - 1).astype(np.int64)
        for _ in range(self.depth):
            f = self.feature[idx]
            x = X[rows, f]
            go_left = np.where(
                self.cat_row[idx] < len(self.cat_left) - 1,
                self.cat_left[self.cat_row[idx], codes[rows, f]],
                x <= self.threshold[idx],
            )
            moved = np.where(go_left, self.left[idx], self.right[idx])
            if np.array_equal(moved, idx):  # every path is on its leaf: most trees are shallow
                break
            idx = moved
        return self.value[idx].sum(axis=1) + self.baseline

    def score(self, batch: EncodedBatch) -> np.ndarray:
        return sigmoid(self.logit(batch))


def _hist_gb_columns(model: Any, width: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Map HistGradientBoosting's internal feature order back to the input columns.

    Returns (column of each internal feature, {internal categorical feature: array mapping
    our integer code -> sklearn's ordinal code, -1 for a code not seen in training}).
    """
    preprocessor = getattr(model, "_preprocessor", None)
    if preprocessor is None:
        return np.arange(model.n_features_in_), {}
    is_cat = np.asarray(model.is_categorical_, dtype=bool)
    cat_cols = np.flatnonzero(is_cat)
    column = np.concatenate([cat_cols, np.flatnonzero(~is_cat)])
    encoder = preprocessor.named_transformers_["encoder"]
    seen: dict[int, np.ndarray] = {}
    for k, values in enumerate(encoder.categories_):
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]
        if len(values) and (values.min() < 0 or values.max() >= width):
            raise ValueError("categorical columns must hold codes in [0, number of categories)")
        lookup = np.full(width, -1, dtype=np.int64)
        lookup[values.astype(np.int64)] = np.arange(len(values))
        seen[k] = lookup
    return column, seen


def _in_bitset(bitset: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Membership of small non-negative ints in scikit-learn's 8 x uint32 bitset."""
    words = np.asarray(bitset, dtype=np.uint32)[values // 32]
    return ((words >> (values % 32).astype(np.uint32)) & 1).astype(bool)
