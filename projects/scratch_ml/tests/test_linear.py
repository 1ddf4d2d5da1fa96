"""LogisticRegression against scikit-learn: estimator checks, fitted losses, weights, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import linear_model
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from scratch_ml import linear
from scratch_ml.base import NotFittedError
from scratch_ml.gradcheck import check_gradient
from scratch_ml.linear import ConvergenceWarning, LogisticRegression

# Both solvers pass every check of scikit-learn 1.9.1: no expected failures.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {"newton": {}, "gd": {}}


@parametrize_with_checks(
    [LogisticRegression(), LogisticRegression(solver="gd")],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[est.solver],
)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # gd at max_iter=100 on raw data
        check(estimator)


def _sk(C=1.0, **kw):
    return linear_model.LogisticRegression(C=C, tol=1e-10, max_iter=10_000, **kw)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_newton_matches_sklearn_on_breast_cancer(cancer, C):
    X, y = cancer
    ours, theirs = LogisticRegression(C=C).fit(X, y), _sk(C).fit(X, y)
    diff = log_loss(y, ours.predict_proba(X)) - log_loss(y, theirs.predict_proba(X))
    assert abs(diff) < 1e-4
    assert ours.n_iter_[0] <= 15
    assert ours.coef_.shape == (1, X.shape[1]) and ours.intercept_.shape == (1,)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-4)


def test_gd_matches_sklearn_on_breast_cancer(cancer):
    X, y = cancer
    ours = LogisticRegression(solver="gd", max_iter=5000).fit(X, y)
    theirs = _sk().fit(X, y)
    diff = log_loss(y, ours.predict_proba(X)) - log_loss(y, theirs.predict_proba(X))
    assert abs(diff) < 1e-4


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_multinomial_matches_sklearn_on_iris(iris, C):
    X, y = iris
    ours, theirs = LogisticRegression(C=C).fit(X, y), _sk(C).fit(X, y)
    diff = log_loss(y, ours.predict_proba(X)) - log_loss(y, theirs.predict_proba(X))
    assert abs(diff) < 1e-4
    assert ours.coef_.shape == (3, 4) and ours.intercept_.shape == (3,)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-3)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-3)
    np.testing.assert_allclose(ours.predict_proba(X).sum(axis=1), 1.0)
    # the softmax ignores a common shift; both pick coefficients summing to zero over classes
    np.testing.assert_allclose(ours.coef_.sum(axis=0), 0.0, atol=1e-8)


def test_multinomial_gd_matches_sklearn(iris):
    X, y = iris
    ours = LogisticRegression(solver="gd", max_iter=20_000, tol=1e-6).fit(X, y)
    theirs = _sk().fit(X, y)
    diff = log_loss(y, ours.predict_proba(X)) - log_loss(y, theirs.predict_proba(X))
    assert abs(diff) < 1e-4


def test_no_intercept_matches_sklearn(cancer):
    X, y = cancer
    ours = LogisticRegression(fit_intercept=False).fit(X, y)
    theirs = _sk(fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    np.testing.assert_array_equal(ours.intercept_, [0.0])


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 1: 0.5}, {1: 2.0}])
def test_class_weight_matches_sklearn(cancer, class_weight):
    X, y = cancer
    rng = np.random.default_rng(0)
    sw = rng.uniform(0.5, 2.0, len(y))
    ours = LogisticRegression(class_weight=class_weight).fit(X, y, sample_weight=sw)
    theirs = _sk(class_weight=class_weight).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-4)


def test_class_weight_dict_equals_sample_weight(iris):
    X, y = iris
    weights = {0: 2.0, 1: 0.5, 2: 1.0}
    a = LogisticRegression(class_weight=weights).fit(X, y)
    b = LogisticRegression().fit(X, y, sample_weight=np.array([weights[c] for c in y]))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10, atol=1e-12)


def test_class_weight_unknown_label_raises(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="not classes of y"):
        LogisticRegression(class_weight={5: 1.0}).fit(X, y)


@pytest.mark.parametrize("solver", ["newton", "gd"])
def test_integer_sample_weight_equals_repetition(solver):
    X, y = make_classification(80, 5, n_classes=3, n_informative=3, random_state=0)
    counts = np.random.default_rng(1).integers(0, 4, len(y))
    weighted = LogisticRegression(solver=solver, max_iter=200).fit(X, y, sample_weight=counts)
    repeated = LogisticRegression(solver=solver, max_iter=200).fit(
        np.repeat(X, counts, axis=0), np.repeat(y, counts)
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-8)


def test_convergence_warning_and_n_iter():
    X, y = make_classification(200, 5, random_state=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = LogisticRegression(solver="gd", max_iter=3).fit(X, y)
    assert model.n_iter_.tolist() == [3]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression().fit(X, y)
    assert 1 <= model.n_iter_[0] < 20


def test_unpenalised_and_separable_problems_do_not_crash():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    X = np.column_stack([X, X[:, 0]])  # duplicated column: singular Hessian when C=inf
    y = (X[:, 1] > 0).astype(int)  # linearly separable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=np.inf, max_iter=30).fit(X, y)
    assert np.isfinite(model.coef_).all()
    assert model.score(X, y) == 1.0


def test_newton_step_falls_back_on_singular_hessian():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    X = np.column_stack([X, X[:, 0], np.ones(40)])  # duplicate column, alpha = 0
    y = (rng.random(40) < 0.5).astype(float)
    w = np.zeros(4)
    d = linear.newton_step(w, X, y, 0.0)
    _, g = linear.log_loss_and_gradient(w, X, y, 0.0)
    assert np.isfinite(d).all()
    assert g @ d < 0  # still a descent direction


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_softmax_gradient_and_newton_step(seed):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=(30, 3)), np.ones(30)])
    y = rng.integers(0, 3, 30)
    s = rng.uniform(0.2, 2.0, 30)
    W = rng.normal(size=(3, 4))
    alpha = 0.1

    def f(v):
        return linear.softmax_loss_and_gradient(v, X, y, alpha, s)[0]

    def grad(v):
        return linear.softmax_loss_and_gradient(v, X, y, alpha, s)[1]

    assert check_gradient(f, grad, W) < 1e-6
    # the direction solves H d = -g on the subspace where intercepts sum to zero
    d = linear.softmax_newton_step(W, X, y, alpha, s)
    eps = 1e-6
    Hd = (grad(W + eps * d) - grad(W - eps * d)) / (2 * eps)
    np.testing.assert_allclose(Hd, -grad(W), atol=1e-6)
    assert abs(d[:, -1].sum()) < 1e-10


def test_string_labels_and_methods(cancer):
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    model = LogisticRegression().fit(X, labels)
    assert model.classes_.tolist() == ["benign", "malignant"]
    assert set(model.predict(X)) <= {"benign", "malignant"}
    reference = LogisticRegression().fit(X, 1 - y)  # "benign" sorts first: class 0
    np.testing.assert_allclose(model.decision_function(X), reference.decision_function(X))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    assert model.score(X, labels) > 0.97


def test_predict_log_proba_is_finite_for_extreme_scores():
    X = np.array([[-1.0], [1.0]])
    model = LogisticRegression(C=1.0).fit(X, [0, 1])
    far = np.array([[-1e4], [1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_p = model.predict_log_proba(far)
    assert np.isfinite(log_p).all()
    assert log_p[0, 1] < -100 and log_p[1, 0] < -100


def test_sigmoid_is_stable():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = linear.sigmoid(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, 1 / (1 + np.exp(50.0)), 0.5, 1 / (1 + np.exp(-50.0)), 1])


def test_feature_names_with_dataframe(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = LogisticRegression().fit(frame, y)
    assert model.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(X)


@pytest.mark.parametrize(
    ("X", "y", "error", "match"),
    [
        ([[0.0, np.nan], [1.0, 2.0]], [0, 1], ValueError, "NaN"),
        ([[0.0, np.inf], [1.0, 2.0]], [0, 1], ValueError, "infinity"),
        ([0.0, 1.0, 2.0], [0, 1, 0], ValueError, "Expected 2D array"),
        ([[0.0], [1.0], [2.0]], [0, 1], ValueError, "inconsistent numbers of samples"),
        ([[0.0], [1.0]], [1, 1], ValueError, "only one class"),
        (np.empty((0, 2)), np.empty(0), ValueError, "0 sample"),
        ([[0.0], [1.0], [2.0]], [0.5, 1.5, 2.5], ValueError, "Unknown label type"),
        ([[0.0], [1.0]], [[0, 1], [1, 0]], ValueError, "1d array"),
    ],
)
def test_bad_input_errors(X, y, error, match):
    with pytest.raises(error, match=match):
        LogisticRegression().fit(X, y)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("C", 0.0),
        ("C", -1),
        ("C", np.nan),
        ("solver", "lbfgs"),
        ("max_iter", 0),
        ("max_iter", 10.0),
        ("tol", -1.0),
        ("class_weight", "auto"),
        ("class_weight", [1.0, 2.0]),
        ("fit_intercept", "yes"),
    ],
)
def test_bad_hyper_parameters(param, value):
    model = LogisticRegression(**{param: value})  # stored unchanged, refused at fit
    # InvalidParameterError is a ValueError (and a TypeError), as in scikit-learn.
    with pytest.raises(ValueError, match=f"^The '{param}' parameter of LogisticRegression must"):
        model.fit([[0.0], [1.0]], [0, 1])


def test_predict_errors():
    with pytest.raises(NotFittedError):
        LogisticRegression().predict([[0.0]])
    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    with pytest.raises(ValueError, match="expecting 2 features"):
        model.predict([[0.0]])
    with pytest.raises(ValueError, match="Sample weights must contain"):
        LogisticRegression().fit([[0.0], [1.0]], [0, 1], sample_weight=[0.0, 0.0])
