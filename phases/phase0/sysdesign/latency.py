"""Latency percentiles, from raw samples and from Prometheus-style histogram buckets.

Why percentiles: a service's latency distribution is skewed. Most requests are fast, a few are
very slow (a garbage-collection pause, a cache miss, a cold model replica, a retry). The mean
mixes the two populations into a number that describes no real request, and it hides the tail
that users with many requests per page, or fan-out services that wait for the slowest of
many backends, actually feel. SLOs are therefore written on percentiles: "p99 under 300 ms".

Two ways to get a percentile in production:

- from raw samples (a load test, a trace sample): exact, but you must keep every sample;
- from histogram buckets (what Prometheus stores): cheap and aggregatable across replicas,
  but only an estimate, as good as the bucket boundaries around the quantile.

Checkpoint 0.1 is :func:`percentile` and :func:`summarize`; checkpoint 0.2 is
:func:`histogram_quantile`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sysdesign._checks import as_sample_array, require_finite, require_positive

#: The default buckets of the official Prometheus client libraries (seconds). They suit a
#: typical web service; an ML service whose p99 is 2 s wants more resolution above 1 s.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf,
)  # fmt: skip


def _check_q(q: float, *, upper: float, what: str) -> float:
    value = require_finite("q", q)
    if not 0 <= value <= upper:
        raise ValueError(f"q must be a {what} in [0, {upper:g}], got {value}")
    return value


def percentile(samples: Sequence[float] | npt.ArrayLike, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples`` with linear interpolation.

    Uses the same definition as ``numpy.percentile(samples, q)`` (method ``"linear"``, type 7
    of Hyndman and Fan): sort the samples, place the percentile at the fractional rank
    ``(n - 1) * q / 100``, and interpolate linearly between the two samples around that rank.
    So ``q=0`` is the minimum, ``q=100`` the maximum and ``q=50`` the usual median.

    Why this definition: it is continuous in ``q`` and what numpy, pandas and spreadsheet
    ``PERCENTILE.INC`` compute, so your numbers agree with the dashboards and notebooks your
    colleagues use. Note that the p99 of 50 samples is mostly interpolation: you need well over
    100 samples before a p99 says anything about the tail.

    Raises:
        ValueError: ``samples`` is empty, not one-dimensional, or contains NaN or infinities,
            or ``q`` is NaN or outside ``[0, 100]``.
    """
    xs = as_sample_array("samples", samples)
    q = _check_q(q, upper=100.0, what="percentile")
    # BEGIN SOLUTION 0.1: sort, then interpolate between the ranks around (n - 1) * q / 100
    xs = np.sort(xs)
    rank = (xs.size - 1) * (q / 100.0)
    lo = math.floor(rank)
    hi = min(lo + 1, xs.size - 1)
    frac = rank - lo
    a, b = float(xs[lo]), float(xs[hi])
    # Interpolate from the nearer end: for frac >= 0.5 this is numerically what numpy does,
    # and it returns b exactly when frac == 1.0.
    if frac >= 0.5:
        return b - (b - a) * (1.0 - frac)
    return a + (b - a) * frac
    # END SOLUTION


@dataclass(frozen=True)
class LatencySummary:
    """The numbers worth putting on a latency dashboard, in the unit of the samples.

    ``p999`` is the 99.9th percentile: the latency one request in a thousand exceeds, which is
    what a page that makes a hundred backend calls hits on one load in ten.
    """

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float

    @property
    def tail_ratio(self) -> float:
        """p99 / p50: how much slower the slow requests are than the typical one.

        Near 1-3 for a well-behaved service; 10 or more means a second, slow population
        (timeouts, queueing, cold starts) that the mean will not show you.
        """
        return self.p99 / self.p50 if self.p50 else math.inf

    def scaled(self, factor: float) -> LatencySummary:
        """The same summary in another unit, e.g. ``summary.scaled(1000)`` for s to ms."""
        return LatencySummary(
            count=self.count,
            mean=self.mean * factor,
            p50=self.p50 * factor,
            p90=self.p90 * factor,
            p95=self.p95 * factor,
            p99=self.p99 * factor,
            p999=self.p999 * factor,
            max=self.max * factor,
        )


def summarize(samples: Sequence[float] | npt.ArrayLike) -> LatencySummary:
    """Count, mean, p50/p90/p95/p99/p99.9 and maximum of ``samples``.

    Percentiles follow :func:`percentile`. Why report the mean at all: next to the p50 it shows
    how skewed the distribution is (mean far above median = heavy tail), and it is what you
    multiply by the request rate to get busy time for Little's law.

    Raises:
        ValueError: like :func:`percentile`, for empty or non-finite samples.
    """
    xs = as_sample_array("samples", samples)
    # BEGIN SOLUTION 0.1: fill every LatencySummary field from the samples
    return LatencySummary(
        count=int(xs.size),
        mean=float(xs.mean()),
        p50=percentile(xs, 50),
        p90=percentile(xs, 90),
        p95=percentile(xs, 95),
        p99=percentile(xs, 99),
        p999=percentile(xs, 99.9),
        max=float(xs.max()),
    )
    # END SOLUTION


def simulate_latencies(
    n: int,
    *,
    median_s: float = 0.05,
    sigma: float = 0.35,
    slow_fraction: float = 0.02,
    slow_median_s: float = 0.6,
    slow_sigma: float = 0.5,
    seed: int | None = 0,
) -> np.ndarray:
    """Synthetic request latencies in seconds: a lognormal body plus a slow tail.

    Real services look like this: most requests follow a roughly lognormal shape (many small
    multiplicative delays), and a small fraction hits a slow path - a cache miss that goes to
    the database, a GC pause, a request queued behind a cold model load. ``slow_fraction`` of
    the requests are drawn from a second, slower lognormal. Seeded for reproducible labs.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    require_positive("median_s", median_s)
    require_positive("slow_median_s", slow_median_s)
    if not 0 <= slow_fraction <= 1:
        raise ValueError(f"slow_fraction must be in [0, 1], got {slow_fraction}")
    rng = np.random.default_rng(seed)
    body = rng.lognormal(mean=math.log(median_s), sigma=sigma, size=n)
    slow = rng.lognormal(mean=math.log(slow_median_s), sigma=slow_sigma, size=n)
    is_slow = rng.random(n) < slow_fraction
    return np.where(is_slow, slow, body)


def _check_bounds(bounds: Sequence[float] | npt.ArrayLike) -> np.ndarray:
    ub = np.asarray(bounds, dtype=float)
    if ub.ndim != 1 or ub.size < 2:
        raise ValueError(
            f"bounds must list at least one finite upper bound followed by +Inf, got {ub.tolist()}"
        )
    if np.isnan(ub).any():
        raise ValueError("bounds must not contain NaN")
    if ub[-1] != math.inf:
        raise ValueError(
            f"the last bucket must be +Inf (the 'le=\"+Inf\"' bucket), got {ub[-1]}: without it "
            "observations above the highest bound are lost"
        )
    if np.isinf(ub[:-1]).any():
        raise ValueError("only the last bound may be infinite")
    if np.any(np.diff(ub) <= 0):
        raise ValueError(f"bounds must be strictly increasing, got {ub.tolist()}")
    return ub


def bucket_counts(
    samples: Sequence[float] | npt.ArrayLike,
    bounds: Sequence[float] | npt.ArrayLike = DEFAULT_BUCKETS,
) -> np.ndarray:
    """Cumulative bucket counts of ``samples``, as a Prometheus histogram would export them.

    Entry ``i`` counts the samples ``<= bounds[i]`` (the ``le`` label means "less or equal"), so
    the last entry (``+Inf``) is the total count. This is what
    ``histogram_quantile(..., rate(x_bucket[5m]))`` sees, minus the rate.
    """
    ub = _check_bounds(bounds)
    xs = np.asarray(samples, dtype=float)
    if xs.ndim != 1:
        raise ValueError(f"samples must be one-dimensional, got shape {xs.shape}")
    if np.isnan(xs).any():
        raise ValueError("samples contain NaN")
    return np.searchsorted(np.sort(xs), ub, side="right").astype(float)


def _cumulative_counts(
    counts: Sequence[float] | npt.ArrayLike, size: int, *, cumulative: bool
) -> np.ndarray:
    cnt = np.asarray(counts, dtype=float)
    if cnt.ndim != 1 or cnt.size != size:
        raise ValueError(f"counts must have one entry per bound ({size}), got shape {cnt.shape}")
    if not np.isfinite(cnt).all():
        raise ValueError("counts must be finite numbers")
    if (cnt < 0).any():
        raise ValueError(f"counts must be >= 0, got {cnt.tolist()}")
    if not cumulative:
        return np.cumsum(cnt)
    if np.any(np.diff(cnt) < 0):
        raise ValueError(
            "cumulative counts must not decrease from one bucket to the next "
            f"(got {cnt.tolist()}); pass cumulative=False for per-bucket counts"
        )
    return cnt


def histogram_quantile(
    q: float,
    bounds: Sequence[float] | npt.ArrayLike,
    counts: Sequence[float] | npt.ArrayLike,
    *,
    cumulative: bool = True,
) -> float:
    """Estimate the ``q``-quantile (0-1) from histogram buckets, like PromQL's histogram_quantile.

    ``bounds`` are the buckets' upper bounds (Prometheus' ``le`` labels), strictly increasing,
    with ``+Inf`` last. ``counts`` are cumulative (as Prometheus exports them: each bucket
    includes every smaller one) or, with ``cumulative=False``, the count of each bucket alone.
    Counts may be fractional, e.g. ``rate()`` values.

    The estimate, as Prometheus computes it:

    1. ``rank = q * total`` where ``total`` is the count of the ``+Inf`` bucket;
    2. find the first bucket whose cumulative count is ``>= rank``;
    3. assume the observations are spread evenly inside that bucket and interpolate linearly
       between its lower bound (the previous upper bound, or 0 for the first bucket) and its
       upper bound;
    4. if the rank falls into the ``+Inf`` bucket, return the highest finite bound: there is
       nothing to interpolate towards. If the first bucket's upper bound is <= 0 and the rank
       falls into it, return that bound.

    Why it matters: the error of the estimate is bounded by the width of the bucket the
    quantile lands in. With default buckets, a true p99 of 1.1 s is reported anywhere between
    1 s and 2.5 s. Put bucket boundaries near your SLO threshold.

    Deliberate differences from Prometheus, which returns NaN or +/-Inf instead of failing:
    this function raises ``ValueError`` for ``q`` outside [0, 1] or NaN, for an empty
    histogram, for a missing ``+Inf`` bucket and for decreasing cumulative counts (Prometheus
    silently makes them monotonic). In the one case where Prometheus divides 0 by 0 (``q=0``
    with an empty first bucket) it returns the first bucket's lower bound.
    """
    q = _check_q(q, upper=1.0, what="quantile")
    ub = _check_bounds(bounds)
    cum = _cumulative_counts(counts, ub.size, cumulative=cumulative)
    total = float(cum[-1])
    if total == 0:
        raise ValueError("the histogram has no observations: its quantiles are undefined")
    # BEGIN SOLUTION 0.2: find the bucket holding rank q * total, interpolate inside it
    rank = q * total
    # first bucket (among the finite ones) whose cumulative count reaches the rank
    b = int(np.searchsorted(cum[:-1], rank, side="left"))
    if b == ub.size - 1:  # the rank lies in the +Inf bucket
        return float(ub[-2])
    if b == 0 and ub[0] <= 0:
        return float(ub[0])
    start = 0.0 if b == 0 else float(ub[b - 1])
    end = float(ub[b])
    below = 0.0 if b == 0 else float(cum[b - 1])
    in_bucket = float(cum[b]) - below
    if in_bucket == 0:  # only when rank == 0 and the first bucket is empty
        return start
    return start + (end - start) * ((rank - below) / in_bucket)
    # END SOLUTION
