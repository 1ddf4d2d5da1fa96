"""CART trees: scikit-learn's estimator checks, agreement with scikit-learn's trees, weights,
randomness, feature importances and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import tree as sk_tree
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from scratch_ml.base import NotFittedError
from scratch_ml.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    best_split,
    leaf_value,
    node_impurity,
)

# No expected failures: both trees pass every check of scikit-learn 1.9.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "DecisionTreeClassifier": {},
    "DecisionTreeRegressor": {},
}


@parametrize_with_checks(
    [
        DecisionTreeClassifier(),
        DecisionTreeClassifier(criterion="entropy", max_features="sqrt", random_state=0),
        DecisionTreeRegressor(),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__],
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _float32(X: np.ndarray) -> np.ndarray:
    """scikit-learn's trees work in float32: use data that float32 represents exactly."""
    return X.astype(np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def classification():
    X, y = make_classification(
        n_samples=3000, n_features=8, n_informative=5, n_classes=3, random_state=1
    )
    return _float32(X), y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=3000, n_features=8, noise=5.0, random_state=1)
    return _float32(X), y


def _same_structure(ours, theirs, *, same_counts: bool = True) -> None:
    a, b = ours.tree_, theirs.tree_
    assert a.node_count == b.node_count
    np.testing.assert_array_equal(a.children_left, b.children_left)
    np.testing.assert_array_equal(a.children_right, b.children_right)
    np.testing.assert_array_equal(a.feature, b.feature)
    np.testing.assert_array_equal(a.threshold, b.threshold)
    if same_counts:
        np.testing.assert_array_equal(a.n_node_samples, b.n_node_samples)
    np.testing.assert_allclose(a.weighted_n_node_samples, b.weighted_n_node_samples)
    np.testing.assert_allclose(a.impurity, b.impurity, rtol=1e-7, atol=1e-9)


# --- agreement with scikit-learn -------------------------------------------------------------


@pytest.mark.parametrize("criterion", ["gini", "entropy", "log_loss"])
@pytest.mark.parametrize("max_depth", [1, 2, 3])
def test_small_trees_identical_to_sklearn(classification, criterion, max_depth):
    X, y = classification
    ours = DecisionTreeClassifier(criterion=criterion, max_depth=max_depth).fit(X, y)
    theirs = sk_tree.DecisionTreeClassifier(
        criterion=criterion, max_depth=max_depth, random_state=0
    ).fit(X, y)
    _same_structure(ours, theirs)
    np.testing.assert_allclose(ours.tree_.value, theirs.tree_.value[:, 0, :], rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(ours.apply(X), theirs.apply(X))
    assert ours.get_depth() == theirs.get_depth()
    assert ours.get_n_leaves() == theirs.get_n_leaves()
    np.testing.assert_allclose(
        ours.feature_importances_, theirs.feature_importances_, rtol=1e-7, atol=1e-12
    )


@pytest.mark.parametrize("max_depth", [1, 3, 5])
def test_small_regression_trees_identical_to_sklearn(regression, max_depth):
    X, y = regression
    ours = DecisionTreeRegressor(max_depth=max_depth).fit(X, y)
    theirs = sk_tree.DecisionTreeRegressor(max_depth=max_depth, random_state=0).fit(X, y)
    _same_structure(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-10)
    np.testing.assert_allclose(
        ours.feature_importances_, theirs.feature_importances_, rtol=1e-7, atol=1e-12
    )


@pytest.mark.parametrize("max_depth", [4, 8, None])
def test_accuracy_close_to_sklearn(max_depth):
    X, y = make_classification(
        n_samples=6000, n_features=12, n_informative=7, flip_y=0.05, random_state=2
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    ours = DecisionTreeClassifier(max_depth=max_depth).fit(X_train, y_train)
    theirs = sk_tree.DecisionTreeClassifier(max_depth=max_depth, random_state=0)
    theirs.fit(X_train, y_train)
    assert ours.score(X_test, y_test) == pytest.approx(theirs.score(X_test, y_test), abs=0.01)
    if max_depth is None:  # grown until pure: fits the training set perfectly
        assert ours.score(X_train, y_train) == 1.0


@pytest.mark.parametrize("max_depth", [4, 8])
def test_r2_close_to_sklearn(max_depth):
    X, y = make_regression(n_samples=5000, n_features=10, noise=15.0, random_state=3)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    ours = DecisionTreeRegressor(max_depth=max_depth).fit(X_train, y_train)
    theirs = sk_tree.DecisionTreeRegressor(max_depth=max_depth, random_state=0)
    theirs.fit(X_train, y_train)
    assert ours.score(X_test, y_test) == pytest.approx(theirs.score(X_test, y_test), abs=0.01)


def test_min_samples_leaf_and_split_like_sklearn(classification):
    X, y = classification
    for params in (
        {"min_samples_leaf": 40},
        {"min_samples_split": 300},
        {"min_samples_leaf": 0.02},
        {"min_samples_split": 0.1},
    ):
        ours = DecisionTreeClassifier(max_depth=4, **params).fit(X, y)
        theirs = sk_tree.DecisionTreeClassifier(max_depth=4, random_state=0, **params)
        _same_structure(ours, theirs.fit(X, y))
    ours = DecisionTreeClassifier(min_samples_leaf=25).fit(X, y)
    leaves = ours.tree_.children_left == -1
    assert ours.tree_.n_node_samples[leaves].min() >= 25


# --- tree_ invariants and prediction -------------------------------------------------------


def test_tree_arrays_are_consistent(classification):
    X, y = classification
    t = DecisionTreeClassifier(max_depth=6).fit(X, y).tree_
    inner = np.flatnonzero(t.children_left != -1)
    left, right = t.children_left[inner], t.children_right[inner]
    np.testing.assert_array_equal(
        t.n_node_samples[inner], t.n_node_samples[left] + t.n_node_samples[right]
    )
    assert np.all(left == inner + 1), "node ids are in preorder (left child follows its parent)"
    assert np.all(t.feature[t.children_left == -1] == -2)
    np.testing.assert_allclose(t.value.sum(axis=1), 1.0)
    assert t.n_node_samples[0] == len(y)


def test_vectorised_apply_matches_a_per_sample_walk(classification):
    X, y = classification
    model = DecisionTreeClassifier(max_depth=7).fit(X, y)
    t = model.tree_
    rng = np.random.default_rng(0)
    Z = rng.normal(scale=2.0, size=(300, X.shape[1]))
    expected = []
    for row in Z:  # the slow reference: one sample at a time
        node = 0
        while t.children_left[node] != -1:
            go_left = row[t.feature[node]] <= t.threshold[node]
            node = t.children_left[node] if go_left else t.children_right[node]
        expected.append(node)
    np.testing.assert_array_equal(model.apply(Z), expected)


def test_xor_needs_a_zero_gain_first_split():
    """Like scikit-learn, a node is split even when the best cut gains nothing."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, dtype=float)
    y = np.array([0, 1, 1, 0] * 5)
    model = DecisionTreeClassifier().fit(X, y)
    assert model.score(X, y) == 1.0
    assert model.get_depth() == 2


# --- the split search on its own -------------------------------------------------------------


def test_best_split_is_stable_under_a_large_target_offset():
    """The squared-error gain uses differences of means, not E[y^2] - E[y]^2."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 5))
    y = X[:, 2] + 0.3 * rng.normal(size=500)
    w = rng.uniform(0.5, 2.0, size=500)
    plain = best_split(X, y, w, criterion="squared_error")
    shifted = best_split(X, y + 1e8, w, criterion="squared_error")
    assert shifted.feature == plain.feature == 2
    assert shifted.threshold == plain.threshold
    assert shifted.gain == pytest.approx(plain.gain, rel=1e-6)


def test_best_split_uses_presorted_orders_of_a_subset():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4))
    y = (X[:, 1] > 0.3).astype(int)
    w = np.ones(200)
    rows = np.flatnonzero(X[:, 0] > 0)  # a node: only these rows
    order = rows[np.argsort(X[rows], axis=0, kind="stable")].T
    direct = best_split(X[rows], y[rows], w[rows], criterion="gini", n_classes=2)
    presorted = best_split(X, y, w, criterion="gini", n_classes=2, order=order)
    assert presorted == direct
    assert best_split(X, y, w, criterion="gini", n_classes=2, features=[0, 2, 3]).feature != 1


def test_best_split_breaks_ties_towards_the_first_feature():
    X = np.repeat(np.arange(10.0)[:, None], 3, axis=1)  # three identical features
    y = (np.arange(10) >= 5).astype(int)
    w = np.ones(10)
    assert best_split(X, y, w, criterion="gini", n_classes=2).feature == 0
    assert best_split(X, y, w, criterion="gini", n_classes=2, features=[2, 1]).feature == 2


def test_best_split_scans_features_in_blocks(monkeypatch):
    """Large nodes are scanned a few features at a time; the answer must not change."""
    import scratch_ml._tree_split as split_module

    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 7))
    y = rng.integers(0, 4, size=300)
    w = rng.uniform(0.5, 1.5, size=300)
    whole = best_split(X, y, w, criterion="entropy", n_classes=4)
    monkeypatch.setattr(split_module, "_BLOCK_ELEMENTS", 300 * 4 * 2)  # two features per block
    assert best_split(X, y, w, criterion="entropy", n_classes=4) == whole


def test_leaf_value_and_node_impurity():
    y = np.array([0, 0, 1, 2, 2, 2])
    w = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 2.0])
    np.testing.assert_allclose(leaf_value(y, w, 3), [0.25, 0.25, 0.5])
    assert node_impurity(y, w, "gini", 3) == pytest.approx(1 - (0.25**2 * 2 + 0.25))
    assert node_impurity(y, w, "entropy", 3) == pytest.approx(1.5)
    t = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(leaf_value(t, np.array([1.0, 1.0, 2.0])), [2.75])
    assert node_impurity(np.full(5, 3.3), np.ones(5), "squared_error") == 0.0


# --- sample weights ------------------------------------------------------------------------


@pytest.mark.parametrize("Model", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_integer_weights_equal_repetition(Model):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, 4))
    # Integer targets keep every weighted sum exact, so even tied cuts resolve the same way.
    y = np.round(3 * X @ [1.0, 2.0, 0.0, -1.0])
    if Model is DecisionTreeClassifier:
        y = (y > 0).astype(int)
    w = rng.integers(0, 4, size=150)  # zeros included: weight 0 == sample removed
    weighted = Model(max_depth=6).fit(X, y, sample_weight=w)
    repeated = Model(max_depth=6).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    _same_structure(weighted, repeated, same_counts=False)
    Z = rng.normal(size=(100, 4))
    np.testing.assert_allclose(weighted.predict(Z), repeated.predict(Z))


def test_weights_match_sklearn(classification):
    X, y = classification
    w = np.random.default_rng(8).uniform(0.1, 3.0, size=len(y))
    ours = DecisionTreeClassifier(max_depth=3).fit(X, y, sample_weight=w)
    theirs = sk_tree.DecisionTreeClassifier(max_depth=3, random_state=0)
    _same_structure(ours, theirs.fit(X, y, sample_weight=w))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10)


def test_sample_weight_errors():
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    with pytest.raises(ValueError, match="sample_weight"):
        DecisionTreeClassifier().fit(X, y, sample_weight=np.ones(9))
    with pytest.raises(ValueError, match="non-negative"):
        DecisionTreeClassifier().fit(X, y, sample_weight=-np.ones(10))
    with pytest.raises(ValueError, match="all be zero"):
        DecisionTreeClassifier().fit(X, y, sample_weight=np.zeros(10))


# --- max_features and random_state ----------------------------------------------------------


def test_max_features_is_reproducible_with_random_state(classification):
    X, y = classification

    def fit(seed, max_features="sqrt"):
        return DecisionTreeClassifier(max_features=max_features, max_depth=6, random_state=seed)

    a, b = fit(3).fit(X, y), fit(3).fit(X, y)
    _same_structure(a, b)
    c = fit(4).fit(X, y)
    assert a.tree_.node_count != c.tree_.node_count or np.any(a.tree_.feature != c.tree_.feature)
    assert a.max_features_ == 2  # int(sqrt(8))
    # All features: random_state plays no part.
    _same_structure(fit(1, None).fit(X, y), fit(2, None).fit(X, y))
    assert fit(0, 0.5).fit(X, y).max_features_ == 4
    assert fit(0, "log2").fit(X, y).max_features_ == 3
    assert fit(0, 5).fit(X, y).max_features_ == 5


def test_max_features_one_still_finds_a_split():
    rng = np.random.default_rng(9)
    X = np.column_stack([np.ones(100), rng.normal(size=100), np.zeros(100)])
    y = (X[:, 1] > 0).astype(int)
    model = DecisionTreeClassifier(max_features=1, random_state=0).fit(X, y)
    assert model.score(X, y) == 1.0  # constant features are never the drawn one
    assert model.feature_importances_[1] == 1.0


# --- feature importances -------------------------------------------------------------------


def test_feature_importances_close_to_sklearn():
    X, y = make_classification(
        n_samples=4000, n_features=10, n_informative=4, n_redundant=0, random_state=10
    )
    X = _float32(X)
    ours = DecisionTreeClassifier(max_depth=5).fit(X, y)
    theirs = sk_tree.DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.feature_importances_, theirs.feature_importances_, atol=0.02)
    assert ours.feature_importances_.sum() == pytest.approx(1.0)
    assert np.argmax(ours.feature_importances_) == np.argmax(theirs.feature_importances_)


def test_feature_importances_of_a_single_leaf_are_zero():
    X = np.arange(10.0).reshape(5, 2)
    model = DecisionTreeRegressor().fit(X, np.full(5, 2.0))
    assert model.get_n_leaves() == 1 and model.get_depth() == 0
    np.testing.assert_array_equal(model.feature_importances_, [0.0, 0.0])


# --- inputs --------------------------------------------------------------------------------


def test_string_labels():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(90, 3))
    y = np.array(["spam", "ham", "eggs"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    model = DecisionTreeClassifier(max_depth=4).fit(X, y)
    assert list(model.classes_) == ["eggs", "ham", "spam"]
    assert set(model.predict(X)) <= {"eggs", "ham", "spam"}
    assert model.predict(X).dtype == y.dtype
    assert model.score(X, y) > 0.9


def test_feature_names_from_dataframes(classification):
    pd = pytest.importorskip("pandas")
    X, y = classification
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = DecisionTreeClassifier(max_depth=3).fit(frame, y)
    assert list(model.feature_names_in_) == list(frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        from_array = model.predict(X)
    np.testing.assert_array_equal(model.predict(frame), from_array)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame.rename(columns={"f0": "other"}))


@pytest.mark.parametrize("Model", [DecisionTreeClassifier, DecisionTreeRegressor])
def test_bad_inputs(Model):
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10) % 2
    for bad in (np.nan, np.inf):
        X_bad = X.copy()
        X_bad[3, 1] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            Model().fit(X_bad, y)
    with pytest.raises(ValueError, match="2D array"):
        Model().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Model().fit(X, y[:-1])
    with pytest.raises(ValueError, match="0 sample"):
        Model().fit(np.empty((0, 2)), np.empty(0))
    with pytest.raises(NotFittedError):
        Model().predict(X)
    model = Model().fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        model.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([[np.nan, 1.0]]))


def test_single_class_and_continuous_targets_are_refused():
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match="one class"):
        DecisionTreeClassifier().fit(X, np.zeros(10))
    with pytest.raises(ValueError, match="Unknown label type"):
        DecisionTreeClassifier().fit(X, np.linspace(0, 1, 10))


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("criterion", "mse"),
        ("max_depth", 0),
        ("max_depth", 2.5),
        ("min_samples_split", 1),
        ("min_samples_leaf", 0),
        ("max_features", 0),
        ("max_features", 3),  # only two features: checked against the data
        ("max_features", "auto"),
        ("max_features", 1.5),
        ("random_state", -1),
    ],
)
def test_bad_hyper_parameters(param, value):
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10) % 2
    model = DecisionTreeClassifier(**{param: value})  # accepted unchanged at construction ...
    assert model.get_params()[param] == value
    with pytest.raises(ValueError, match=f"^The '{param}' parameter of DecisionTreeClassifier"):
        model.fit(X, y)  # ... refused at fit
    with pytest.raises(ValueError, match="^The 'criterion' parameter of DecisionTreeRegressor"):
        DecisionTreeRegressor(criterion="gini").fit(X, y)
