"""Checkpoints 1.7 and 1.8: the feature pipeline and the cost-optimal threshold (tabular_service).

1.7 grades `tabular_service.features`: standardisation constants, the log1p-then-standardise
transform, and that the training path (a DataFrame) and the serving path (request dicts) give
the same numbers. 1.8 grades `tabular_service.evaluation.cost_optimal_threshold` against a
brute-force search written out here. Nothing is compared with the reference implementation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from learn.testing import import_learner


@pytest.fixture
def features():
    return import_learner("tabular_service.features")


@pytest.fixture
def evaluation():
    return import_learner("tabular_service.evaluation")


@pytest.fixture
def schema():
    return import_learner("tabular_service.schema")


def _applications(schema, n: int, seed: int) -> pd.DataFrame:
    """`n` valid applications: the schema's example with numerics and categories varied."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        row = dict(schema.EXAMPLE_APPLICATION)
        for name in schema.NUMERIC:
            row[name] = float(rng.integers(0, 50_000) if name != "int_rate" else rng.uniform(5, 30))
        for name in schema.CATEGORICAL:
            values = schema.categories(name)
            row[name] = values[rng.integers(len(values))]
        rows.append(row)
    return pd.DataFrame(rows, columns=list(schema.FIELDS))


# ------------------------------------------------------------------------- 1.7 features


@pytest.mark.checkpoint("1.7")
def test_standardisation_constants(features):
    """Column means and (population) standard deviations; a constant column gets scale 1."""
    rng = np.random.default_rng(7)
    values = np.column_stack([rng.normal(3, 2, 500), rng.exponential(5, 500), np.full(500, 4.0)])
    mean, scale = features.standardisation(values)
    np.testing.assert_allclose(mean, [values[:, 0].mean(), values[:, 1].mean(), 4.0])
    np.testing.assert_allclose(scale, [values[:, 0].std(), values[:, 1].std(), 1.0])


@pytest.mark.checkpoint("1.7")
def test_scale_numeric_compresses_then_standardises(features):
    """Masked columns go through log1p before (x - mean) / scale; the input is left unchanged."""
    raw = np.array([[0.0, 1.0], [9.0, 3.0], [99.0, 5.0]])
    before = raw.copy()
    mask = np.array([True, False])
    mean, scale = np.array([1.0, 2.0]), np.array([2.0, 4.0])
    out = features.scale_numeric(raw, mask, mean, scale)
    expected = np.column_stack([(np.log1p(raw[:, 0]) - 1.0) / 2.0, (raw[:, 1] - 2.0) / 4.0])
    np.testing.assert_allclose(out, expected)
    np.testing.assert_array_equal(raw, before)


@pytest.mark.checkpoint("1.7")
def test_training_rows_come_out_standardised(features, schema):
    """After fit, every numeric column of the training rows has mean 0 and standard deviation 1."""
    X = _applications(schema, 400, seed=1)
    encoder = features.FeatureEncoder().fit(X)
    batch = encoder.transform(X)
    assert batch.numeric.shape == (400, len(schema.NUMERIC))
    np.testing.assert_allclose(batch.numeric.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(batch.numeric.std(axis=0), 1.0, atol=1e-9)


@pytest.mark.checkpoint("1.7")
def test_serving_path_equals_training_path(features, schema):
    """Request dicts and a DataFrame of the same rows encode to identical numbers (no skew)."""
    X_train = _applications(schema, 300, seed=2)
    X_new = _applications(schema, 50, seed=3)
    encoder = features.FeatureEncoder().fit(X_train)
    from_frame = encoder.transform(X_new)
    from_records = encoder.encode_records(X_new.to_dict("records"))
    np.testing.assert_array_equal(from_records.numeric, from_frame.numeric)
    np.testing.assert_array_equal(from_records.codes, from_frame.codes)
    one = encoder.encode_records([X_new.iloc[0].to_dict()])
    np.testing.assert_array_equal(one.numeric[0], from_frame.numeric[0])


# ------------------------------------------------------------------------ 1.8 threshold


def _brute_force_min_cost(y, p, missed: float, rejected: float) -> float:
    """The lowest cost over every possible decision rule "reject p >= t"."""
    candidates = np.append(np.unique(p), np.inf)  # np.inf: approve everyone
    costs = [
        (np.sum((p < t) & (y == 1)) * missed + np.sum((p >= t) & (y == 0)) * rejected) / len(y)
        for t in candidates
    ]
    return float(min(costs))


@pytest.mark.checkpoint("1.8")
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_threshold_reaches_the_brute_force_minimum(evaluation, seed):
    """On random scores with many ties, the chosen threshold costs exactly the minimum."""
    rng = np.random.default_rng(seed)
    y = (rng.random(800) < 0.1).astype(int)
    p = np.round(np.clip(0.1 + 0.3 * y * rng.random(800) + 0.2 * rng.random(800), 0, 1), 2)
    costs = evaluation.Costs(missed_default=5.0, rejected_good=1.0)
    threshold = evaluation.cost_optimal_threshold(y, p, costs)
    got = evaluation.expected_cost(y, p, threshold, costs)
    assert got == pytest.approx(_brute_force_min_cost(y, p, 5.0, 1.0), abs=1e-12)


@pytest.mark.checkpoint("1.8")
def test_threshold_moves_with_the_costs(evaluation):
    """A dearer missed default lowers the threshold (reject more); a dearer rejection raises it."""
    rng = np.random.default_rng(5)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)  # calibrated scores
    low = evaluation.cost_optimal_threshold(y, p, evaluation.Costs(9.0, 1.0))
    high = evaluation.cost_optimal_threshold(y, p, evaluation.Costs(1.0, 9.0))
    assert low < high
    # With calibrated scores the optimum sits near the Bayes threshold c_fp / (c_fp + c_fn).
    assert low == pytest.approx(0.1, abs=0.05)
    assert high == pytest.approx(0.9, abs=0.05)


@pytest.mark.checkpoint("1.8")
def test_threshold_separates_a_separable_problem(evaluation):
    """When every default scores above every good loan, no mistake is made."""
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    threshold = evaluation.cost_optimal_threshold(y, p)
    assert 0.3 < threshold <= 0.7
    assert evaluation.expected_cost(y, p, threshold) == 0.0
