"""The model families training compares, each trained the same way: fit on train, tune on valid.

Every trainer takes the fitted encoder, the split and the encoded batches, and returns a
`Candidate`: a scorer (the fitted model behind `score(EncodedBatch)`) plus its parameters and
fit time. Hyper-parameters are chosen on validation log-loss within a family; which family wins
is `selection`'s job, not theirs.

- `logistic`: L2 logistic regression on one-hot categories, folded into a `LinearScorer`.
- `hist_gb`: scikit-learn HistGradientBoosting with native categorical splits, compiled into a
  `TreeScorer`.
- `scratch_gb`: the workbook's from-scratch boosting (`scratch_ml`), when it is importable.
- `mlp`: a PyTorch Lightning MLP exported to numpy, when torch and lightning are installed.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tabular_service.data import Split
from tabular_service.features import EncodedBatch, FeatureEncoder
from tabular_service.predictor import Scorer
from tabular_service.schema import CATEGORICAL, NUMERIC

MODEL_KINDS = ("logistic", "hist_gb", "scratch_gb", "mlp")
#: Trained and tracked for comparison, promoted only when nothing else was trained: its pickle
#: needs scratch_ml, which neither a fork of this package nor the Docker image installs.
COMPARISON_ONLY = frozenset({"scratch_gb"})


@dataclass
class Candidate:
    """One trained model family: its scorer plus what MLflow and the summary record."""

    name: str
    scorer: Scorer
    params: dict[str, Any]
    fit_seconds: float
    one_hot: bool | None = None  # design used (None: embeddings)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Encoded:
    """The three parts of the split, encoded once and shared by every model."""

    train: EncodedBatch
    valid: EncodedBatch
    test: EncodedBatch


def train_logistic(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """L2 logistic regression on one-hot categories; C chosen by validation log-loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    from tabular_service.scorers import LinearScorer

    grid = [0.03, 0.3] if quick else [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    X_train, X_valid = enc.design(e.train, one_hot=True), enc.design(e.valid, one_hot=True)
    start, scores, best = time.perf_counter(), {}, None
    for C in grid:
        model = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(X_train, data.y_train)
        scores[C] = log_loss(data.y_valid, model.predict_proba(X_valid)[:, 1])
        if best is None or scores[C] < scores[best[0]]:
            best = (C, model)
    C, model = best
    return Candidate(
        "logistic",
        LinearScorer.from_logistic(model, enc),
        {"C": C, "penalty": "l2", "C_grid": grid, "selection": "valid_log_loss"},
        time.perf_counter() - start,
        one_hot=True,
        notes={"valid_log_loss_by_C": {str(k): round(v, 6) for k, v in scores.items()}},
    )


def _tree_grid(quick: bool) -> list[dict[str, Any]]:
    if quick:
        return [{"max_leaf_nodes": 8, "max_depth": 4, "max_iter": 60}]
    return [
        {"max_leaf_nodes": leaves, "max_depth": depth, "max_iter": 500}
        for leaves, depth in ((4, 2), (8, 3), (16, 4), (31, 6))
    ]


def train_hist_gb(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """scikit-learn HistGradientBoosting on numerics + native categorical splits, compiled to numpy.

    Each configuration early-stops on an internal 15 % of the training rows; the configuration
    is chosen by validation log-loss.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss

    from tabular_service.scorers import TreeScorer

    categorical = np.arange(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL))
    X_train, X_valid = enc.design(e.train, one_hot=False), enc.design(e.valid, one_hot=False)
    fixed = {"learning_rate": 0.05, "min_samples_leaf": 40, "l2_regularization": 1.0}
    start, scores, best = time.perf_counter(), {}, None
    for config in _tree_grid(quick):
        model = HistGradientBoostingClassifier(
            **fixed,
            categorical_features=categorical,
            early_stopping=not quick,
            validation_fraction=0.15,
            n_iter_no_change=30,
            random_state=seed,
            **config,
        ).fit(X_train, data.y_train)
        key = json.dumps(config, sort_keys=True)
        scores[key] = log_loss(data.y_valid, model.predict_proba(X_valid)[:, 1])
        if best is None or scores[key] < scores[best[0]]:
            best = (key, model, config)
    _, model, config = best
    params = {**config, "n_iter": int(model.n_iter_), **fixed, "selection": "valid_log_loss"}
    return Candidate(
        "hist_gb",
        TreeScorer.from_hist_gb(model, enc),
        params,
        time.perf_counter() - start,
        one_hot=False,
        notes={"valid_log_loss_by_config": {k: round(v, 6) for k, v in scores.items()}},
    )


def train_scratch_gb(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """scratch_ml's from-scratch histogram boosting (public fit/predict_proba only)."""
    from scratch_ml.boosting import GradientBoostingClassifier

    from tabular_service.scorers import SklearnScorer

    params = {
        "n_estimators": 60 if quick else 500,
        "learning_rate": 0.05,
        "max_leaf_nodes": 8,
        "max_depth": 3,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
        "early_stopping": not quick,
        "validation_fraction": 0.15,
        "n_iter_no_change": 30,
        "random_state": seed,
    }
    start = time.perf_counter()
    model = GradientBoostingClassifier(**params).fit(
        enc.design(e.train, one_hot=False), data.y_train
    )
    return Candidate(
        "scratch_gb",
        SklearnScorer(model, enc, one_hot=False),
        params | {"categories": "integer codes (no native categorical splits)"},
        time.perf_counter() - start,
        one_hot=False,
    )


def train_mlp_candidate(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """The Lightning MLP, early-stopped on validation loss, exported to numpy."""
    from tabular_service.mlp import MLPConfig, embedding_dim, train_mlp

    config = MLPConfig(max_epochs=6, patience=2) if quick else MLPConfig()
    start = time.perf_counter()
    scorer = train_mlp(
        enc, (e.train, data.y_train), (e.valid, data.y_valid), config=config, seed=seed
    )
    dims = {name: embedding_dim(len(enc.vocabularies[name])) for name in CATEGORICAL}
    params = asdict(config) | {"embedding_dims": dims, "loss": "BCE (no pos_weight)"}
    params |= {"optimizer": "AdamW", "epochs_run": scorer.info["epochs"]}
    params |= {"best_epoch": scorer.info["best_epoch"]}
    return Candidate("mlp", scorer, params, time.perf_counter() - start)


TRAINERS: dict[str, Callable[..., Candidate]] = {
    "logistic": train_logistic,
    "hist_gb": train_hist_gb,
    "scratch_gb": train_scratch_gb,
    "mlp": train_mlp_candidate,
}


def available_models() -> list[str]:
    """The model families this environment can train (optional ones need their packages)."""
    names = ["logistic", "hist_gb"]
    if importlib.util.find_spec("scratch_ml") is not None:
        names.append("scratch_gb")
    if all(importlib.util.find_spec(m) is not None for m in ("torch", "lightning")):
        names.append("mlp")
    return names
