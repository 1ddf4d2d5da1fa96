"""Argument checks shared by the lab modules.

They live outside the solution regions on purpose: the learner's scaffold keeps them, so a
wrong call fails with a clear ``ValueError`` rather than with a confusing ``NotImplementedError``
or, worse, a silently wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

#: Relative slack used when a float that "should" be an integer is rounded up, e.g.
#: ``0.3 / 0.1 == 2.9999999999999996``: without it, exact multiples would cost an extra
#: replica or an extra instance.
CEIL_RTOL = 1e-9


def ceil_tolerant(x: float) -> int:
    """``math.ceil`` that ignores floating-point noise just above an integer.

    Capacity maths divides loads by capacities, and ``100 * 0.2 / 2`` can come out as
    ``10.000000000000002``. Rounding that up to 11 would buy hardware for a rounding error.
    """
    nearest = round(x)
    if math.isclose(x, nearest, rel_tol=CEIL_RTOL, abs_tol=CEIL_RTOL):
        return int(nearest)
    return math.ceil(x)


def require_finite(name: str, value: float) -> float:
    """Return ``value`` as a float, rejecting NaN, infinities and non-numbers."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(out):
        raise ValueError(f"{name} must not be NaN")
    if math.isinf(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def require_positive(name: str, value: float) -> float:
    """A finite number > 0 (a rate, a duration, a price)."""
    out = require_finite(name, value)
    if out <= 0:
        raise ValueError(f"{name} must be > 0, got {out}")
    return out


def require_non_negative(name: str, value: float) -> float:
    """A finite number >= 0 (a count, a load that may be idle)."""
    out = require_finite(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def require_positive_int(name: str, value: Any) -> int:
    """A whole number >= 1 (servers, replicas). Floats such as ``4.0`` are accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if not math.isfinite(as_float) or as_float != int(as_float) or as_float < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(as_float)


def require_fraction(name: str, value: float, *, allow_one: bool = True) -> float:
    """A number in (0, 1], or (0, 1) with ``allow_one=False`` (utilisation, an SLO)."""
    out = require_finite(name, value)
    upper_ok = out <= 1 if allow_one else out < 1
    if out <= 0 or not upper_ok:
        interval = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {out}")
    return out


def as_sample_array(name: str, samples: Sequence[float] | npt.ArrayLike) -> np.ndarray:
    """A non-empty, one-dimensional float array without NaN or infinities."""
    arr = np.asarray(samples, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: a percentile of no samples is undefined")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contain NaN; drop or impute missing measurements first")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contain infinite values")
    return arr
