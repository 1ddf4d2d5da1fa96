"""The two model families the pipeline trains, and the fitted model both training and gates use.

- `logistic`: one-hot carriers and airports, median-imputed and standardised numerics, a
  logistic regression whose precipitation coefficient is constrained to be >= 0.
- `hist_gb`: scikit-learn's HistGradientBoostingClassifier with native categorical splits,
  native missing values and a monotonic constraint on precipitation.

Why the constraint: more rain should never make the model *less* sure a flight leaves late.
A tree ensemble fitted on a few months happily learns the opposite in a corner of the data
(a rainy evening that happened to run on time), which is noise that would also be served. The
direction gate (gates.direction_gate) tests the property on the fitted model; the constraint is
what makes it hold by construction.

A `FittedModel` selects its own columns from whatever frame it is given, so scoring a training
set row (keys, features and label) and scoring the bare feature frame give the same numbers,
and a model that does not list `flight` or `tailnum` cannot be influenced by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import ThreadpoolController

from mlops_pipeline.features.schema import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES

INCREASING = ("precip",)
"""Features the delay probability must never decrease with."""
MISSING_CATEGORY = "__missing__"
FAMILIES = ("logistic", "hist_gb")


@dataclass(frozen=True)
class ModelSpec:
    """What to train: a family, its hyper-parameters and the columns it may read."""

    family: str
    params: dict[str, Any] = field(default_factory=dict)
    numeric: tuple[str, ...] = tuple(NUMERIC_FEATURES)
    categorical: tuple[str, ...] = tuple(CATEGORICAL_FEATURES)
    increasing: tuple[str, ...] = INCREASING

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; expected one of {FAMILIES}")
        unknown = set(self.increasing) - set(self.numeric)
        if unknown:
            raise ValueError(f"monotone features {sorted(unknown)} are not numeric features")

    @property
    def name(self) -> str:
        return self.family

    @property
    def features(self) -> list[str]:
        return [*self.categorical, *self.numeric]


def default_specs() -> list[ModelSpec]:
    """The candidates the pipeline trains by default."""
    return [
        ModelSpec("logistic", {"C": 1.0, "max_iter": 1000}),
        ModelSpec(
            "hist_gb",
            {
                "max_iter": 200,
                "learning_rate": 0.08,
                "max_leaf_nodes": 31,
                "l2_regularization": 1.0,
            },
        ),
    ]


def feature_frame(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]):
    """The model's input: numerics as float64, categoricals as plain str, in a fixed order.

    One cast, shared by training, the pyfunc wrapper and the signature, so an int64 `month`
    from one builder and a float64 one from another score the same (MLflow's schema check
    refuses to turn int64 into double on its own).
    """
    missing = [c for c in (*categorical, *numeric) if c not in frame.columns]
    if missing:
        raise ValueError(f"feature frame is missing columns {missing}; it has {list(frame)}")
    # Built from arrays in one constructor: per-column assignment costs ~0.2 ms a column,
    # which dominated single-row scoring.
    columns: dict[str, np.ndarray] = {}
    for column in categorical:
        values = frame[column].astype("string").fillna(MISSING_CATEGORY)
        columns[column] = values.to_numpy(dtype=object)
    try:
        numbers = frame[list(numeric)].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise ValueError(f"feature frame: a numeric feature is not numeric: {error}") from error
    for j, column in enumerate(numeric):
        columns[column] = numbers[:, j]
    return pd.DataFrame(columns, index=frame.index)


class MonotoneLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression with coefficients of the first `n_increasing` columns kept >= 0.

    Active-set fit: fit freely, pin any constrained coefficient that came out negative to 0
    (drop its column) and refit, until none is negative. For a convex loss this is the
    constrained optimum whenever one pass suffices, which is the usual case with one
    constrained feature; the fitted coefficients are checked either way.
    """

    def __init__(self, n_increasing: int = 0, C: float = 1.0, max_iter: int = 1000):
        self.n_increasing = n_increasing
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        free = np.ones(X.shape[1], dtype=bool)
        while True:
            model = LogisticRegression(C=self.C, max_iter=self.max_iter)
            model.fit(X[:, free], y)
            coef = np.zeros(X.shape[1])
            coef[free] = model.coef_[0]
            negative = np.flatnonzero(coef[: self.n_increasing] < 0)
            if negative.size == 0:
                break
            free[negative] = False
        self.classes_ = model.classes_
        self.coef_ = coef[None, :]
        self.intercept_ = model.intercept_
        self.pinned_ = np.flatnonzero(~free[: self.n_increasing])
        assert (self.coef_[0, : self.n_increasing] >= 0).all()
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=np.float64) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        p = expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def build_pipeline(spec: ModelSpec) -> Pipeline:
    """An unfitted scikit-learn pipeline for `spec` (input: `feature_frame` output)."""
    increasing = [c for c in spec.numeric if c in spec.increasing]
    others = [c for c in spec.numeric if c not in spec.increasing]
    if spec.family == "logistic":
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        # Constrained columns first, so the estimator knows them by position; the scaler's
        # positive scale keeps "coefficient >= 0" equivalent to "non-decreasing in raw units".
        columns = ColumnTransformer(
            [
                ("numeric", numeric, [*increasing, *others]),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical)),
            ],
            sparse_threshold=0.0,
        )
        model = MonotoneLogisticRegression(n_increasing=len(increasing), **spec.params)
        return Pipeline([("columns", columns), ("model", model)])
    columns = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                list(spec.categorical),
            ),
            ("numeric", "passthrough", [*increasing, *others]),
        ]
    )
    n_cat = len(spec.categorical)
    model = HistGradientBoostingClassifier(
        categorical_features=list(range(n_cat)),
        monotonic_cst=[0] * n_cat + [1] * len(increasing) + [0] * len(others),
        early_stopping=False,
        random_state=0,
        **spec.params,
    )
    return Pipeline([("columns", columns), ("model", model)])


@dataclass
class FittedModel:
    """A trained pipeline plus the columns it reads: `predict_proba(frame)` on any row frame."""

    spec: ModelSpec
    pipeline: Pipeline

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def features(self) -> list[str]:
        return self.spec.features

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        return feature_frame(frame, self.spec.numeric, self.spec.categorical)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(delayed) for each row of `frame` (extra columns are ignored).

        Scoring runs on one OpenMP thread: the gradient-boosting predictor's thread team
        costs more than it saves on the small batches serving sends, and on a busy machine
        its spinning threads turned a 10 ms single-row p99 into 150 ms (measured).
        """
        with _controller().limit(limits=1, user_api="openmp"):
            return self.pipeline.predict_proba(self.inputs(frame))[:, 1]


@cache
def _controller() -> ThreadpoolController:
    # Inspecting the loaded native libraries takes milliseconds: do it once.
    return ThreadpoolController()


def fit_model(spec: ModelSpec, train: pd.DataFrame) -> FittedModel:
    """Fit `spec` on the training rows (label column `delayed`, 0/1, no missing labels)."""
    if LABEL not in train.columns:
        raise ValueError(f"training frame has no label column {LABEL!r}")
    y = train[LABEL]
    if y.isna().any():
        raise ValueError(f"training frame: {int(y.isna().sum())} rows with a missing {LABEL!r}")
    y = y.astype("int64").to_numpy()
    if len(np.unique(y)) < 2:
        raise ValueError(f"training frame: {LABEL!r} has a single class; cannot fit")
    pipeline = build_pipeline(spec)
    # One OpenMP thread: on a busy 2-core machine HistGB's threads fight over the cores and a
    # fit that takes ~1.5 s alone took ~30 s (measured); the data is small enough for one core.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        pipeline.fit(feature_frame(train, spec.numeric, spec.categorical), y)
    return FittedModel(spec, pipeline)
