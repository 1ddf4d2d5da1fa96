"""scratch_ml.binning against scikit-learn's _BinMapper and against its own definition."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

from scratch_ml.base import NotFittedError
from scratch_ml.binning import BinMapper, find_bin_thresholds, map_to_bins


def _data(seed=0, n=5000):
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.normal(size=n),  # continuous
            rng.exponential(size=n) ** 3,  # heavy tail
            rng.integers(0, 7, n).astype(float),  # few distinct values
            np.round(rng.normal(size=n), 1),  # many ties
            np.full(n, 3.0),  # constant
        ]
    )


@pytest.mark.parametrize("max_bins", [2, 16, 255])
def test_thresholds_match_sklearn_bin_mapper(max_bins):
    X = _data()
    ours = BinMapper(max_bins=max_bins, subsample=None).fit(X)
    theirs = _BinMapper(n_bins=max_bins + 1, subsample=None).fit(X)
    for mine, sk in zip(ours.bin_thresholds_, theirs.bin_thresholds_, strict=True):
        np.testing.assert_allclose(mine, sk)
    np.testing.assert_array_equal(ours.transform(X), theirs.transform(X))
    np.testing.assert_array_equal(ours.n_bins_per_feature_, theirs.n_bins_non_missing_)


def test_few_distinct_values_get_midpoints():
    values = np.array([5.0, 1.0, 3.0, 3.0, 1.0, 10.0])
    np.testing.assert_array_equal(find_bin_thresholds(values, 255), [2.0, 4.0, 7.5])
    np.testing.assert_array_equal(find_bin_thresholds(np.ones(10), 255), [])


def test_at_most_max_bins_and_equal_frequency():
    x = np.random.default_rng(1).normal(size=10_000)
    thresholds = find_bin_thresholds(x, 10)
    assert len(thresholds) == 9 and np.all(np.diff(thresholds) > 0)
    counts = np.bincount(map_to_bins(x, thresholds))
    assert counts.min() == 1000 == counts.max()  # deciles of distinct values: exactly equal


def test_values_land_between_their_bin_edges():
    x = np.random.default_rng(2).standard_t(3, size=3000)
    thresholds = find_bin_thresholds(x, 32)
    codes = map_to_bins(x, thresholds).astype(int)
    edges = np.concatenate(([-np.inf], thresholds, [np.inf]))
    assert np.all(edges[codes] < x) and np.all(x <= edges[codes + 1])
    # a value equal to a threshold goes to the lower bin
    assert map_to_bins(thresholds[:1], thresholds)[0] == 0


def test_transform_is_uint8_fortran_and_handles_unseen_values():
    X = _data()
    mapper = BinMapper().fit(X)
    binned = mapper.transform(X)
    assert binned.dtype == np.uint8 and binned.flags.f_contiguous
    assert binned.max(axis=0).tolist() == (mapper.n_bins_per_feature_ - 1).tolist()
    extreme = np.array([[-1e9, -1e9, -1e9, -1e9, -1e9], [1e9, 1e9, 1e9, 1e9, 1e9]])
    out = mapper.transform(extreme)
    np.testing.assert_array_equal(out[0], 0)
    np.testing.assert_array_equal(out[1], mapper.n_bins_per_feature_ - 1)


def test_subsample_is_seeded_and_close_to_full():
    x = np.random.default_rng(3).normal(size=(50_000, 1))
    a = BinMapper(subsample=5000, random_state=0).fit(x).bin_thresholds_[0]
    b = BinMapper(subsample=5000, random_state=0).fit(x).bin_thresholds_[0]
    full = BinMapper(subsample=None).fit(x).bin_thresholds_[0]
    np.testing.assert_array_equal(a, b)
    assert len(a) == len(full) == 254
    # each subsample threshold sits at nearly the same quantile of the full data
    levels = np.searchsorted(np.sort(x[:, 0]), a) / len(x)
    np.testing.assert_allclose(levels, np.arange(1, 255) / 255, atol=0.01)
    assert np.abs(a - full)[10:-10].max() < 0.05  # the tails are where subsampling shows


def test_errors():
    with pytest.raises(NotFittedError):
        BinMapper().transform(np.ones((2, 2)))
    for params in ({"max_bins": 256}, {"max_bins": 1}, {"subsample": 0}):
        (param,) = params
        with pytest.raises(ValueError, match=f"^The '{param}' parameter of BinMapper must be"):
            BinMapper(**params).fit(np.ones((3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        BinMapper().fit(np.array([[1.0], [np.nan]]))
    mapper = BinMapper().fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="features"):
        mapper.transform(np.ones((3, 3)))
