"""Input validation with scikit-learn's behaviour and error messages, in plain numpy.

Learners compare their errors with scikit-learn's, and scikit-learn's estimator checks match
some messages by text, so the wording here follows scikit-learn's on purpose.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def _feature_names(X: Any) -> np.ndarray | None:
    """Column names of a DataFrame-like X when they are all strings (scikit-learn's rule)."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(list(columns), dtype=object)
    if len(names) and all(isinstance(n, str) for n in names):
        return names
    return None


def check_array(
    X: Any,
    *,
    estimator: Any = None,
    ensure_2d: bool = True,
    allow_nan: bool = False,
    dtype: Any = np.float64,
    ensure_min_samples: int = 1,
    ensure_min_features: int = 1,
    input_name: str = "X",
) -> np.ndarray:
    """Convert to a float array and reject what no estimator here can fit or predict on."""
    name = type(estimator).__name__ if estimator is not None else "this estimator"
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(
            f"Sparse data was passed for {input_name}, but dense data is required by {name}. "
            "Use X.toarray() to convert to a dense numpy array."
        )
    try:
        with warnings.catch_warnings():
            # Casting complex to float drops the imaginary part with only a ComplexWarning.
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            array = np.asarray(X, dtype=dtype)
    except np.exceptions.ComplexWarning:
        raise ValueError("Complex data not supported") from None
    except TypeError as exc:  # e.g. a dict in an object array: keep numpy's wording and type
        raise TypeError(f"{input_name} must be numeric for {name}: {exc}") from None
    except ValueError as exc:
        raise ValueError(
            f"{input_name} must be numeric for {name}: could not convert to float ({exc}). "
            "Encode categorical or string columns first."
        ) from None
    if array.dtype.kind == "c":
        raise ValueError("Complex data not supported")
    if ensure_2d:
        if array.ndim == 0:
            raise ValueError(
                f"Expected 2D array, got scalar array instead:\narray={array}.\n"
                "Reshape your data either using array.reshape(-1, 1) if your data has a single "
                "feature or array.reshape(1, -1) if it contains a single sample."
            )
        if array.ndim == 1:
            raise ValueError(
                f"Expected 2D array, got 1D array instead:\narray={array}.\n"
                "Reshape your data either using array.reshape(-1, 1) if your data has a single "
                "feature or array.reshape(1, -1) if it contains a single sample."
            )
        if array.ndim > 2:
            raise ValueError(f"Found array with dim {array.ndim}. {name} expected <= 2.")
    n_samples = array.shape[0] if array.ndim else 1
    if n_samples < ensure_min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={array.shape}) while a minimum of "
            f"{ensure_min_samples} is required by {name}."
        )
    if ensure_2d and array.shape[1] < ensure_min_features:
        raise ValueError(
            f"Found array with {array.shape[1]} feature(s) (shape={array.shape}) while a "
            f"minimum of {ensure_min_features} is required by {name}."
        )
    if array.dtype.kind == "f":
        if not allow_nan and np.isnan(array).any():
            raise ValueError(
                f"Input {input_name} contains NaN. {name} does not accept missing values "
                "encoded as NaN natively; impute them first."
            )
        if np.isinf(array).any():
            raise ValueError(f"Input {input_name} contains infinity or a value too large.")
    return array


class DataConversionWarning(UserWarning):
    """Input was converted in a way the caller may not expect (scikit-learn's warning)."""


def column_or_1d(y: Any, *, input_name: str = "y", warn: bool = True) -> np.ndarray:
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        if warn:  # scikit-learn's wording, which its estimator checks look for
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples, ), for example using ravel().",
                DataConversionWarning,
                stacklevel=3,
            )
        array = array.ravel()
    if array.ndim != 1:
        raise ValueError(
            f"{input_name} should be a 1d array, got an array of shape {array.shape} instead."
        )
    return array


def check_X_y(
    X: Any, y: Any, *, estimator: Any = None, allow_nan: bool = False, y_numeric: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training pair: 2-D finite X, 1-D y of the same length."""
    if y is None:
        name = type(estimator).__name__ if estimator is not None else "this estimator"
        raise ValueError(f"{name} requires y to be passed, but the target y is None.")
    X_arr = check_array(X, estimator=estimator, allow_nan=allow_nan)
    y_arr = column_or_1d(y)
    if y_numeric:
        y_arr = check_array(y_arr, estimator=estimator, ensure_2d=False, input_name="y")
    elif y_arr.dtype.kind == "f" and not np.isfinite(y_arr).all():
        raise ValueError("Input y contains NaN or infinity.")
    if len(y_arr) != X_arr.shape[0]:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{X_arr.shape[0]}, {len(y_arr)}]"
        )
    return X_arr, y_arr


def check_classification_targets(y: np.ndarray) -> None:
    """Refuse continuous targets for a classifier, as scikit-learn does."""
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise ValueError(
            "Unknown label type: continuous. Maybe you are trying to fit a classifier, which "
            "expects discrete classes on a regression target with continuous values."
        )


def encode_labels(y: np.ndarray, estimator: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """classes_ (sorted unique labels, any dtype) and y as indices into them."""
    check_classification_targets(y)
    classes, encoded = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        name = type(estimator).__name__ if estimator is not None else "a classifier"
        raise ValueError(
            f"{name} needs samples of at least 2 classes in the data, but the data contains "
            f"only one class: {classes[0]!r}"
        )
    return classes, encoded


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n_samples)
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == 0:
        return np.full(n_samples, float(weights))
    if weights.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {weights.shape}, expected {(n_samples,)}!")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("sample_weight must be finite and non-negative.")
    return weights


def record_features(estimator: Any, X_raw: Any, X: np.ndarray) -> None:
    """Set n_features_in_ (and feature_names_in_ for DataFrames) during fit."""
    estimator.n_features_in_ = X.shape[1]
    names = _feature_names(X_raw)
    if names is not None:
        estimator.feature_names_in_ = names
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def check_features(estimator: Any, X_raw: Any, X: np.ndarray) -> None:
    """At predict time: the same number (and names) of features as seen in fit."""
    import warnings

    fitted_names = getattr(estimator, "feature_names_in_", None)
    names = _feature_names(X_raw)
    name = type(estimator).__name__
    if fitted_names is not None and names is None:
        warnings.warn(
            f"X does not have valid feature names, but {name} was fitted with feature names",
            UserWarning,
            stacklevel=3,
        )
    elif fitted_names is None and names is not None:
        warnings.warn(
            f"X has feature names, but {name} was fitted without feature names",
            UserWarning,
            stacklevel=3,
        )
    elif (
        fitted_names is not None
        and names is not None
        and (len(fitted_names) != len(names) or (fitted_names != names).any())
    ):
        raise ValueError(
            "The feature names should match those that were passed during fit.\n"
            f"Feature names seen at fit time: {list(fitted_names)}; now: {list(names)}"
        )
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {name} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
