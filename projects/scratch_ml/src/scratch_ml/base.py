"""scikit-learn's estimator conventions, re-implemented so scratch_ml needs only numpy.

Why not inherit from ``sklearn.base.BaseEstimator``? The package is meant to show what those
conventions *are*: hyper-parameters are constructor arguments stored unchanged and checked
against the class's declared ``_parameter_constraints`` when ``fit`` starts, learned state
ends with ``_``, ``get_params``/``set_params`` make estimators clonable. scikit-learn is used
only by tests and benchmarks; ``__sklearn_tags__`` imports it lazily, when scikit-learn itself
asks.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any, ClassVar

import numpy as np

from scratch_ml._param_validation import InvalidParameterError, validate_parameter_constraints

__all__ = [
    "BaseEstimator",
    "ClassifierMixin",
    "InvalidParameterError",
    "NotFittedError",
    "RegressorMixin",
    "check_random_state",
]


class NotFittedError(ValueError, AttributeError):
    """Raised by predict-like methods before ``fit`` (the same bases as scikit-learn's)."""


class BaseEstimator:
    """get_params/set_params from the constructor signature, a readable repr, and the
    declarative check of the hyper-parameters that every ``fit`` starts with.

    Subclasses declare ``_parameter_constraints``: every constructor argument mapped to the
    list of what it may be (see :mod:`scratch_ml._param_validation`).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    @classmethod
    @functools.cache  # a class's signature never changes; inspect.signature is slow
    def _param_names(cls) -> tuple[str, ...]:
        signature = inspect.signature(cls.__init__)
        return tuple(
            sorted(
                name
                for name, p in signature.parameters.items()
                if name != "self" and p.kind != p.VAR_KEYWORD
            )
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update({f"{name}__{k}": v for k, v in value.get_params().items()})
            params[name] = value
        return params

    def set_params(self, **params: Any) -> BaseEstimator:
        valid = self._param_names()
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {list(valid)!r}."
                )
            if sub:
                getattr(self, name).set_params(**{sub: value})
            else:
                setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        """Check every hyper-parameter against ``_parameter_constraints``.

        Called first thing in ``fit``, never in ``__init__``: scikit-learn's rule, so that
        ``clone`` and ``set_params`` store any value unchanged and errors surface where the
        value is used. Raises :class:`InvalidParameterError` naming the parameter and the
        estimator.
        """
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def __repr__(self) -> str:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if not _same(value, defaults.get(name, inspect.Parameter.empty))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):  # pragma: no cover - exercised by scikit-learn's own checks
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            input_tags=InputTags(),
        )

    def _check_is_fitted(self, attribute: str = "n_features_in_") -> None:
        if not hasattr(self, attribute):
            raise _not_fitted_error_class()(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )


_SKLEARN_COMPATIBLE_ERRORS: dict[type, type] = {}


def _not_fitted_error_class() -> type:
    """NotFittedError, or a subclass that is also scikit-learn's when scikit-learn is loaded.

    scikit-learn's estimator checks test ``raises(sklearn.exceptions.NotFittedError)``; a
    class that inherits from both satisfies them without importing scikit-learn at run time
    (if the caller has not imported it, nobody can be catching its exception class).
    """
    sk_exceptions = sys.modules.get("sklearn.exceptions")
    sk_error = getattr(sk_exceptions, "NotFittedError", None)
    if sk_error is None:
        return NotFittedError
    if sk_error not in _SKLEARN_COMPATIBLE_ERRORS:
        _SKLEARN_COMPATIBLE_ERRORS[sk_error] = type(
            "NotFittedError", (NotFittedError, sk_error), {"__module__": __name__}
        )
    return _SKLEARN_COMPATIBLE_ERRORS[sk_error]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):  # arrays and other odd values: treat as changed
        return False


class ClassifierMixin:
    """``score`` is accuracy; tags say 'classifier' so scikit-learn runs classifier checks."""

    _estimator_type = "classifier"

    def score(self, X, y, sample_weight=None) -> float:
        from scratch_ml.metrics import accuracy_score

        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):  # pragma: no cover
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags


class RegressorMixin:
    """``score`` is R^2; tags say 'regressor'."""

    _estimator_type = "regressor"

    def score(self, X, y, sample_weight=None) -> float:
        from scratch_ml.metrics import r2_score

        return r2_score(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):  # pragma: no cover
        from sklearn.utils import RegressorTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        tags.target_tags.required = True
        return tags


def check_random_state(seed: None | int | np.random.Generator | np.random.RandomState):
    """A numpy Generator from None, an int or an existing generator (scikit-learn's idiom)."""
    if seed is None or isinstance(seed, int | np.integer):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1))
    raise ValueError(f"{seed!r} cannot be used to seed a random number generator")
