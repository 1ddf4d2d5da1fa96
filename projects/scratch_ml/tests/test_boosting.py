"""scratch_ml.boosting next to scikit-learn's HistGradientBoosting, plus its own contracts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from scratch_ml import InvalidParameterError, boosting
from scratch_ml.base import NotFittedError
from scratch_ml.boosting import GradientBoostingClassifier, GradientBoostingRegressor
from scratch_ml.metrics import log_loss, r2_score, roc_auc_score

# One expected failure each, the same one scikit-learn expects of its HistGradientBoosting:
# min_samples_leaf counts rows, not weights (so that weights summing to 1 still allow
# splits), hence an integer weight is not the same as repeating the row.
_WEIGHTS_ARE_NOT_REPEATS = (
    "sample_weight is not equivalent to removing/repeating samples: min_samples_leaf counts "
    "rows, as in scikit-learn's HistGradientBoosting, which expects this failure too."
)
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    name: {"check_sample_weight_equivalence_on_dense_data": _WEIGHTS_ARE_NOT_REPEATS}
    for name in ("GradientBoostingClassifier", "GradientBoostingRegressor")
}


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    """HistGradientBoosting's OpenMP threads can spin for minutes on a busy 2-core machine."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@parametrize_with_checks(
    [
        GradientBoostingClassifier(n_estimators=10, min_samples_leaf=5, early_stopping=False),
        GradientBoostingRegressor(n_estimators=10, min_samples_leaf=5, early_stopping=False),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _sk_params(**kw):
    """Our parameter names -> HistGradientBoosting's (n_estimators is its max_iter)."""
    kw["max_iter"] = kw.pop("n_estimators", 100)
    return kw


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_leaf_nodes": 8, "learning_rate": 0.3},
        {"max_depth": 3, "max_leaf_nodes": None, "l2_regularization": 1.0},
    ],
)
def test_breast_cancer_auc_matches_hist_gradient_boosting(breast_cancer, params):
    X_train, X_test, y_train, y_test = breast_cancer
    ours = GradientBoostingClassifier(early_stopping=False, random_state=0, **params)
    theirs = HistGradientBoostingClassifier(
        early_stopping=False, random_state=0, **_sk_params(**params)
    )
    auc_ours = roc_auc_score(y_test, ours.fit(X_train, y_train).predict_proba(X_test)[:, 1])
    auc_theirs = roc_auc_score(y_test, theirs.fit(X_train, y_train).predict_proba(X_test)[:, 1])
    assert auc_ours == pytest.approx(auc_theirs, abs=0.005)
    assert ours.score(X_test, y_test) >= theirs.score(X_test, y_test) - 0.03


def test_synthetic_predictions_match_hist_gradient_boosting():
    """Same bins, same greedy trees: on well-separated gains the models agree closely."""
    X, y = make_classification(n_samples=4000, n_features=10, n_informative=6, random_state=1)
    ours = GradientBoostingClassifier(n_estimators=50, early_stopping=False).fit(X, y)
    theirs = HistGradientBoostingClassifier(max_iter=50, early_stopping=False).fit(X, y)
    p_ours, p_theirs = ours.predict_proba(X)[:, 1], theirs.predict_proba(X)[:, 1]
    assert np.abs(p_ours - p_theirs).mean() < 1e-3
    assert log_loss(y, p_ours) == pytest.approx(log_loss(y, p_theirs), rel=1e-3)


def test_multiclass_matches_hist_gradient_boosting():
    X, y = load_iris(return_X_y=True)
    ours = GradientBoostingClassifier(n_estimators=30, early_stopping=False).fit(X, y)
    theirs = HistGradientBoostingClassifier(max_iter=30, early_stopping=False).fit(X, y)
    assert ours.n_trees_per_iteration_ == 3
    assert ours.decision_function(X).shape == (150, 3)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-3)


def test_regressor_matches_hist_gradient_boosting():
    X, y = make_regression(n_samples=2000, n_features=8, noise=5.0, random_state=0)
    ours = GradientBoostingRegressor(n_estimators=50, early_stopping=False).fit(X, y)
    theirs = HistGradientBoostingRegressor(max_iter=50, early_stopping=False).fit(X, y)
    assert r2_score(y, ours.predict(X)) == pytest.approx(r2_score(y, theirs.predict(X)), abs=1e-3)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-4, atol=1e-3)


def test_train_score_is_negative_training_loss():
    X, y = make_classification(n_samples=500, random_state=0)
    model = GradientBoostingClassifier(n_estimators=15, early_stopping=False).fit(X, y)
    assert model.n_iter_ == 15 and model.train_score_.shape == (16,)
    assert model.validation_score_.shape == (0,)
    # index 0 is the baseline: the log-loss of predicting the class prior everywhere
    prior = y.mean()
    assert -model.train_score_[0] == pytest.approx(log_loss(y, np.full(len(y), prior)))
    assert -model.train_score_[-1] == pytest.approx(log_loss(y, model.predict_proba(X)[:, 1]))
    assert np.all(np.diff(model.train_score_) > 0)  # small steps: the loss only goes down


def test_staged_predictions_end_at_the_final_model():
    X, y = load_iris(return_X_y=True)
    model = GradientBoostingClassifier(n_estimators=7, early_stopping=False).fit(X, y)
    stages = list(model.staged_predict_proba(X))
    assert len(stages) == 7
    np.testing.assert_allclose(stages[-1], model.predict_proba(X))
    np.testing.assert_array_equal(list(model.staged_predict(X))[-1], model.predict(X))
    Xr, yr = make_regression(n_samples=200, random_state=0)
    reg = GradientBoostingRegressor(n_estimators=5, early_stopping=False).fit(Xr, yr)
    np.testing.assert_allclose(list(reg.staged_predict(Xr))[-1], reg.predict(Xr))


class TestEarlyStopping:
    def test_auto_is_on_above_10000_samples(self):
        X, y = make_classification(n_samples=10_001, n_features=5, random_state=0)
        big = GradientBoostingClassifier(n_estimators=3).fit(X, y)
        small = GradientBoostingClassifier(n_estimators=3).fit(X[:10_000], y[:10_000])
        assert big.do_early_stopping_ and not small.do_early_stopping_
        assert big.validation_score_.shape == (4,)

    def test_stops_when_validation_loss_stalls(self):
        # Pure noise: the validation loss stops improving almost at once.
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(2000, 5)), rng.integers(0, 2, 2000)
        model = GradientBoostingClassifier(
            n_estimators=500, early_stopping=True, n_iter_no_change=5, random_state=0
        ).fit(X, y)
        assert model.n_iter_ < 50
        scores = model.validation_score_
        assert len(scores) == model.n_iter_ + 1
        # the rule: none of the last 5 scores beats the one before them by more than tol
        assert not np.any(scores[-5:] > scores[-6] + model.tol)

    def test_learnable_problem_runs_longer_than_noise(self):
        X, y = make_classification(n_samples=3000, n_features=10, random_state=0)
        model = GradientBoostingClassifier(
            n_estimators=200, early_stopping=True, random_state=0
        ).fit(X, y)
        assert model.n_iter_ > 20

    def test_validation_split_is_stratified_and_seeded(self):
        X, y = make_classification(n_samples=1000, weights=[0.9], random_state=0)
        model = GradientBoostingClassifier(early_stopping=True, validation_fraction=0.2)
        train, val = model._validation_split(y, np.random.default_rng(0))
        assert len(val) == 200 and len(np.intersect1d(train, val)) == 0
        assert y[val].mean() == pytest.approx(y.mean(), abs=0.01)
        train2, val2 = model._validation_split(y, np.random.default_rng(0))
        np.testing.assert_array_equal(val, val2)

    def test_without_validation_set_uses_training_loss(self):
        X, y = make_classification(n_samples=300, random_state=0)
        model = GradientBoostingClassifier(
            n_estimators=1000, early_stopping=True, validation_fraction=None, tol=1e-3
        ).fit(X, y)
        assert model.validation_score_.shape == (0,)
        assert model.n_iter_ < 1000


def test_subsample_is_reproducible_and_changes_the_model():
    X, y = make_classification(n_samples=1000, random_state=0)
    kw = {"n_estimators": 20, "subsample": 0.5, "early_stopping": False}
    a = GradientBoostingClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
    b = GradientBoostingClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
    c = GradientBoostingClassifier(random_state=4, **kw).fit(X, y).predict_proba(X)
    full = GradientBoostingClassifier(n_estimators=20, early_stopping=False).fit(X, y)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, full.predict_proba(X))
    # still a good model, and the out-of-bag rows were updated too: training loss falls
    assert roc_auc_score(y, a[:, 1]) > 0.95


def test_feature_importances_find_the_informative_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 6))
    y = (X[:, 2] + 0.5 * X[:, 4] > 0).astype(int)
    model = GradientBoostingClassifier(n_estimators=30, early_stopping=False).fit(X, y)
    importances = model.feature_importances_
    assert importances.shape == (6,) and importances.sum() == pytest.approx(1.0)
    assert set(np.argsort(importances)[-2:]) == {2, 4}
    assert importances[2] > importances[4]


def test_feature_importances_are_zero_without_splits():
    X = np.random.default_rng(0).normal(size=(50, 3))
    model = GradientBoostingRegressor(n_estimators=3).fit(X, np.ones(50))
    np.testing.assert_array_equal(model.feature_importances_, np.zeros(3))


def test_max_leaf_nodes_and_max_depth_bound_the_trees():
    X, y = make_classification(n_samples=2000, random_state=0)
    model = GradientBoostingClassifier(n_estimators=5, max_leaf_nodes=7).fit(X, y)
    assert all(t.n_leaves <= 7 for trees in model._predictors for t in trees)
    deep = GradientBoostingClassifier(n_estimators=5, max_leaf_nodes=None, max_depth=2)
    deep.fit(X, y)
    assert all(t.depth <= 2 and t.n_leaves <= 4 for trees in deep._predictors for t in trees)


def test_min_samples_leaf_is_respected():
    X, y = make_classification(n_samples=500, random_state=0)
    model = GradientBoostingClassifier(n_estimators=3, min_samples_leaf=60).fit(X, y)
    for trees in model._predictors:
        leaves = trees[0].apply(X, binned=False)
        assert np.bincount(leaves)[np.unique(leaves)].min() >= 60


def test_sample_weight_matters_and_ones_change_nothing():
    X, y = make_classification(n_samples=400, random_state=0)
    base = GradientBoostingClassifier(n_estimators=10).fit(X, y).predict_proba(X)
    ones = GradientBoostingClassifier(n_estimators=10).fit(X, y, np.ones(400)).predict_proba(X)
    np.testing.assert_allclose(base, ones)
    w = np.where(y == 1, 5.0, 1.0)
    heavy = GradientBoostingClassifier(n_estimators=10).fit(X, y, w).predict_proba(X)
    assert heavy[:, 1].mean() > base[:, 1].mean()


def test_string_labels_round_trip():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = GradientBoostingClassifier(n_estimators=10).fit(X, labels)
    np.testing.assert_array_equal(model.classes_, ["setosa", "versicolor", "virginica"])
    assert (model.predict(X) == labels).mean() > 0.95


def test_gradients_of_the_losses():
    rng = np.random.default_rng(0)
    raw, y = rng.normal(size=(50, 1)) * 3, rng.integers(0, 2, (50, 1))
    g, h = boosting.log_loss_gradient_hessian(y, raw)
    p = 1 / (1 + np.exp(-raw))
    np.testing.assert_allclose(g, p - y)
    np.testing.assert_allclose(h, p * (1 - p))
    raw3, y3 = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    g3, h3 = boosting.softmax_gradient_hessian(y3, raw3)
    p3 = np.exp(raw3) / np.exp(raw3).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g3, p3 - np.eye(3)[y3])
    np.testing.assert_allclose(h3, p3 * (1 - p3))
    # no overflow warnings for extreme scores
    with np.errstate(all="raise"):
        g, h = boosting.log_loss_gradient_hessian(np.array([1.0, 0.0]), np.array([-800.0, 800.0]))
    np.testing.assert_allclose(g, [-1.0, 1.0])


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("learning_rate", 0.0),
        ("n_estimators", 0),
        ("max_depth", 0),
        ("max_leaf_nodes", 1),
        ("min_samples_leaf", 0),
        ("l2_regularization", -1.0),
        ("max_bins", 256),
        ("max_bins", 1),
        ("subsample", 0.0),
        ("subsample", 1.5),
        ("early_stopping", "yes"),
        ("validation_fraction", 1.0),
        ("n_iter_no_change", 0),
        ("tol", -1.0),
        ("loss", "squared_error"),
        ("random_state", "seed"),
    ],
)
def test_bad_parameters_are_rejected_in_fit(param, value):
    X, y = make_classification(n_samples=50, random_state=0)
    model = GradientBoostingClassifier(**{param: value})  # the constructor never validates
    with pytest.raises(
        InvalidParameterError, match=f"^The '{param}' parameter of GradientBoostingClassifier"
    ):
        model.fit(X, y)


def test_bad_input_errors():
    X, y = make_classification(n_samples=50, random_state=0)
    model = GradientBoostingClassifier(n_estimators=2)
    with pytest.raises(NotFittedError):
        model.predict(X)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X_nan, y)
    with pytest.raises(ValueError, match="one class"):
        model.fit(X, np.zeros(50))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match="continuous"):
        model.fit(X, np.linspace(0, 1, 50))
    model.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="sample_weight"):
        GradientBoostingRegressor().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="validation"):
        GradientBoostingClassifier(early_stopping=True, validation_fraction=60).fit(X, y)


def test_threaded_histograms_give_identical_models(monkeypatch):
    """Large fits build histograms in threads, one feature per thread at a time: the sums
    are the same numbers in the same order, so the model must not change by a bit."""
    from scratch_ml import _hist_tree

    X, y = make_classification(n_samples=boosting.PARALLEL_MIN_SAMPLES, random_state=0)
    kw = {"n_estimators": 5, "early_stopping": False}
    monkeypatch.setattr(_hist_tree, "n_useful_threads", lambda: 2)
    monkeypatch.setattr(boosting, "n_useful_threads", lambda: 2)
    threaded = GradientBoostingClassifier(**kw).fit(X, y).decision_function(X)
    monkeypatch.setattr(boosting, "n_useful_threads", lambda: 1)
    serial = GradientBoostingClassifier(**kw).fit(X, y).decision_function(X)
    np.testing.assert_array_equal(threaded, serial)


def _one_hot_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two continuous columns and three one-hot groups: mostly zeros, as after get_dummies."""
    rng = np.random.default_rng(seed)
    n = 3000
    groups = [np.eye(k)[rng.integers(0, k, n)] for k in (3, 8, 20)]
    X = np.column_stack([rng.normal(size=(n, 2)), *groups])
    logit = X[:, 0] - 0.5 * X[:, 1] + groups[1][:, :3].sum(axis=1) - groups[2][:, 5]
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.mark.parametrize("hess", ["log_loss", "constant"])
def test_sparse_histograms_match_the_dense_ones(hess):
    """On one-hot data only the non-default values are summed and each feature's most common
    bin is filled by subtraction: the histograms must equal the dense per-bin sums."""
    from scratch_ml import _hist_tree
    from scratch_ml.binning import BinMapper

    X, _ = _one_hot_problem()
    mapper = BinMapper().fit(X)
    X_binned = mapper.transform(X)
    ws = _hist_tree.make_workspace(X_binned, mapper.n_bins_per_feature_)
    assert ws.sparse is not None  # most values sit in their feature's most common bin
    rng = np.random.default_rng(1)
    grad = rng.normal(size=len(X))
    hess_values = None if hess == "constant" else rng.uniform(0.01, 0.25, size=len(X))
    rows = np.sort(rng.choice(len(X), size=700, replace=False))
    for node_rows in (None, rows):
        sparse = _hist_tree.build_histogram(node_rows, grad, hess_values, ws)
        ws.sparse = None
        dense = _hist_tree.build_histogram(node_rows, grad, hess_values, ws)
        ws.sparse = _hist_tree._SparseRows.build(ws)
        np.testing.assert_allclose(sparse, dense, rtol=1e-12, atol=1e-10)


def test_equal_splits_go_to_the_lowest_feature_across_histogram_widths(monkeypatch):
    """Histograms group features by bin count; an exact tie must still go to the lowest
    feature, as in scikit-learn, not to the one whose bins come first in the layout."""
    from scratch_ml import _hist_tree

    monkeypatch.setattr(_hist_tree, "MERGE_PADDING", 0)  # keep the 2- and 4-bin groups apart
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, 400).astype(float)  # three values: four-entry group
    X = np.column_stack([x, (x >= 1).astype(float)])  # the same cut as a two-valued feature
    y = (x >= 1).astype(int) ^ (rng.random(400) < 0.1)
    model = GradientBoostingClassifier(n_estimators=1, max_leaf_nodes=2, early_stopping=False)
    tree = model.fit(X, y)._predictors[0][0]
    assert tree.feature[0] == 0 and tree.threshold[0] < 1.0
