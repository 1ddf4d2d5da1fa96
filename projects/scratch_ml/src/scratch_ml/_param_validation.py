"""Declarative hyper-parameter validation, after ``sklearn.utils._param_validation``.

Each estimator declares what every constructor argument may be, as data::

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="right")],
        "solver": [StrOptions({"newton", "gd"})],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "random_state": ["random_state"],
    }

and ``BaseEstimator._validate_params`` checks them all at the start of ``fit`` (never in
``__init__``: ``clone`` and ``set_params`` must store any value unchanged). A value is valid when
it satisfies at least one constraint of its list. Declaring rules as data instead of writing an
``if`` per parameter gives every estimator the same checks and the same error message, makes the
rules readable in one place per class, and lets a test prove that no parameter is forgotten.

The wording of the messages is scikit-learn's, so errors read the same on both sides:
``The 'C' parameter of LogisticRegression must be a float in the range (0.0, inf]. Got -1
instead.`` Two deliberate differences: a bool is never accepted as a number (``max_depth=True``
is a bug, not a depth of 1), and string options are listed sorted, so messages do not depend on
the order of a set.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np

__all__ = [
    "Interval",
    "InvalidParameterError",
    "RealNotInt",
    "StrOptions",
    "make_constraint",
    "validate_parameter_constraints",
]


class InvalidParameterError(ValueError, TypeError):
    """A hyper-parameter has a type or value outside its declared constraints.

    Both bases, as in scikit-learn: a wrong value is a ValueError, a wrong type a TypeError,
    and callers catching either keep working.
    """


class RealNotInt(Real):
    """Real numbers that are not integers: ``1.0`` belongs, ``1`` does not.

    Lets a parameter accept "an int count or a float fraction" (``min_samples_leaf=5`` versus
    ``0.05``) with two intervals that cannot both match the same value.
    """


RealNotInt.register(float)
RealNotInt.register(np.floating)  # np.float32 is not a subclass of float


def _type_name(kind: type) -> str:
    """A readable type name for messages: 'float', 'int', 'dict', 'numpy.random....'."""
    if kind is Real or kind is RealNotInt:
        return "float"
    if kind is Integral:
        return "int"
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


class _Constraint(ABC):
    """One allowed kind of value; ``str()`` is the phrase used in error messages."""

    @abstractmethod
    def is_satisfied_by(self, value: Any) -> bool:
        """Whether ``value`` is allowed by this constraint."""

    @abstractmethod
    def __str__(self) -> str: ...


class _InstancesOf(_Constraint):
    """Any instance of a type, e.g. ``dict`` for a class-weight mapping."""

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind)

    def __str__(self) -> str:
        return f"an instance of {_type_name(self.kind)!r}"


class _NoneConstraint(_Constraint):
    """The value None (e.g. 'no depth limit')."""

    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


class _AnyOf(_Constraint):
    """A named group of constraints, listed together in messages."""

    def __init__(self, *constraints: _Constraint) -> None:
        self.constraints = constraints

    def is_satisfied_by(self, value: Any) -> bool:
        return any(c.is_satisfied_by(value) for c in self.constraints)

    def __str__(self) -> str:
        return _join([str(c) for c in self.constraints])


class _Booleans(_AnyOf):
    """``"boolean"``: Python's and numpy's booleans."""

    def __init__(self) -> None:
        super().__init__(_InstancesOf(bool), _InstancesOf(np.bool_))


class StrOptions(_Constraint):
    """One of a fixed set of strings, e.g. ``StrOptions({"newton", "gd"})``."""

    def __init__(self, options: Iterable[str]) -> None:
        self.options = frozenset(options)
        if not self.options or not all(isinstance(o, str) for o in self.options):
            raise TypeError(f"StrOptions needs a non-empty set of strings, got {options!r}.")

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options

    def __str__(self) -> str:
        return f"a str among {{{', '.join(repr(o) for o in sorted(self.options))}}}"


Closed = Literal["left", "right", "both", "neither"]


class Interval(_Constraint):
    """A typed range of numbers: ``Interval(Integral, 1, None, closed="left")`` is [1, inf).

    ``kind`` is ``numbers.Integral``, ``numbers.Real`` or :class:`RealNotInt`; a bound of None is
    unbounded on that side; ``closed`` says which bounds belong to the interval. NaN and bools
    never do. ``Interval(Real, 0, None, closed="right")`` admits ``np.inf``, as scikit-learn's
    does (the right bound, infinity, is closed).
    """

    def __init__(
        self, kind: type, left: float | None, right: float | None, *, closed: Closed
    ) -> None:
        if kind not in (Integral, Real, RealNotInt):
            raise TypeError(f"kind must be Integral, Real or RealNotInt, got {kind!r}.")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(
                f"closed must be 'left', 'right', 'both' or 'neither', got {closed!r}."
            )
        if left is not None and right is not None and not left < right:
            raise ValueError(f"left must be below right, got left={left!r}, right={right!r}.")
        self.kind = kind
        self.left = left
        self.right = right
        self.closed = closed

    def __contains__(self, value: Real) -> bool:
        if not isinstance(value, Integral) and math.isnan(value):
            return False
        below = operator.lt if self.closed in ("left", "both") else operator.le
        above = operator.gt if self.closed in ("right", "both") else operator.ge
        left = -math.inf if self.left is None else self.left
        right = math.inf if self.right is None else self.right
        return not (below(value, left) or above(value, right))

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.kind) and not _is_bool(value) and value in self

    def __str__(self) -> str:
        integral = self.kind is Integral
        left = "-inf" if self.left is None else (self.left if integral else float(self.left))
        right = "inf" if self.right is None else (self.right if integral else float(self.right))
        opening = "[" if self.closed in ("left", "both") else "("
        closing = "]" if self.closed in ("right", "both") else ")"
        return (
            f"{'an int' if integral else 'a float'} in the range {opening}{left}, {right}{closing}"
        )


class _RandomStates(_AnyOf):
    """``"random_state"``: whatever :func:`scratch_ml.base.check_random_state` accepts.

    scikit-learn's seeds (None, an int in [0, 2**32 - 1], a ``RandomState``) plus a numpy
    ``Generator``, which this package uses internally.
    """

    def __init__(self) -> None:
        super().__init__(
            Interval(Integral, 0, 2**32 - 1, closed="both"),
            _InstancesOf(np.random.RandomState),
            _InstancesOf(np.random.Generator),
            _NoneConstraint(),
        )


# Built once: validation runs at every fit, and these are stateless.
_NONE = _NoneConstraint()
_NAMED_CONSTRAINTS: dict[str, _Constraint] = {
    "boolean": _Booleans(),
    "random_state": _RandomStates(),
}


def make_constraint(constraint: Any) -> _Constraint:
    """The constraint object for one entry of a constraint list.

    Accepted entries: a constraint object (:class:`Interval`, :class:`StrOptions`), None (the
    value None), a type (any instance of it), ``"boolean"`` or ``"random_state"``.
    """
    if isinstance(constraint, _Constraint):
        return constraint
    if constraint is None:
        return _NONE
    if isinstance(constraint, type):
        return _InstancesOf(constraint)
    if isinstance(constraint, str) and constraint in _NAMED_CONSTRAINTS:
        return _NAMED_CONSTRAINTS[constraint]
    raise TypeError(
        f"Unknown constraint {constraint!r}: use Interval, StrOptions, None, a type, "
        f"or one of {sorted(_NAMED_CONSTRAINTS)}."
    )


def _join(phrases: list[str]) -> str:
    """'a', 'a or b', 'a, b or c': how scikit-learn lists the allowed kinds."""
    if len(phrases) == 1:
        return phrases[0]
    return f"{', '.join(phrases[:-1])} or {phrases[-1]}"


def validate_parameter_constraints(
    parameter_constraints: Mapping[str, list[Any]],
    params: Mapping[str, Any],
    caller_name: str,
) -> None:
    """Raise :class:`InvalidParameterError` for the first parameter no constraint allows.

    Parameters without an entry are not checked (a subclass may add its own); the package's
    tests require an entry for every constructor argument of every estimator.
    """
    for name, value in params.items():
        declared = parameter_constraints.get(name)
        if declared is None or any(make_constraint(c).is_satisfied_by(value) for c in declared):
            continue
        allowed = _join([str(make_constraint(c)) for c in declared])
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller_name} must be {allowed}. Got {value!r} instead."
        )
