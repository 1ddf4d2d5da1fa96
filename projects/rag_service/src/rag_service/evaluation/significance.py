"""Is system A really better than system B on these queries? Paired tests over per-query scores.

Both tests work on the per-query differences d_i = a_i - b_i, so each query is compared with
itself: query difficulty, which varies far more than the systems do, cancels out.

- `paired_randomization_test`: under H0 (the systems are exchangeable) each d_i is as likely to
  be -d_i. The two-sided p-value is the share of sign assignments whose |sum| is at least the
  observed |sum|. With 2^n <= n_resamples (and n <= 16) every assignment is enumerated, so p is
  exact; otherwise random assignments are drawn and the observed one is counted too,
  p = (hits + 1) / (draws + 1) (a valid p-value: never 0, and exactly 1 for identical systems).
- `paired_bootstrap_ci`: the percentile interval of the mean difference over query resamples.

Both are seeded, so a results file and its comparison can be reproduced exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_MAX_EXACT_QUERIES = 16
_BATCH_CELLS = 4_000_000  # resamples x queries per block: ~32 MB of float64 at a time


@dataclass(frozen=True)
class BootstrapInterval:
    """A percentile bootstrap interval of mean(a - b) and the observed mean difference."""

    low: float
    high: float
    mean_difference: float
    confidence: float


def _differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    if first.ndim != 1 or second.ndim != 1:
        raise ValueError("a and b must be one-dimensional sequences of per-query scores")
    if first.shape != second.shape:
        raise ValueError(f"a and b must be paired: {first.size} scores vs {second.size}")
    if first.size == 0:
        raise ValueError("no paired scores: a and b are empty")
    if not (np.isfinite(first).all() and np.isfinite(second).all()):
        raise ValueError("per-query scores must be finite")
    return first - second


def _batch(n_queries: int) -> int:
    return max(1, _BATCH_CELLS // n_queries)


def _check_resamples(n_resamples: int) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive int, got {n_resamples!r}")


def paired_randomization_test(
    a: Sequence[float], b: Sequence[float], n_resamples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value of the sign-flip test on the per-query differences a - b.

    Exact (all 2^n sign assignments) when 2^n <= n_resamples and n <= 16, else Monte Carlo
    with `seed`.
    """
    _check_resamples(n_resamples)
    differences = _differences(a, b)
    n = differences.size
    observed = abs(differences.sum())
    # Sums that equal the observed one up to rounding must count as "at least as extreme",
    # otherwise identical-magnitude flips would be missed by the last bit.
    tolerance = 1e-12 * max(1.0, float(np.abs(differences).sum()))
    if n <= _MAX_EXACT_QUERIES and 2**n <= n_resamples:
        codes = np.arange(2**n, dtype=np.int64)[:, None]
        signs = 1.0 - 2.0 * ((codes >> np.arange(n)) & 1)
        extreme = np.abs(signs @ differences) >= observed - tolerance
        return float(extreme.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    remaining = n_resamples
    while remaining:
        batch = min(remaining, _batch(n))
        signs = rng.choice(np.array([-1.0, 1.0]), size=(batch, n))
        hits += int((np.abs(signs @ differences) >= observed - tolerance).sum())
        remaining -= batch
    return (hits + 1) / (n_resamples + 1)


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Percentile bootstrap interval of mean(a - b): queries resampled with replacement."""
    _check_resamples(n_resamples)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    differences = _differences(a, b)
    n = differences.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, _batch(n)):
        stop = min(start + _batch(n), n_resamples)
        rows = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = differences[rows].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return BootstrapInterval(
        low=float(low),
        high=float(high),
        mean_difference=float(differences.mean()),
        confidence=confidence,
    )
