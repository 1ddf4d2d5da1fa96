"""Declarative hyper-parameter validation: the mechanism itself, then every estimator's use of it.

The estimator tests are generated from the estimators' own ``_parameter_constraints`` (like
scikit-learn's ``check_param_validation``, which cannot run here because it only understands
scikit-learn's constraint classes), plus hand-written tables of good values and of exact
messages, so that a constraint declared too loosely or too strictly shows up either way.
"""

from __future__ import annotations

import math
import re
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pytest
from _support import fit_data, init_params, public_estimators

from scratch_ml import (
    ConvergenceWarning,
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    InvalidParameterError,
    LogisticRegression,
)
from scratch_ml._param_validation import (
    Interval,
    RealNotInt,
    StrOptions,
    make_constraint,
    validate_parameter_constraints,
)
from scratch_ml.binning import BinMapper

ESTIMATORS = public_estimators()

#: Settings that keep the fits quick; a parameter under test overrides its own entry.
FAST: dict[str, dict[str, Any]] = {
    "GradientBoostingClassifier": {"n_estimators": 3},
    "GradientBoostingRegressor": {"n_estimators": 3},
}


def _make(cls: type, **params: Any) -> Any:
    return cls(**{**FAST.get(cls.__name__, {}), **params})


def _fit(estimator: Any) -> Any:
    X, y = fit_data(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1 is valid, if unwise
        return estimator.fit(X, y)


def _message(param: str, cls: type) -> str:
    """scikit-learn's pattern for these errors (its check_param_validation matches it too)."""
    return rf"^The '{param}' parameter of {cls.__name__} must be .+\. Got .+ instead\.$"


def _show(value: Any) -> str:
    """A test id that is the same in every process (no memory addresses: pytest-xdist)."""
    if value is None or isinstance(value, str | int | float | bool | np.generic | dict):
        return repr(value)
    return type(value).__name__


class _BadType:
    """A value no constraint can allow."""

    def __repr__(self) -> str:
        return "BadType()"


# --- the mechanism ---------------------------------------------------------------------------


def test_invalid_parameter_error_is_both_a_value_and_a_type_error():
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (Interval(Integral, 1, None, closed="left"), "an int in the range [1, inf)"),
        (Interval(Integral, 2, 255, closed="both"), "an int in the range [2, 255]"),
        (Interval(Real, 0, None, closed="right"), "a float in the range (0.0, inf]"),
        (Interval(Real, None, 0, closed="neither"), "a float in the range (-inf, 0.0)"),
        (Interval(RealNotInt, 0, 1, closed="right"), "a float in the range (0.0, 1.0]"),
    ],
)
def test_interval_describes_itself_like_scikit_learn(interval, text):
    assert str(interval) == text


@pytest.mark.parametrize(
    ("interval", "inside", "outside"),
    [
        (
            Interval(Real, 0, None, closed="right"),
            [np.inf, 1, 0.5, np.float32(0.5), np.int64(3)],
            [0, 0.0, -1, -np.inf, math.nan, True, "1", None],
        ),
        (
            Interval(Integral, 1, 3, closed="both"),
            [1, 3, np.int64(2)],
            [0, 4, 2.0, True, np.True_, math.nan],
        ),
        (
            Interval(RealNotInt, 0, 1, closed="neither"),
            [0.5, np.float32(0.5), np.float64(1e-9)],
            [1, 0, 0.0, 1.0, math.nan],
        ),
        (Interval(Integral, 0, None, closed="left"), [0, 10**30], [-1, 0.5]),
    ],
)
def test_interval_membership(interval, inside, outside):
    assert all(interval.is_satisfied_by(v) for v in inside), inside
    assert not any(interval.is_satisfied_by(v) for v in outside), outside


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((float, 0, 1), {"closed": "both"}, TypeError, "kind must be"),
        ((Real, 0, 1), {"closed": "open"}, ValueError, "closed must be"),
        ((Real, 1, 1), {"closed": "both"}, ValueError, "left must be below right"),
    ],
)
def test_interval_refuses_a_malformed_declaration(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        Interval(*args, **kwargs)


def test_str_options():
    options = StrOptions({"newton", "gd"})
    assert str(options) == "a str among {'gd', 'newton'}"  # sorted: stable messages
    assert options.is_satisfied_by("gd")
    assert not options.is_satisfied_by("GD")
    assert not options.is_satisfied_by(["gd"])  # unhashable: a clean False, no TypeError
    with pytest.raises(TypeError, match="non-empty set of strings"):
        StrOptions(set())
    with pytest.raises(TypeError, match="non-empty set of strings"):
        StrOptions({1, 2})


@pytest.mark.parametrize(
    ("declared", "good", "bad", "text"),
    [
        (None, [None], [0, "None"], "None"),
        (dict, [{}, {0: 1.0}], [[], "balanced"], "an instance of 'dict'"),
        ("boolean", [True, np.False_], [1, 0, "True", None], "an instance of 'bool' or an"),
        (
            "random_state",
            [None, 0, 2**32 - 1, np.random.RandomState(0), np.random.default_rng(0)],
            [-1, 2**32, 0.5, True, "0"],
            "an int in the range [0, 4294967295], an instance of",
        ),
    ],
)
def test_shorthand_constraints(declared, good, bad, text):
    constraint = make_constraint(declared)
    assert all(constraint.is_satisfied_by(v) for v in good)
    assert not any(constraint.is_satisfied_by(v) for v in bad)
    assert str(constraint).startswith(text)


def test_make_constraint_names_what_it_accepts():
    with pytest.raises(TypeError, match=r"Unknown constraint 'array-like'.*'random_state'"):
        make_constraint("array-like")


def test_validate_lists_the_allowed_kinds_and_skips_undeclared_parameters():
    constraints = {
        "depth": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None]
    }
    validate_parameter_constraints(constraints, {"depth": None, "other": object()}, "Model")
    with pytest.raises(InvalidParameterError) as error:
        validate_parameter_constraints(constraints, {"depth": 0}, "Model")
    assert str(error.value) == (
        "The 'depth' parameter of Model must be an int in the range [1, inf), "
        "a str among {'auto'} or None. Got 0 instead."
    )


# --- every estimator declares every parameter ------------------------------------------------


def test_the_estimators_are_all_found():
    """The tests below are generated from this list: it must not come back short."""
    assert [cls.__name__ for cls in ESTIMATORS] == [
        "BinMapper",
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "LogisticRegression",
    ]


def _declaration_mismatch(cls: type) -> tuple[set[str], set[str]]:
    """(constructor parameters without constraints, constraints for no parameter)."""
    declared, params = set(cls._parameter_constraints), set(init_params(cls))
    return params - declared, declared - params


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_every_constructor_parameter_is_declared(cls):
    missing, unexpected = _declaration_mismatch(cls)
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    for name, constraints in cls._parameter_constraints.items():
        assert isinstance(constraints, list) and constraints, name
        for constraint in constraints:
            make_constraint(constraint)  # raises on a constraint the mechanism cannot read


def test_an_undeclared_parameter_is_caught():
    class WiderTree(DecisionTreeClassifier):
        def __init__(self, criterion="gini", max_depth=None, ccp_alpha=0.0):
            super().__init__(criterion=criterion, max_depth=max_depth)
            self.ccp_alpha = ccp_alpha

    assert _declaration_mismatch(WiderTree) == (
        {"ccp_alpha"},
        {"min_samples_split", "min_samples_leaf", "max_features", "random_state"},
    )


# --- every estimator rejects what its constraints exclude ------------------------------------


def _values_outside(declared: Any) -> list[Any]:
    """Values of an allowed *type* that the constraint still excludes (none for a plain type).

    Just past each bound (the bound itself when it is open), and NaN for floats; a string that
    is not an option. Every other constraint of the same parameter must exclude them too.
    """
    if declared == "random_state":
        return [-1, 2**32]
    constraint = make_constraint(declared)
    if isinstance(constraint, StrOptions):
        return ["not " + " or ".join(sorted(constraint.options))]
    if not isinstance(constraint, Interval):
        return []
    integral = constraint.kind is Integral
    cast, step = (int, 1) if integral else (float, 1e-9)
    values = []
    if constraint.left is not None:
        closed = constraint.closed in ("left", "both")
        values.append(cast(constraint.left - step if closed else constraint.left))
    if constraint.right is not None:
        closed = constraint.closed in ("right", "both")
        values.append(cast(constraint.right + step if closed else constraint.right))
    return values if integral else [*values, math.nan]


BAD_TYPE_CASES = [(cls, param) for cls in ESTIMATORS for param in init_params(cls)]
BAD_VALUE_CASES = [
    (cls, param, value)
    for cls in ESTIMATORS
    for param, constraints in cls._parameter_constraints.items()
    for declared in constraints
    for value in _values_outside(declared)
]


@pytest.mark.parametrize(
    ("cls", "param"), BAD_TYPE_CASES, ids=[f"{c.__name__}-{p}" for c, p in BAD_TYPE_CASES]
)
def test_a_value_of_no_allowed_type_is_rejected_at_fit(cls, param):
    estimator = _make(cls)
    bad = _BadType()
    estimator.set_params(**{param: bad})  # construction and set_params never validate
    assert estimator.get_params()[param] is bad
    with pytest.raises(InvalidParameterError, match=_message(param, cls)):
        _fit(estimator)


@pytest.mark.parametrize(
    ("cls", "param", "value"),
    BAD_VALUE_CASES,
    ids=[f"{c.__name__}-{p}={_show(v)}" for c, p, v in BAD_VALUE_CASES],
)
def test_a_value_outside_every_constraint_is_rejected_at_fit(cls, param, value):
    with pytest.raises(InvalidParameterError, match=_message(param, cls)):
        _fit(_make(cls, **{param: value}))


_NAN = float("nan")
EXACT_MESSAGES = [
    (LogisticRegression, "C", -1, "must be a float in the range (0.0, inf]. Got -1 instead."),
    (LogisticRegression, "C", "1", "must be a float in the range (0.0, inf]. Got '1' instead."),
    (
        LogisticRegression,
        "solver",
        "lbfgs",
        "must be a str among {'gd', 'newton'}. Got 'lbfgs' instead.",
    ),
    (
        LogisticRegression,
        "max_iter",
        2.5,
        "must be an int in the range [1, inf). Got 2.5 instead.",
    ),
    (
        LogisticRegression,
        "class_weight",
        "auto",
        "must be an instance of 'dict', a str among {'balanced'} or None. Got 'auto' instead.",
    ),
    (
        LogisticRegression,
        "fit_intercept",
        1,
        "must be an instance of 'bool' or an instance of 'numpy.bool'. Got 1 instead.",
    ),
    (
        DecisionTreeClassifier,
        "criterion",
        "mse",
        "must be a str among {'entropy', 'gini', 'log_loss'}. Got 'mse' instead.",
    ),
    (
        DecisionTreeRegressor,
        "criterion",
        "gini",
        "must be a str among {'squared_error'}. Got 'gini' instead.",
    ),
    (
        DecisionTreeClassifier,
        "max_depth",
        True,
        "must be an int in the range [1, inf) or None. Got True instead.",
    ),
    (
        DecisionTreeRegressor,
        "min_samples_leaf",
        1.0,
        "must be an int in the range [1, inf) or a float in the range (0.0, 1.0). Got 1.0 instead.",
    ),
    (
        DecisionTreeClassifier,
        "max_features",
        "auto",
        "must be an int in the range [1, inf), a float in the range (0.0, 1.0], a str among "
        "{'log2', 'sqrt'} or None. Got 'auto' instead.",
    ),
    (
        GradientBoostingClassifier,
        "learning_rate",
        _NAN,
        "must be a float in the range (0.0, inf). Got nan instead.",
    ),
    (
        GradientBoostingClassifier,
        "loss",
        "squared_error",
        "must be a str among {'log_loss'}. Got 'squared_error' instead.",
    ),
    (
        GradientBoostingRegressor,
        "early_stopping",
        "yes",
        "must be a str among {'auto'} or an instance of 'bool' or an instance of "
        "'numpy.bool'. Got 'yes' instead.",
    ),
    (
        GradientBoostingRegressor,
        "validation_fraction",
        1.0,
        "must be an int in the range [1, inf), a float in the range (0.0, 1.0) or None. "
        "Got 1.0 instead.",
    ),
    (BinMapper, "max_bins", 256, "must be an int in the range [2, 255]. Got 256 instead."),
]


@pytest.mark.parametrize(
    ("cls", "param", "value", "tail"),
    EXACT_MESSAGES,
    ids=[f"{c.__name__}-{p}={_show(v)}" for c, p, v, _ in EXACT_MESSAGES],
)
def test_exact_messages(cls, param, value, tail):
    with pytest.raises(InvalidParameterError) as error:
        _fit(_make(cls, **{param: value}))
    assert str(error.value) == f"The '{param}' parameter of {cls.__name__} {tail}"


# --- and accepts every kind of value its constraints allow -----------------------------------

SEEDS = [None, 0, 2**32 - 1, np.int64(7), np.random.RandomState(0), np.random.default_rng(0)]
TREE_VALUES: dict[str, list[Any]] = {
    "max_depth": [1, np.int64(3), None],
    "min_samples_split": [2, 5, 0.5, 1.0],
    "min_samples_leaf": [1, 3, 0.1, np.float32(0.25)],
    "max_features": [1, 3, 0.5, 1.0, "sqrt", "log2", None],
    "random_state": SEEDS,
}
BOOSTING_VALUES: dict[str, list[Any]] = {
    "learning_rate": [1, 0.01, 5.0],
    "n_estimators": [1, np.int64(2)],
    "max_depth": [1, None],
    "max_leaf_nodes": [2, None],
    "min_samples_leaf": [1, 5],
    "l2_regularization": [0, 1.5],
    "max_bins": [2, 255],
    "subsample": [1, 0.5],
    "early_stopping": ["auto", True, False, np.True_],
    "validation_fraction": [1, 0.3, None],
    "n_iter_no_change": [1],
    "tol": [0, 1e-3],
    "random_state": SEEDS,
}
GOOD_VALUES: dict[type, dict[str, list[Any]]] = {
    LogisticRegression: {
        "C": [np.inf, 2, 0.5, np.float32(3.0)],
        "solver": ["newton", "gd"],
        "max_iter": [1, np.int64(50)],
        "tol": [0, 1e-3],
        "class_weight": [None, "balanced", {0: 2.0, 1: 1.0}],
        "fit_intercept": [True, np.False_],
    },
    DecisionTreeClassifier: {**TREE_VALUES, "criterion": ["gini", "entropy", "log_loss"]},
    DecisionTreeRegressor: {**TREE_VALUES, "criterion": ["squared_error"]},
    GradientBoostingClassifier: {**BOOSTING_VALUES, "loss": ["log_loss"]},
    GradientBoostingRegressor: {**BOOSTING_VALUES, "loss": ["squared_error"]},
    BinMapper: {"max_bins": [2, 255], "subsample": [1, 10, None], "random_state": SEEDS},
}
GOOD_CASES = [
    (cls, param, value)
    for cls, table in GOOD_VALUES.items()
    for param, values in table.items()
    for value in values
]


def test_every_parameter_has_good_values_to_try():
    assert set(GOOD_VALUES) == set(ESTIMATORS)
    for cls, table in GOOD_VALUES.items():
        assert set(table) == set(init_params(cls)), cls.__name__


@pytest.mark.parametrize(
    ("cls", "param", "value"),
    GOOD_CASES,
    ids=[f"{c.__name__}-{p}={_show(v)}" for c, p, v in GOOD_CASES],
)
def test_allowed_values_fit_and_are_kept_unchanged(cls, param, value):
    estimator = _fit(_make(cls, **{param: value}))
    assert estimator.get_params()[param] is value  # fit reads parameters, never rewrites them
    assert hasattr(estimator, "n_features_in_")


# --- when validation happens ------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_parameters_are_checked_before_the_data_and_leave_no_fitted_state(cls):
    param = init_params(cls)[0]
    estimator = _make(cls, **{param: _BadType()})
    X = np.array([[np.nan, 1.0]])  # bad data too: the parameter error must come first
    with pytest.raises(InvalidParameterError, match=_message(param, cls)):
        estimator.fit(X, np.array([0]))
    fitted = [name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")]
    assert fitted == []


def test_data_dependent_limits_are_checked_with_the_data():
    """max_features above the number of features is valid until the data shows otherwise."""
    X, y = fit_data(DecisionTreeClassifier())
    message = re.escape(
        "The 'max_features' parameter of DecisionTreeClassifier must be at most the number of "
        "features, 3, when it is an int. Got 4 instead."
    )
    with pytest.raises(ValueError, match=message):
        DecisionTreeClassifier(max_features=4).fit(X, y)
    assert DecisionTreeClassifier(max_features=3).fit(X, y).max_features_ == 3
