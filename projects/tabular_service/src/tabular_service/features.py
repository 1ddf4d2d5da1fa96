"""The feature pipeline: raw applications in, numbers a model can use out.

One encoder serves training (a DataFrame of thousands of rows) and the service (one JSON object
per request). Both paths run the same arithmetic on the same fitted constants, which is what
prevents training/serving skew; `tests/test_features.py` checks they agree to the last bit.

The encoding:
- money fields (heavy right tails: income, balances, limits) go through `log1p` first;
- every numeric field is then standardised with the training mean and standard deviation
  (a constant column gets scale 1 so it cannot divide by zero);
- a categorical field becomes its index in the schema's list of allowed values, so codes are
  stable across retrains and need nothing learned. Linear models one-hot these codes; trees
  and the MLP's embeddings take them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tabular_service.schema import CATEGORICAL, NUMERIC, categories

if TYPE_CHECKING:  # the service never imports pandas: unpickling an encoder must not either
    import pandas as pd

#: Fields with a heavy right tail, compressed with log1p before standardising.
LOG_FIELDS: tuple[str, ...] = (
    "funded_amnt",
    "annual_inc",
    "total_bal_il",
    "delinq_amnt",
    "total_il_high_credit_limit",
)


@dataclass(frozen=True)
class EncodedBatch:
    """A batch as models see it: standardised numerics and integer category codes."""

    numeric: np.ndarray  # float64, (n, len(NUMERIC))
    codes: np.ndarray  # int64, (n, len(CATEGORICAL)), code i = categories(field)[i]

    def __len__(self) -> int:
        return self.numeric.shape[0]


class FeatureEncoder:
    """Fit on training rows, then encode DataFrames or request records identically."""

    def __init__(self) -> None:
        self.log_mask = np.array([name in LOG_FIELDS for name in NUMERIC])
        self.vocabularies = {name: categories(name) for name in CATEGORICAL}
        self._index = {
            name: {value: i for i, value in enumerate(values)}
            for name, values in self.vocabularies.items()
        }
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, X: pd.DataFrame) -> FeatureEncoder:
        """Learn the standardisation constants from the training rows only."""
        raw = X.loc[:, list(NUMERIC)].to_numpy(dtype=np.float64)
        compressed = scale_numeric(
            raw, self.log_mask, np.zeros(len(NUMERIC)), np.ones(len(NUMERIC))
        )
        self.mean_, self.scale_ = standardisation(compressed)
        return self

    # ------------------------------------------------------------------ encoding
    def transform(self, X: pd.DataFrame) -> EncodedBatch:
        """Encode a DataFrame with the schema's columns (training, batch scoring)."""
        raw = X.loc[:, list(NUMERIC)].to_numpy(dtype=np.float64)
        mapped = [X[name].map(self._index[name]) for name in CATEGORICAL]
        if any(column.isna().any() for column in mapped):
            raise ValueError("a categorical value is outside the schema")
        codes = np.column_stack([column.to_numpy() for column in mapped])
        return EncodedBatch(self._scale(raw), codes.astype(np.int64))

    def encode_records(self, records: Sequence[Mapping[str, object]]) -> EncodedBatch:
        """Encode request records (dicts with the schema's fields) without pandas.

        The service's hot path: building a DataFrame for one row costs more than the model.
        Records are assumed validated (by `schema.LoanApplication`); a missing field raises
        KeyError and an unknown category raises KeyError naming the value.
        """
        raw = np.array([[record[name] for name in NUMERIC] for record in records], np.float64)
        codes = np.array(
            [[self._index[name][record[name]] for name in CATEGORICAL] for record in records],
            dtype=np.int64,
        )
        return EncodedBatch(self._scale(raw.reshape(len(records), len(NUMERIC))), codes)

    def one_hot(self, codes: np.ndarray) -> np.ndarray:
        """Expand category codes into indicator columns (for linear models), schema order."""
        blocks = []
        for j, name in enumerate(CATEGORICAL):
            block = np.zeros((codes.shape[0], len(self.vocabularies[name])))
            block[np.arange(codes.shape[0]), codes[:, j]] = 1.0
            blocks.append(block)
        return np.hstack(blocks)

    def feature_names(self, one_hot: bool) -> list[str]:
        """Column names of `design(..., one_hot)`, for importances and the model card."""
        names = list(NUMERIC)
        for name in CATEGORICAL:
            names += [f"{name}={v}" for v in self.vocabularies[name]] if one_hot else [name]
        return names

    def design(self, batch: EncodedBatch, one_hot: bool) -> np.ndarray:
        """One dense float matrix: numerics, then one-hot indicators or raw category codes."""
        cats = self.one_hot(batch.codes) if one_hot else batch.codes.astype(np.float64)
        return np.hstack([batch.numeric, cats])

    # ------------------------------------------------------------------ helpers
    def _scale(self, raw: np.ndarray) -> np.ndarray:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("FeatureEncoder is not fitted: call fit(X_train) first")
        return scale_numeric(raw, self.log_mask, self.mean_, self.scale_)


def standardisation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations, with 1.0 for a constant column."""
    # BEGIN SOLUTION 1.7: standardisation constants
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return mean, scale
    # END SOLUTION


def scale_numeric(
    raw: np.ndarray, log_mask: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """log1p the masked columns, then standardise every column: (x - mean) / scale."""
    # BEGIN SOLUTION 1.7: compress and standardise
    out = np.array(raw, dtype=np.float64, copy=True)
    out[:, log_mask] = np.log1p(out[:, log_mask])
    return (out - mean) / scale
    # END SOLUTION
