"""The feature pipeline: records path == frame path, standardisation, one-hot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabular_service.data import Split
from tabular_service.features import (
    LOG_FIELDS,
    FeatureEncoder,
    scale_numeric,
    standardisation,
)
from tabular_service.schema import CATEGORICAL, EXAMPLE_APPLICATION, NUMERIC, categories


def _records(X: pd.DataFrame) -> list[dict]:
    """Rows as a JSON client would send them (Python floats/ints/strings)."""
    return X.to_dict(orient="records")


def test_records_path_equals_frame_path_bit_for_bit(
    loans: Split, fitted_encoder: FeatureEncoder
) -> None:
    frame = fitted_encoder.transform(loans.X_test)
    records = fitted_encoder.encode_records(_records(loans.X_test))
    assert frame.numeric.dtype == records.numeric.dtype == np.float64
    assert frame.codes.dtype == records.codes.dtype == np.int64
    assert np.array_equal(frame.numeric, records.numeric)  # exact, not approximately
    assert np.array_equal(frame.codes, records.codes)
    assert frame.numeric.shape == (len(loans.X_test), len(NUMERIC))
    assert frame.codes.shape == (len(loans.X_test), len(CATEGORICAL))


def test_single_record_matches_its_row(fitted_encoder: FeatureEncoder) -> None:
    one = fitted_encoder.encode_records([EXAMPLE_APPLICATION])
    frame = fitted_encoder.transform(pd.DataFrame([EXAMPLE_APPLICATION]))
    assert np.array_equal(one.numeric, frame.numeric)
    assert one.codes[0, CATEGORICAL.index("sub_grade")] == categories("sub_grade").index("C4")


def test_standardisation_constants_come_from_training_rows(
    loans: Split, fitted_encoder: FeatureEncoder
) -> None:
    raw = loans.X_train.loc[:, list(NUMERIC)].to_numpy(dtype=np.float64)
    for j, name in enumerate(NUMERIC):
        column = np.log1p(raw[:, j]) if name in LOG_FIELDS else raw[:, j]
        assert fitted_encoder.mean_[j] == pytest.approx(column.mean(), rel=1e-12, abs=1e-12)
        expected_scale = column.std() if column.std() > 0 else 1.0
        assert fitted_encoder.scale_[j] == pytest.approx(expected_scale, rel=1e-12)
    train = fitted_encoder.transform(loans.X_train).numeric
    varying = fitted_encoder.scale_ != 1.0
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(train[:, varying].std(axis=0), 1.0, rtol=1e-10)


def test_constant_column_gets_scale_one() -> None:
    values = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    mean, scale = standardisation(values)
    np.testing.assert_array_equal(mean, [3.0, 5.0])
    assert scale[1] == 1.0
    assert scale[0] == pytest.approx(np.sqrt(8 / 3))
    out = scale_numeric(values, np.array([False, False]), mean, scale)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 1], 0.0)


def test_log_fields_are_compressed_before_scaling() -> None:
    raw = np.array([[0.0, 2.0], [np.e - 1, 4.0]])
    out = scale_numeric(raw, np.array([True, False]), np.zeros(2), np.ones(2))
    np.testing.assert_allclose(out, [[0.0, 2.0], [1.0, 4.0]])
    assert raw[1, 0] == np.e - 1  # input untouched


def test_one_hot_and_feature_names(fitted_encoder: FeatureEncoder) -> None:
    codes = np.array([[0, 0, 0, 0, 0], [1, 34, 49, 2, 11]])
    hot = fitted_encoder.one_hot(codes)
    sizes = [len(categories(name)) for name in CATEGORICAL]
    assert hot.shape == (2, sum(sizes))
    np.testing.assert_array_equal(hot.sum(axis=1), len(CATEGORICAL))  # one 1 per field
    names = fitted_encoder.feature_names(one_hot=True)
    active = [names[len(NUMERIC) + i] for i in np.flatnonzero(hot[1])]
    assert active == ["term=term_60", "sub_grade=G5", "addr_state=WY",
                      "verification_status=Verified", "emp_length=emp_unk"]  # fmt: skip
    assert fitted_encoder.feature_names(one_hot=False) == [*NUMERIC, *CATEGORICAL]


def test_design_shapes(loans: Split, fitted_encoder: FeatureEncoder) -> None:
    batch = fitted_encoder.transform(loans.X_valid.head(10))
    assert fitted_encoder.design(batch, one_hot=False).shape == (10, 22)
    n_hot = len(NUMERIC) + sum(len(categories(c)) for c in CATEGORICAL)
    assert fitted_encoder.design(batch, one_hot=True).shape == (10, n_hot)


def test_unfitted_encoder_and_unknown_category_fail_clearly(loans: Split) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureEncoder().transform(loans.X_test)
    encoder = FeatureEncoder().fit(loans.X_train)
    bad = loans.X_test.head(3).copy()
    bad["term"] = "term_48"
    with pytest.raises(ValueError, match="outside the schema"):
        encoder.transform(bad)
    with pytest.raises(KeyError):
        encoder.encode_records([{**EXAMPLE_APPLICATION, "term": "term_48"}])
