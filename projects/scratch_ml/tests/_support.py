"""Plain helpers shared by several test modules; pytest fixtures would go in conftest.py.

Imported as ``from _support import ...`` (``pyproject.toml`` puts ``tests/`` on ``sys.path``),
never from conftest.py, which pytest loads itself and which is not meant to be imported.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import numpy as np

import scratch_ml
from scratch_ml.base import BaseEstimator


def public_estimators() -> list[type[BaseEstimator]]:
    """Every public estimator class defined anywhere in the package, sorted by name.

    Found by walking the submodules rather than listed by hand, so an estimator added later is
    covered by the tests that use this without anyone remembering to register it.
    """
    found: dict[str, type[BaseEstimator]] = {}
    for info in pkgutil.iter_modules(scratch_ml.__path__, prefix="scratch_ml."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
                and obj is not BaseEstimator
            ):
                found[name] = obj
    return [found[name] for name in sorted(found)]


def init_params(cls: type) -> list[str]:
    """The constructor's parameter names (what get_params reports)."""
    signature = inspect.signature(cls.__init__)
    return [name for name in signature.parameters if name != "self"]


def fit_data(estimator: Any, n_samples: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A small, valid (X, y) for ``estimator``: a binary target, continuous for regressors."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_samples, 3))
    y = (X[:, 0] > 0).astype(int)
    if getattr(estimator, "_estimator_type", None) == "regressor":
        return X, X[:, 0] + 0.1 * rng.normal(size=n_samples)
    return X, y
