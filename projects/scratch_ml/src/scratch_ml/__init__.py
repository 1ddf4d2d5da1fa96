"""From-scratch machine learning in numpy, with scikit-learn's estimator API.

Logistic regression (Newton/IRLS and gradient descent), CART decision trees and
histogram-based gradient boosting, each tested against scikit-learn's own estimator checks
and benchmarked beside its scikit-learn counterpart::

    from scratch_ml import GradientBoostingClassifier, LogisticRegression

    model = LogisticRegression(C=1.0).fit(X, y)

The estimators and the package's exceptions are importable from here; the submodules
(``scratch_ml.linear``, ``.tree``, ``.boosting``, ``.binning``, ``.metrics``, ``.gradcheck``)
hold them and the lower-level functions. Hyper-parameters are checked when ``fit`` starts, and a
bad one raises :class:`InvalidParameterError` naming the parameter and the estimator.

The names below are resolved on first use (PEP 562), so ``import scratch_ml.metrics`` does not
load the estimators, and in a learner's workspace a module that does not import yet (a syntax
error mid-lab) breaks only the names that live in it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the submodule that defines it.
_EXPORTS: dict[str, str] = {
    "LogisticRegression": "scratch_ml.linear",
    "DecisionTreeClassifier": "scratch_ml.tree",
    "DecisionTreeRegressor": "scratch_ml.tree",
    "GradientBoostingClassifier": "scratch_ml.boosting",
    "GradientBoostingRegressor": "scratch_ml.boosting",
    "ConvergenceWarning": "scratch_ml.linear",
    "InvalidParameterError": "scratch_ml._param_validation",
    "NotFittedError": "scratch_ml.base",
}

__all__ = [  # the keys of _EXPORTS, spelled out so that linters and readers see them
    "ConvergenceWarning",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "InvalidParameterError",
    "LogisticRegression",
    "NotFittedError",
    "__version__",
]

if TYPE_CHECKING:  # static analysers and IDEs see ordinary imports
    from scratch_ml._param_validation import InvalidParameterError
    from scratch_ml.base import NotFittedError
    from scratch_ml.boosting import GradientBoostingClassifier, GradientBoostingRegressor
    from scratch_ml.linear import ConvergenceWarning, LogisticRegression
    from scratch_ml.tree import DecisionTreeClassifier, DecisionTreeRegressor


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scratch_ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
