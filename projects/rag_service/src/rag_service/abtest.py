"""A/B tests for the service: who sees which variant, and whether the difference is real.

- Assignment (`assign_variant`) is a pure function of (experiment, user): sha256 of
  "experiment:user" read as a number in [0, 1) and placed on the cumulative weights. No table of
  assignments to store or lose, the same user gets the same variant on every request and every
  replica, and the hash of another experiment's name is independent, so experiments do not
  correlate (a user in B of one test is not more likely to be in B of the next).
- Analysis: `compare_proportions` (two-proportion z-test: pooled standard error for the p-value,
  because under H0 both variants share one rate; unpooled for the Wald interval, because the
  interval is about the difference as it is), `compare_means` (Welch's t-test, which does not
  assume equal variances: latencies of two prompts rarely have them), `sample_size_per_variant`
  (how many users each variant needs before looking is worth it), and `srm_check` (sample-ratio
  mismatch: a 50/50 split that delivered 52/48 over 20,000 users means broken assignment or
  logging, and every other number of that test is suspect).
- `ExperimentLog` keeps exposures and outcomes in one SQLite table and `report`s an experiment.

The classical tests assume the sample size was fixed in advance: checking the p-value every day
and stopping at the first p < 0.05 inflates false positives several-fold. Compute the sample
size first, then look once.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import math
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import stats

EXPOSURE = "_exposure"
"""The outcome name under which exposures are logged; user outcomes may not start with '_'."""
_SQLITE_HEADER = b"SQLite format 3\x00"
_COLUMNS = ["experiment", "variant", "user", "outcome", "value", "ts"]


def _check_variants(variants: Sequence[str]) -> list[str]:
    if isinstance(variants, str):
        raise ValueError("variants must be a sequence of names, not one string")
    names = list(variants)
    if not names:
        raise ValueError("variants must name at least one variant")
    if any(not isinstance(v, str) or not v for v in names):
        raise ValueError(f"variants must be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"variants must be distinct, got {names!r}")
    return names


def _check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """Weights as probabilities summing to 1; None means equal weights.

    Plain Python, not numpy: assignment runs on every request and numpy's per-call overhead
    would dominate for a handful of variants.
    """
    if weights is None:
        return [1.0 / count] * count
    if isinstance(weights, str) or len(weights) != count:
        raise ValueError(f"weights must have one number per variant ({count}), got {weights!r}")
    values = []
    for w in weights:
        if isinstance(w, bool):
            raise ValueError(f"weights must be numbers, got {weights!r}")
        try:
            values.append(float(w))
        except (TypeError, ValueError):
            raise ValueError(f"weights must be numbers, got {weights!r}") from None
    total = sum(values)
    if any(not math.isfinite(w) or w < 0 for w in values) or total <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {weights!r}")
    return [w / total for w in values]


def bucket(user_id: str, experiment: str) -> float:
    """sha256("experiment:user") as a uniform number in [0, 1): 64 bits of the digest / 2^64."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")
    if not isinstance(experiment, str) or not experiment:
        raise ValueError(f"experiment must be a non-empty string, got {experiment!r}")
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_variant(
    user_id: str,
    experiment: str,
    variants: Sequence[str],
    weights: Sequence[float] | None = None,
) -> str:
    """The variant `user_id` sees in `experiment`: stable forever, independent across tests.

    The user's bucket in [0, 1) falls into one variant's slice of the cumulative weights
    (weights are normalised; a weight of 0 never receives anyone). Changing the weights moves
    only users near the slice edges, so ramping B from 10 % to 50 % keeps the first 10 % in B.
    """
    names = _check_variants(variants)
    probabilities = _check_weights(weights, len(names))
    point = bucket(user_id, experiment)
    edges = list(itertools.accumulate(probabilities))
    edges[-1] = 1.0  # the last edge is exactly 1 whatever the rounding of the sum
    return names[bisect.bisect_right(edges, point)]


@dataclass(frozen=True)
class Comparison:
    """Variant b against variant a: b - a, its interval, the two-sided p-value and the inputs.

    For proportions `rate_a`/`rate_b` are conversion rates, for means they are the means.
    """

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    rate_a: float
    rate_b: float
    n_a: int
    n_b: int
    confidence: float = 0.95

    @property
    def significant(self) -> bool:
        """p below 1 - confidence: the interval then excludes 0."""
        return self.p_value < 1 - self.confidence


def _count(name: str, value: int, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _confidence(value: float, name: str = "confidence") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def compare_proportions(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = 0.95
) -> Comparison:
    """Two-proportion z-test of rate_b - rate_a, with a Wald interval at `confidence`.

    p-value: z = (p_b - p_a) / sqrt(p (1 - p) (1/n_a + 1/n_b)) with the pooled rate
    p = (s_a + s_b) / (n_a + n_b), two-sided. Interval: (p_b - p_a) +- z_{1 - alpha/2} *
    sqrt(p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b). When both variants are all 0 or all 1 the
    pooled error is 0 and the difference 0: p = 1. The normal approximation wants roughly ten
    successes and ten failures per variant; below that, use an exact test.
    """
    n_a, n_b = _count("n_a", n_a, 1), _count("n_b", n_b, 1)
    successes_a = _count("successes_a", successes_a)
    successes_b = _count("successes_b", successes_b)
    if successes_a > n_a or successes_b > n_b:
        raise ValueError(
            f"successes cannot exceed trials: {successes_a}/{n_a} and {successes_b}/{n_b}"
        )
    confidence = _confidence(confidence)
    # BEGIN SOLUTION 3.10: difference b - a, unpooled Wald interval, pooled z-test p-value
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    difference = rate_b - rate_a
    z_crit = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    se_unpooled = math.sqrt(rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b)
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    p_value = 1.0 if se_pooled == 0 else float(2 * stats.norm.sf(abs(difference) / se_pooled))
    return Comparison(
        difference=difference,
        ci_low=difference - z_crit * se_unpooled,
        ci_high=difference + z_crit * se_unpooled,
        p_value=p_value,
        rate_a=rate_a,
        rate_b=rate_b,
        n_a=n_a,
        n_b=n_b,
        confidence=confidence,
    )
    # END SOLUTION


def _sample(name: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{name} must be a 1-d sequence of at least 2 numbers")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def compare_means(
    values_a: Sequence[float], values_b: Sequence[float], confidence: float = 0.95
) -> Comparison:
    """Welch's t-test of mean_b - mean_a and its interval (latency, judge scores, lengths).

    se = sqrt(var_a / n_a + var_b / n_b) with sample variances; the degrees of freedom are
    Welch-Satterthwaite's. Two constant samples: p = 1 if their means agree, else 0.
    """
    a, b = _sample("values_a", values_a), _sample("values_b", values_b)
    confidence = _confidence(confidence)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    difference = mean_b - mean_a
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        p_value, half = (1.0 if difference == 0 else 0.0), 0.0
    else:
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
        p_value = float(2 * stats.t.sf(abs(difference) / se, df))
        half = float(stats.t.ppf(1 - (1 - confidence) / 2, df)) * se
    return Comparison(
        difference=difference,
        ci_low=difference - half,
        ci_high=difference + half,
        p_value=p_value,
        rate_a=mean_a,
        rate_b=mean_b,
        n_a=int(a.size),
        n_b=int(b.size),
        confidence=confidence,
    )


def sample_size_per_variant(
    baseline_rate: float,
    minimum_detectable_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Users per variant for a two-sided two-proportion test to detect an absolute change.

    With p1 = baseline, p2 = p1 + mde, pbar = (p1 + p2) / 2 and q = 1 - p:
    n = (z_{1-alpha/2} sqrt(2 pbar qbar) + z_{power} sqrt(p1 q1 + p2 q2))^2 / mde^2, rounded
    up. Halving the effect quadruples n: that is why small lifts need large tests.
    """
    if isinstance(baseline_rate, bool) or not 0 < baseline_rate < 1:
        raise ValueError(f"baseline_rate must be in (0, 1), got {baseline_rate!r}")
    mde = float(minimum_detectable_effect)
    if not math.isfinite(mde) or mde == 0 or not 0 < baseline_rate + mde < 1:
        raise ValueError(
            "minimum_detectable_effect must be non-zero with baseline_rate + effect in (0, 1), "
            f"got {minimum_detectable_effect!r}"
        )
    alpha = _confidence(alpha, "alpha")
    power = _confidence(power, "power")
    # BEGIN SOLUTION 3.10: the two-proportion sample-size formula, rounded up
    p1, p2 = float(baseline_rate), float(baseline_rate) + mde
    p_bar = (p1 + p2) / 2
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_beta = stats.norm.ppf(power)
    root = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_beta * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    n = root**2 / mde**2
    return math.ceil(n - 1e-9 * n)  # an exact integer must not round up on float noise
    # END SOLUTION


def srm_check(
    counts: Mapping[str, int], weights: Mapping[str, float] | Sequence[float] | None = None
) -> float:
    """p-value of a chi-square test that `counts` were drawn with the planned `weights`.

    `weights` is a mapping by variant or a sequence in the order of `counts` (None: equal).
    A tiny p-value (the usual alarm is p < 0.001) means the split is broken; a variant with
    weight 0 that received users gives p = 0.
    """
    names = list(counts)
    if not names:
        raise ValueError("counts must name at least one variant")
    observed = np.array([_count(f"counts[{n!r}]", counts[n]) for n in names], dtype=np.float64)
    if isinstance(weights, Mapping):
        if set(weights) != set(names):
            raise ValueError(f"weights name {sorted(weights)}, counts name {sorted(names)}")
        weights = [weights[n] for n in names]
    probabilities = np.array(_check_weights(weights, len(names)))
    total = observed.sum()
    if total == 0:
        raise ValueError("counts are all 0: no exposures to check")
    expected = probabilities * total
    if (observed[expected == 0] > 0).any():
        return 0.0
    keep = expected > 0
    if keep.sum() < 2:
        return 1.0
    statistic = float((((observed - expected) ** 2)[keep] / expected[keep]).sum())
    return float(stats.chi2.sf(statistic, int(keep.sum()) - 1))


@dataclass(frozen=True)
class Experiment:
    """An experiment: its name, its variants (the first is the control) and their weights."""

    name: str
    variants: tuple[str, ...]
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "variants", tuple(_check_variants(self.variants)))
        if self.weights is not None:
            _check_weights(self.weights, len(self.variants))
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))

    @property
    def control(self) -> str:
        return self.variants[0]

    def assign(self, user_id: str) -> str:
        return assign_variant(user_id, self.name, self.variants, self.weights)


class ExperimentLogCorrupt(RuntimeError):
    """The experiment log file is damaged or not an experiment log; the message names it."""


class ExperimentLog:
    """Exposures and outcomes in one SQLite table: (experiment, variant, user, outcome, value,
    ts). Each write is one transaction. Unlike a cache, the log is the record of a test:
    a damaged file is never replaced silently; it raises ExperimentLogCorrupt naming it."""

    def __init__(self, path: str | Path, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as fh:
                if fh.read(16) != _SQLITE_HEADER:
                    raise ExperimentLogCorrupt(f"experiment log {self.path} is not a SQLite file")
        self._conn = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        # One connection shared by a threaded server's workers: SQLite allows one transaction
        # per connection at a time, so every statement goes through this lock.
        self._lock = threading.RLock()
        try:
            with self._guard("opening"):
                # WAL + NORMAL: commits are not fsynced one by one (a service logs an exposure
                # per request); a power cut may lose the last rows, never corrupt the file
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._guard("opening"), self._transaction():
                self._conn.execute(
                    "CREATE TABLE IF NOT EXISTS events (experiment TEXT NOT NULL,"
                    " variant TEXT NOT NULL, user TEXT NOT NULL, outcome TEXT NOT NULL,"
                    " value REAL NOT NULL, ts REAL NOT NULL)"
                )
                columns = [row[1] for row in self._conn.execute("PRAGMA table_info(events)")]
                if columns != _COLUMNS:
                    raise ExperimentLogCorrupt(
                        f"experiment log {self.path} has table events with columns {columns}, "
                        f"expected {_COLUMNS}"
                    )
                self._conn.execute(
                    "CREATE INDEX IF NOT EXISTS events_by_outcome"
                    " ON events (experiment, outcome, variant)"
                )
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ExperimentLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise ExperimentLogCorrupt(
                f"experiment log {self.path} is damaged: {exc} (while {action})"
            ) from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _write(self, row: tuple[str, str, str, str, float, float]) -> None:
        with self._guard("writing"), self._transaction():
            self._conn.execute(
                "INSERT INTO events (experiment, variant, user, outcome, value, ts)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )

    def expose(self, experiment: Experiment, user_id: str, ts: float | None = None) -> str:
        """Assign `user_id`, log that they saw their variant, and return the variant."""
        variant = experiment.assign(user_id)
        self._write((experiment.name, variant, user_id, EXPOSURE, 1.0, _timestamp(ts)))
        return variant

    def record(
        self,
        experiment: Experiment,
        user_id: str,
        outcome: str,
        value: float = 1.0,
        ts: float | None = None,
    ) -> str:
        """Log `value` of `outcome` for `user_id` under their variant; returns the variant."""
        if not isinstance(outcome, str) or not outcome or outcome.startswith("_"):
            raise ValueError(f"outcome must be a non-empty name not starting with '_': {outcome!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"value must be finite, got {value!r}")
        variant = experiment.assign(user_id)
        self._write((experiment.name, variant, user_id, outcome, number, _timestamp(ts)))
        return variant

    def _per_user(self, experiment: str, outcome: str, how: str) -> dict[str, dict[str, float]]:
        with self._guard("reading"), self._lock:
            rows = self._conn.execute(
                f"SELECT variant, user, {how}(value) FROM events"  # how is a fixed literal
                " WHERE experiment = ? AND outcome = ? GROUP BY variant, user",
                (experiment, outcome),
            ).fetchall()
        values: dict[str, dict[str, float]] = {}
        for variant, user, value in rows:
            values.setdefault(variant, {})[user] = float(value)
        return values

    def report(
        self,
        experiment: Experiment,
        outcome: str,
        metric: Literal["proportion", "mean"] = "proportion",
        minimum_detectable_effect: float = 0.02,
        confidence: float = 0.95,
        power: float = 0.8,
    ) -> dict[str, Any]:
        """Per-variant n and mean of `outcome`, each variant against the control, SRM, sample size.

        `metric="proportion"`: n is the exposed users and a user converted if any logged value
        of the outcome was > 0; the sample size still needed is computed for the control's
        observed rate and `minimum_detectable_effect`. `metric="mean"`: a user's value is the
        mean of their logged values and n counts users with at least one (no sample size: it
        needs the variance, not a rate). Users are counted under the variant they were logged
        with; the SRM p-value compares exposures with the planned weights.
        """
        if metric not in ("proportion", "mean"):
            raise ValueError(f"metric must be 'proportion' or 'mean', got {metric!r}")
        exposed = self._per_user(experiment.name, EXPOSURE, "MAX")
        if metric == "proportion":
            converted = self._per_user(experiment.name, outcome, "MAX")
            samples = {
                v: np.array([converted.get(v, {}).get(u, 0.0) > 0 for u in exposed.get(v, {})])
                for v in experiment.variants
            }
        else:
            means = self._per_user(experiment.name, outcome, "AVG")
            samples = {v: np.array(list(means.get(v, {}).values())) for v in experiment.variants}
        variants = {
            v: {
                "n": int(samples[v].size),
                "mean": float(samples[v].mean()) if samples[v].size else None,
            }
            for v in experiment.variants
        }
        control = experiment.control
        comparisons: dict[str, dict[str, float] | None] = {}
        for v in experiment.variants[1:]:
            a, b = samples[control], samples[v]
            result: Comparison | None = None
            if metric == "proportion" and a.size and b.size:
                result = compare_proportions(
                    int(a.sum()), int(a.size), int(b.sum()), int(b.size), confidence
                )
            elif metric == "mean" and a.size >= 2 and b.size >= 2:
                result = compare_means(a, b, confidence)
            comparisons[v] = asdict(result) if result is not None else None
        exposures = {v: len(exposed.get(v, {})) for v in experiment.variants}
        srm = srm_check(exposures, experiment.weights) if sum(exposures.values()) else None
        needed = None
        baseline = variants[control]["mean"]
        if metric == "proportion" and baseline is not None:
            with contextlib.suppress(ValueError):  # a 0 % or 100 % baseline has no formula
                needed = sample_size_per_variant(
                    baseline, minimum_detectable_effect, 1 - confidence, power
                )
        smallest = min(v["n"] for v in variants.values())
        return {
            "experiment": experiment.name,
            "outcome": outcome,
            "metric": metric,
            "control": control,
            "variants": variants,
            "comparisons": comparisons,
            "srm_p_value": srm,
            "sample_size_per_variant": needed,
            "still_needed_per_variant": None if needed is None else max(0, needed - smallest),
        }


def _timestamp(ts: float | None) -> float:
    if ts is None:
        return time.time()
    value = float(ts)
    if not math.isfinite(value):
        raise ValueError(f"ts must be finite, got {ts!r}")
    return value
