"""Checkpoints 1.3 and 1.4: the vectorised best-split search and the leaf values of a CART tree.

1.3 grades ``scratch_ml.tree.best_split`` against a brute-force search written here, which
tries every threshold of every feature and recomputes both children from scratch, and against
scikit-learn's depth-1 tree (a stump) on fixed data. 1.4 grades what a fitted tree predicts:
each leaf must hold the weighted class proportions (or the weighted mean) of the training
samples that reach it, as found here with ``apply``, and the whole tree must be about as
accurate as scikit-learn's at the same depth. The 1.4 tests fit whole trees, so they also need
a working 1.3.
"""

from __future__ import annotations

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def tree():
    return import_learner("scratch_ml.tree")


# --- independent reference: impurities and a brute-force split search ----------------------


def _impurity(y: np.ndarray, w: np.ndarray, criterion: str, n_classes: int) -> float:
    if criterion == "squared_error":
        mean = np.average(y, weights=w)
        return float(np.average((y - mean) ** 2, weights=w))
    p = np.array([w[y == k].sum() for k in range(n_classes)]) / w.sum()
    if criterion == "gini":
        return float(1.0 - np.sum(p**2))
    p = p[p > 0]
    return float(-np.sum(p * np.log2(p)))


def _brute_force(X, y, w, criterion, n_classes, min_samples_leaf=1):
    """Every allowed (feature, threshold, gain), children recomputed from scratch each time."""
    parent = _impurity(y, w, criterion, n_classes)
    candidates = []
    for j in range(X.shape[1]):
        values = np.unique(X[:, j])
        for low, high in zip(values[:-1], values[1:], strict=True):
            threshold = low / 2 + high / 2
            left = X[:, j] <= threshold
            if min(left.sum(), (~left).sum()) < min_samples_leaf:
                continue
            w_left, w_right = w[left].sum(), w[~left].sum()
            children = (
                w_left * _impurity(y[left], w[left], criterion, n_classes)
                + w_right * _impurity(y[~left], w[~left], criterion, n_classes)
            ) / w.sum()
            candidates.append((j, threshold, parent - children))
    return candidates


def _dataset(seed: int, criterion: str, n: int = 48, d: int = 4, ties: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if ties:  # repeated values: cuts between equal values must be skipped
        X = np.round(X, 1)
    w = rng.uniform(0.2, 3.0, size=n)
    if criterion == "squared_error":
        y = X[:, 0] - 2 * X[:, 1] ** 2 + rng.normal(scale=0.5, size=n) + 5.0
        return X, y, w, None
    n_classes = int(rng.integers(2, 5))
    score = X[:, 0] + np.sin(2 * X[:, 1]) + rng.normal(scale=0.7, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y.astype(np.intp), w, n_classes


def _check_against_brute_force(tree, X, y, w, criterion, n_classes, min_samples_leaf):
    found = tree.best_split(
        X, y, w, criterion=criterion, n_classes=n_classes, min_samples_leaf=min_samples_leaf
    )
    candidates = _brute_force(X, y, w, criterion, n_classes, min_samples_leaf)
    if not candidates:
        assert found is None, f"no cut is allowed, yet best_split returned {found}"
        return
    assert found is not None, "best_split returned None although allowed cuts exist"
    feature, threshold, gain = found
    gains = np.array([g for _, _, g in candidates])
    best = gains.max()
    assert gain == pytest.approx(best, rel=1e-9, abs=1e-12), (
        f"{criterion}: best gain {best} (brute force), got {gain}"
    )
    # The returned cut itself must be allowed and reach that gain.
    mine = [g for j, t, g in candidates if j == feature and np.isclose(t, threshold, rtol=1e-12)]
    assert mine, (
        f"{criterion}: (feature {feature}, threshold {threshold}) is not an allowed cut: "
        "thresholds sit halfway between consecutive distinct values, and both children keep "
        f"at least min_samples_leaf={min_samples_leaf} samples"
    )
    assert mine[0] == pytest.approx(best, rel=1e-9, abs=1e-12), (
        f"{criterion}: the returned cut has gain {mine[0]}, not the best {best}"
    )
    # When the optimum is unique, the cut must be exactly it.
    order = np.argsort(-gains, kind="stable")
    if len(gains) == 1 or gains[order[0]] - gains[order[1]] > 1e-9 * max(1.0, abs(best)):
        j, t, _ = candidates[order[0]]
        assert feature == j
        assert threshold == pytest.approx(t, rel=1e-12)


# --- 1.3 ------------------------------------------------------------------------------------


@pytest.mark.checkpoint("1.3")
@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error"])
def test_best_split_matches_brute_force(tree, criterion):
    for seed in range(8):
        ties = seed % 2 == 1
        X, y, w, n_classes = _dataset(seed, criterion, ties=ties)
        if seed == 0:
            w = np.ones_like(w)  # unweighted as well
        _check_against_brute_force(tree, X, y, w, criterion, n_classes, min_samples_leaf=1)


@pytest.mark.checkpoint("1.3")
@pytest.mark.parametrize("criterion", ["gini", "squared_error"])
def test_best_split_respects_min_samples_leaf(tree, criterion):
    for seed, min_samples_leaf in [(10, 3), (11, 7), (12, 15), (13, 20)]:
        X, y, w, n_classes = _dataset(seed, criterion, n=40, ties=seed % 2 == 1)
        _check_against_brute_force(tree, X, y, w, criterion, n_classes, min_samples_leaf)
        found = tree.best_split(
            X, y, w, criterion=criterion, n_classes=n_classes, min_samples_leaf=min_samples_leaf
        )
        n_left = int(np.sum(X[:, found[0]] <= found[1]))
        assert min(n_left, len(X) - n_left) >= min_samples_leaf
    # No cut can leave 21 samples on both sides of 40, and constant features cannot be cut.
    X, y, w, n_classes = _dataset(14, criterion, n=40)
    assert tree.best_split(X, y, w, criterion=criterion, n_classes=n_classes,
                           min_samples_leaf=21) is None  # fmt: skip
    assert tree.best_split(np.ones((40, 3)), y, w, criterion=criterion,
                           n_classes=n_classes) is None  # fmt: skip


@pytest.mark.checkpoint("1.3")
def test_stump_matches_scikit_learn(tree):
    from sklearn.datasets import make_classification, make_regression
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    # float32-representable data: scikit-learn's trees compute in float32.
    X, y = make_classification(
        n_samples=600, n_features=6, n_informative=4, n_classes=3, random_state=3
    )
    X = X.astype(np.float32).astype(np.float64)
    ones = np.ones(len(y))
    for criterion in ("gini", "entropy"):
        stump = DecisionTreeClassifier(max_depth=1, criterion=criterion, random_state=0)
        _check_stump(tree, stump.fit(X, y).tree_, X, y, ones, criterion, 3)

    X, y = make_regression(n_samples=600, n_features=6, noise=10.0, random_state=3)
    X = X.astype(np.float32).astype(np.float64)
    stump = DecisionTreeRegressor(max_depth=1, random_state=0).fit(X, y)
    _check_stump(tree, stump.tree_, X, y, ones, "squared_error", None)


def _check_stump(tree, sk_tree, X, y, w, criterion, n_classes):
    found = tree.best_split(X, y, w, criterion=criterion, n_classes=n_classes)
    assert found is not None
    left, right = sk_tree.children_left[0], sk_tree.children_right[0]
    imp, n = sk_tree.impurity, sk_tree.weighted_n_node_samples
    sk_gain = imp[0] - (n[left] * imp[left] + n[right] * imp[right]) / n[0]
    assert found[0] == sk_tree.feature[0], f"{criterion}: split feature differs from sklearn"
    assert found[1] == pytest.approx(sk_tree.threshold[0], rel=1e-12)
    assert found[2] == pytest.approx(sk_gain, rel=1e-7)


# --- 1.4 ------------------------------------------------------------------------------------


@pytest.mark.checkpoint("1.4")
def test_leaves_hold_weighted_class_proportions(tree):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=500, n_features=5, n_informative=3, n_classes=3, random_state=7
    )
    labels = np.array(["cat", "dog", "emu"])[y]  # string labels, through classes_
    w = np.random.default_rng(7).uniform(0.1, 2.0, size=len(y))
    for criterion in ("gini", "entropy"):
        model = tree.DecisionTreeClassifier(max_depth=4, criterion=criterion)
        model.fit(X, labels, sample_weight=w)
        assert list(model.classes_) == ["cat", "dog", "emu"]
        leaves = model.apply(X)
        proba = model.predict_proba(X)
        for leaf in np.unique(leaves):
            here = leaves == leaf
            expected = (
                np.array([w[here & (labels == c)].sum() for c in model.classes_]) / w[here].sum()
            )
            np.testing.assert_allclose(proba[here], np.tile(expected, (here.sum(), 1)),
                                       rtol=1e-10, atol=1e-12)  # fmt: skip
            np.testing.assert_allclose(
                model.tree_.impurity[leaf],
                _impurity(y[here], w[here], criterion, 3),
                rtol=1e-9,
                atol=1e-12,
                err_msg="tree_.impurity of a leaf must be its weighted impurity",
            )
        assert np.all(model.predict(X) == model.classes_[np.argmax(proba, axis=1)])


@pytest.mark.checkpoint("1.4")
def test_regression_leaves_hold_weighted_means(tree):
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=400, n_features=5, noise=5.0, random_state=8)
    w = np.random.default_rng(8).uniform(0.1, 2.0, size=len(y))
    model = tree.DecisionTreeRegressor(max_depth=5).fit(X, y, sample_weight=w)
    leaves = model.apply(X)
    pred = model.predict(X)
    for leaf in np.unique(leaves):
        here = leaves == leaf
        np.testing.assert_allclose(pred[here], np.average(y[here], weights=w[here]), rtol=1e-10)
        np.testing.assert_allclose(
            model.tree_.impurity[leaf],
            _impurity(y[here], w[here], "squared_error", 0),
            rtol=1e-8,
            atol=1e-9,
        )


@pytest.mark.checkpoint("1.4")
def test_predict_proba_rows_are_distributions(tree):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + rng.normal(scale=1.0, size=300) > 0).astype(int) + (X[:, 1] > 1)
    model = tree.DecisionTreeClassifier(max_depth=3).fit(X, y)
    proba = model.predict_proba(rng.normal(size=(200, 4)))
    assert proba.shape == (200, 3)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.checkpoint("1.4")
def test_full_tree_accuracy_matches_scikit_learn(tree):
    from sklearn.datasets import make_classification, make_regression
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    X, y = make_classification(
        n_samples=4000, n_features=10, n_informative=6, n_classes=2, flip_y=0.05, random_state=11
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    for depth in (4, 8):
        ours = tree.DecisionTreeClassifier(max_depth=depth).fit(X_train, y_train)
        ref = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X_train, y_train)
        acc = np.mean(ours.predict(X_test) == y_test)
        ref_acc = np.mean(ref.predict(X_test) == y_test)
        assert acc == pytest.approx(ref_acc, abs=0.01), f"max_depth={depth}"

    X, y = make_regression(n_samples=3000, n_features=8, noise=20.0, random_state=11)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    ours = tree.DecisionTreeRegressor(max_depth=6).fit(X_train, y_train)
    ref = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X_train, y_train)

    def r2(pred):
        return 1 - np.sum((y_test - pred) ** 2) / np.sum((y_test - y_test.mean()) ** 2)

    assert r2(ours.predict(X_test)) == pytest.approx(r2(ref.predict(X_test)), abs=0.01)
