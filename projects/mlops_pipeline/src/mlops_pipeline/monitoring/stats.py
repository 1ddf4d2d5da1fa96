"""Drift statistics: the population stability index and the two-sample Kolmogorov-Smirnov test.

Checkpoint 2.8 is `quantile_edges`, `psi`, `psi_categorical`, `ks_statistic` and `ks_pvalue`.

PSI (population stability index) compares the share of rows per bin:

    PSI = sum_i (c_i - r_i) * ln(c_i / r_i)

with r_i, c_i the reference's and the current sample's shares of bin i. Choices, all explicit:
- bins are quantiles of the REFERENCE's non-missing values (`bins` equal-mass bins by design),
  interior edges only, deduplicated (a value taken by 90 % of the rows, precipitation 0, would
  otherwise give several identical edges), the first and last bins open-ended, so a current
  value outside the reference's range lands in an end bin rather than nowhere. Bins are closed
  on the right: bin i holds edges[i-1] < x <= edges[i] (np.searchsorted(edges, x, "left")).
- missing values (NaN) get their own bin, always present, so a feed that starts sending nulls
  raises PSI like any other shift instead of being silently dropped.
- smoothing: a bin with no rows in a sample gets the share `smoothing` (default 1e-4) instead
  of 0, which would make ln(c/r) infinite. Its contribution then grows like ln(1 / smoothing):
  with 1e-4, a bin holding 10 % of the reference and nothing now adds 0.1 * ln(1000) = 0.69.
  The shares are not renormalised (the floor is tiny next to 1).
The rules of thumb (PSI < 0.1 stable, 0.1-0.25 moderate, > 0.25 a major shift) assume about ten
quantile bins and samples in the thousands: more bins, a smaller floor or smaller samples all
raise PSI for the same two distributions, and two samples of the SAME distribution of n rows
each give PSI ~ (bins - 1) * (1/n_ref + 1/n_cur) on average, not 0. `alarms.py` calibrates its
thresholds for that reason instead of trusting the folklore.

The KS statistic is the largest vertical distance between the two empirical CDFs; its p-value
reproduces `scipy.stats.ks_2samp(reference, current)` (method "auto", two-sided) to 1e-9: the
exact distribution (`ks_exact_pvalue`, Hodges' lattice-path count) when both samples have at
most 10,000 values, else Smirnov's asymptotic one, `scipy.stats.kstwo.sf(D, round(m*n/(m+n)))`.
`method="exact"` or `"asymp"` forces one, as scipy's `method=` does. Missing values are
dropped before the test (they are what the PSI's missing bin and the missing-rate checks are
for). Note that the p-value assumes independent rows; `alarms.py` explains why flights are not.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import kstwo

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_SMOOTHING",
    "EXACT_MAX_N",
    "MISSING",
    "KSResult",
    "ks_2samp",
    "ks_exact_pvalue",
    "ks_pvalue",
    "ks_statistic",
    "psi",
    "psi_categorical",
    "quantile_edges",
]

DEFAULT_BINS = 10
DEFAULT_SMOOTHING = 1e-4
"""The share given to a bin a sample has no rows in (see the module docstring)."""
EXACT_MAX_N = 10_000
"""scipy's `ks_2samp(method="auto")` is exact when both samples have at most this many values."""
MISSING = "__missing__"
"""The category missing values are counted under by `psi_categorical`."""

KSMethod = Literal["auto", "exact", "asymp"]


class KSResult(NamedTuple):
    """The two-sample KS statistic D and its two-sided p-value (unpacks like scipy's result)."""

    statistic: float
    pvalue: float


def _float_array(values: Iterable[float] | np.ndarray | pd.Series, name: str) -> np.ndarray:
    """A float64 array with NaN for every missing value (None, pd.NA, NaN); infinities refused."""
    if isinstance(values, pd.Series | pd.Index):
        try:
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}: values must be numeric ({error})") from error
    else:
        try:
            array = np.asarray(
                [np.nan if v is None or v is pd.NA else v for v in values]
                if not isinstance(values, np.ndarray)
                else values,
                dtype=np.float64,
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}: values must be numeric ({error})") from error
    array = np.ravel(array)
    if np.isinf(array).any():
        raise ValueError(f"{name}: infinite values; drift statistics need finite values or NaN")
    return array


def _check_smoothing(smoothing: float) -> None:
    if not 0 < smoothing < 1:
        raise ValueError(f"smoothing must be in (0, 1), got {smoothing}")


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """The interior edges of `bins` equal-mass bins of the reference's non-missing values:
    `np.quantile` (linear interpolation) at 1/bins, ..., (bins-1)/bins, deduplicated."""
    # BEGIN SOLUTION 2.8: the reference's quantiles at k/bins, missing values left out, unique
    values = reference[~np.isnan(reference)]
    if values.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))
    # END SOLUTION


def psi(
    reference: Iterable[float] | np.ndarray | pd.Series,
    current: Iterable[float] | np.ndarray | pd.Series,
    bins: int = DEFAULT_BINS,
    *,
    smoothing: float = DEFAULT_SMOOTHING,
) -> float:
    """PSI of `current` against `reference` over quantile bins of the reference, plus a
    missing bin; empty bins get the share `smoothing` (see the module docstring)."""
    if not isinstance(bins, int | np.integer) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    _check_smoothing(smoothing)
    ref = _float_array(reference, "reference")
    cur = _float_array(current, "current")
    if ref.size == 0 or cur.size == 0:
        raise ValueError(f"psi needs non-empty samples; got {ref.size} and {cur.size} values")
    # BEGIN SOLUTION 2.8: quantile bins of the reference, a missing bin, smoothed shares, the sum
    edges = quantile_edges(ref, int(bins))
    n_bins = len(edges) + 1  # open-ended first and last bins; the missing bin comes after

    def shares(sample: np.ndarray) -> np.ndarray:
        missing = np.isnan(sample)
        index = np.searchsorted(edges, sample[~missing], side="left")
        counts = np.bincount(index, minlength=n_bins).astype(np.float64)
        counts = np.append(counts, missing.sum())
        share = counts / sample.size
        return np.where(counts == 0, smoothing, share)

    r, c = shares(ref), shares(cur)
    return float(np.sum((c - r) * np.log(c / r)))
    # END SOLUTION


def psi_categorical(
    reference: Iterable[object] | pd.Series,
    current: Iterable[object] | pd.Series,
    *,
    smoothing: float = DEFAULT_SMOOTHING,
) -> float:
    """PSI over categories (carrier, airport): one bin per value seen in either sample, missing
    values (None, NaN, pd.NA) counted as the category MISSING, empty bins smoothed. A category
    new in `current` (a carrier the model never saw) contributes like any other empty bin."""
    _check_smoothing(smoothing)
    ref = pd.Series(list(reference) if not isinstance(reference, pd.Series) else reference)
    cur = pd.Series(list(current) if not isinstance(current, pd.Series) else current)
    if ref.empty or cur.empty:
        raise ValueError(f"psi_categorical needs non-empty samples; got {len(ref)} and {len(cur)}")
    # BEGIN SOLUTION 2.8: shares per category (missing as its own), smoothed, the PSI sum
    ref = ref.astype(object).where(ref.notna(), MISSING).astype(str)
    cur = cur.astype(object).where(cur.notna(), MISSING).astype(str)
    categories = sorted(set(ref) | set(cur))
    counts_r = ref.value_counts().reindex(categories, fill_value=0).to_numpy(np.float64)
    counts_c = cur.value_counts().reindex(categories, fill_value=0).to_numpy(np.float64)
    r = np.where(counts_r == 0, smoothing, counts_r / len(ref))
    c = np.where(counts_c == 0, smoothing, counts_c / len(cur))
    return float(np.sum((c - r) * np.log(c / r)))
    # END SOLUTION


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """The two-sample KS statistic: max |F_ref(x) - F_cur(x)| over the pooled values, with
    both ECDFs right-continuous (F(x) = share of values <= x); samples without NaN."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.size == 0 or cur.size == 0:
        raise ValueError(f"ks_statistic needs non-empty samples; got {ref.size} and {cur.size}")
    if np.isnan(ref).any() or np.isnan(cur).any():
        raise ValueError("ks_statistic: samples contain NaN; drop missing values first")
    # BEGIN SOLUTION 2.8: ECDFs of both samples on the merged values, the largest gap
    ref, cur = np.sort(ref), np.sort(cur)
    pooled = np.concatenate([ref, cur])
    cdf_ref = np.searchsorted(ref, pooled, side="right") / ref.size
    cdf_cur = np.searchsorted(cur, pooled, side="right") / cur.size
    return float(np.max(np.abs(cdf_ref - cdf_cur)))
    # END SOLUTION


def ks_pvalue(statistic: float, n1: int, n2: int, method: KSMethod = "auto") -> KSResult:
    """The two-sided p-value of KS statistic `statistic` for sample sizes n1 and n2, as
    scipy.stats.ks_2samp computes it: "auto" is exact when max(n1, n2) <= EXACT_MAX_N, else
    asymptotic; "exact" uses `ks_exact_pvalue` (which also rounds D to a multiple of
    1/lcm(n1, n2)) unless lcm is too large for it (then asymptotic, with a warning, as scipy);
    "asymp" is kstwo.sf(D, round(n1*n2/(n1+n2))). Returns the statistic used and the p-value."""
    if method not in ("auto", "exact", "asymp"):
        raise ValueError(f"unknown method {method!r}; use 'auto', 'exact' or 'asymp'")
    if int(n1) != n1 or int(n2) != n2 or n1 < 1 or n2 < 1:
        raise ValueError(f"sample sizes must be positive integers, got {n1} and {n2}")
    if not 0 <= statistic <= 1:
        raise ValueError(f"a KS statistic lies in [0, 1], got {statistic}")
    n1, n2 = int(n1), int(n2)
    # BEGIN SOLUTION 2.8: scipy's choice of the exact or the asymptotic distribution
    if method == "auto":
        method = "exact" if max(n1, n2) <= EXACT_MAX_N else "asymp"
    elif method == "exact":
        g = math.gcd(n1, n2)
        if n1 // g >= np.iinfo(np.int32).max / (n2 // g):
            warnings.warn(
                f"exact KS p-value not possible with sample sizes {n1} and {n2}; "
                "switching to 'asymp'",
                RuntimeWarning,
                stacklevel=2,
            )
            method = "asymp"
    if method == "exact":
        statistic, p = ks_exact_pvalue(n1, n2, statistic)
    else:
        m, n = sorted([float(n1), float(n2)], reverse=True)
        p = float(kstwo.sf(statistic, np.round(m * n / (m + n))))
    return KSResult(float(statistic), float(np.clip(p, 0.0, 1.0)))
    # END SOLUTION


def ks_2samp(
    reference: Iterable[float] | np.ndarray | pd.Series,
    current: Iterable[float] | np.ndarray | pd.Series,
    method: KSMethod = "auto",
) -> KSResult:
    """Two-sample KS test of the non-missing values: (statistic, two-sided p-value), equal to
    `scipy.stats.ks_2samp(ref, cur, method=method)` on the same values."""
    ref = _float_array(reference, "reference")
    cur = _float_array(current, "current")
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        raise ValueError(
            f"ks_2samp needs non-missing values in both samples; got {ref.size} and {cur.size}"
        )
    return ks_pvalue(ks_statistic(ref, cur), ref.size, cur.size, method)


def ks_exact_pvalue(n1: int, n2: int, statistic: float) -> tuple[float, float]:
    """The exact two-sided P(D >= statistic) for samples of n1 and n2 distinct values.

    Given to the learner (numerics, not the lesson). Hodges (1958): the merged sorted sample
    is a lattice path from (0, 0) to (m, n), one step right per value of the larger sample,
    one up per value of the other, all C(m+n, n) paths equally likely under the null; D >= d
    when the path touches a point with |x/m - y/n| >= d, i.e. |x*n/g - y*m/g| >= h with
    g = gcd(m, n) and h = round(d * lcm(m, n)) (D is rounded to that grid, as scipy does).
    Q(x, y), the probability that a random path to (x, y) has touched such a point, is 1 on
    them and (x*Q(x-1, y) + y*Q(x, y-1)) / (x + y) elsewhere: only sums of positive terms, so
    tiny p-values keep their precision (Viehmann 2021's form of the recursion, which scipy
    also uses). The recursion runs one anti-diagonal x + y = s at a time, vectorised, over
    the points inside the band only (outside it Q = 1). Returns (rounded statistic, p).
    """
    m, n = (int(n1), int(n2)) if n1 >= n2 else (int(n2), int(n1))
    g = math.gcd(m, n)
    mg, ng = m // g, n // g
    lcm = mg * n
    h = int(np.round(statistic * lcm))
    d = h / lcm
    if h == 0:
        return d, 1.0
    # q[x + 1] holds Q on the latest diagonal for x in [lo, hi], and 1 everywhere else (points
    # outside the band, or not on the grid: those only ever meet a zero coefficient).
    q = np.ones(m + 2)
    q[1] = 0.0  # Q(0, 0): the empty path has touched nothing
    xs = np.arange(m + 1, dtype=np.float64)
    lo = hi = 0
    for s in range(1, m + n + 1):
        # Inside the band: |x*ng - (s - x)*mg| < h, i.e. s*mg - h < x*(mg + ng) < s*mg + h.
        a = max(max(0, s - n), (s * mg - h) // (mg + ng) + 1)
        b = min(min(s, m), -(-(s * mg + h) // (mg + ng)) - 1)
        if a > b:  # the whole diagonal is outside: every path has left the band
            return d, 1.0
        x = xs[a : b + 1]
        # Q(x - 1, y) sits at q[x], Q(x, y - 1) at q[x + 1] (both on the previous diagonal).
        new = (q[a : b + 1] * x + q[a + 1 : b + 2] * (s - x)) / s
        q[lo + 1 : a + 1] = 1.0
        q[b + 2 : hi + 2] = 1.0
        q[a + 1 : b + 2] = new
        lo, hi = a, b
    return d, float(q[m + 1])
