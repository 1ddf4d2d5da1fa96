"""When a difference between two windows is an alarm: the unit of sampling is the day.

A month holds ~27,000 flights, but not 27,000 independent draws. Every flight leaving JFK in
the same hour gets the same temperature, the same wind and the same visibility; the delay
rates of one afternoon are shared by every flight of that afternoon. What varies from one
sample to the next is the DAY (its weather, its disruption), so a month is ~30 observations of
weather, not 27,000. Tests that count flights are wildly overconfident: split one month's days
at random into two halves, where nothing changed, and a flight-level KS test says p < 0.05 for
some feature in every split, and PSI > 0.25 for some feature in nearly every split (measured:
`bench.measure_drift`). Both rules page the on-call every month for weather.

The monitor therefore asks two questions of each numeric feature, and alarms only when both
say yes:
1. Is the difference larger than the day-to-day variation explains? The KS statistic D is
   computed on the flights (the distributions the model sees), but its p-value uses the
   number of DAYS in each window as the sample sizes (`stats.ks_pvalue(D, days_ref, days_cur)`).
   For a feature that is constant within a day this is the right count; for one that varies
   within days (distance, the hour) it is conservative: flights of a day are partly
   independent, so the effective sample lies between the days and the flights (Kish's design
   effect). The p-values of all the day-level tests of one comparison are held to a
   family-wise `alpha` (Bonferroni: each test at alpha / number of tests), so one monthly
   comparison of ~40 tests pages by chance at most `alpha` of the time.
2. Is it large enough to matter? PSI >= `psi` (0.25, the usual "major shift"). With ~25,000
   rows almost any real difference is significant; PSI keeps a small, real one quiet.
Categorical features (origin, carrier) are alarmed on PSI alone: the airline schedule barely
moves from day to day (same-month splits give PSI < 0.006), so there is no weather-like
clustering to correct for. Missing-rate alarms use the same day-level test on the daily
missing shares plus an absolute increase; a value outside its contract range always alarms
(it is never chance).

`Thresholds(unit="flight")` is the naive monitor (flight counts as sample sizes), kept to
measure how often it cries wolf.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops_pipeline.data import LOCAL_TZ

__all__ = [
    "RUNBOOK",
    "Alert",
    "Thresholds",
    "count_tests",
    "day_halves",
    "days_of",
    "decide",
    "runbook_url",
]

RUNBOOK = "feature-drift"
"""docs/runbooks/feature-drift.md: what to do when one of these alerts fires."""

AlertKind = Literal[
    "feature_drift", "prediction_drift", "categorical_drift", "missing_rate", "out_of_range"
]


def runbook_url(base: str | None = None) -> str:
    """The drift runbook's URL, under the same base as the Prometheus alerts' runbooks."""
    from mlops_pipeline.observability.rules import RUNBOOK_BASE_URL

    return f"{(base or RUNBOOK_BASE_URL).rstrip('/')}/{RUNBOOK}.md"


@dataclass(frozen=True)
class Thresholds:
    """The alarm rule's knobs (see the module docstring for why each exists)."""

    alpha: float = 0.05
    """Family-wise false-alarm budget of one comparison (Bonferroni over its day-level tests)."""
    psi: float = 0.25
    """A numeric feature or the score alarms only if PSI is at least this (and significant)."""
    psi_categorical: float = 0.25
    """A categorical feature alarms when its PSI is at least this."""
    missing_increase: float = 0.10
    """A missing-rate alarm needs at least this absolute increase of the share missing."""
    unit: Literal["day", "flight"] = "day"
    """What counts as one observation in the KS p-values: a day (default) or a flight (naive)."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        for name in ("psi", "psi_categorical", "missing_increase"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.unit not in ("day", "flight"):
            raise ValueError(f"unit must be 'day' or 'flight', got {self.unit!r}")

    def per_test_alpha(self, n_tests: int) -> float:
        """Bonferroni: each of `n_tests` tests at alpha / n_tests."""
        return self.alpha / max(int(n_tests), 1)


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Alert:
    """One alarm: what, where, the number that crossed the line, and the runbook."""

    month: str
    feature: str
    kind: AlertKind
    statistic: str
    value: float
    threshold: float
    message: str
    runbook_url: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def days_of(frame: pd.DataFrame, column: str = "sched_dep") -> np.ndarray:
    """The New York calendar day of each row (the unit of sampling), as datetime64[D]."""
    if column not in frame.columns:
        raise ValueError(f"frame has no {column!r} column to take days from")
    stamps = frame[column]
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = pd.to_datetime(stamps, utc=True)
    local = stamps.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    return local.to_numpy().astype("datetime64[D]")


def day_halves(days: np.ndarray, n_splits: int, seed: int = 0) -> Iterator[np.ndarray]:
    """`n_splits` random splits of the rows into two halves OF DAYS: a boolean mask per split,
    True for the rows of a random half of the distinct days (the null: nothing changed).
    Splitting rows instead would put every day in both halves and hide the day-to-day
    variation a real month-to-month comparison sees."""
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    distinct = np.unique(days)
    if len(distinct) < 2:
        raise ValueError(f"need at least 2 days to split, got {len(distinct)}")
    rng = np.random.default_rng(seed)
    for _ in range(n_splits):
        chosen = rng.choice(distinct, size=len(distinct) // 2, replace=False)
        yield np.isin(days, chosen)


def count_tests(table: pd.DataFrame) -> int:
    """How many tests a comparison table holds (Bonferroni's count): a KS test per numeric
    column with values in both windows, a missing-rate test per column checked for it."""
    counted = [c for c in ("ks_statistic", "missing_pvalue_days") if c in table.columns]
    return int(sum(table[c].notna().sum() for c in counted))


def decide(
    table: pd.DataFrame, thresholds: Thresholds, month: str = "", url: str | None = None
) -> list[Alert]:
    """The alerts of a comparison table (`drift.compare_windows`), by the rule above.

    The table needs per row: feature, kind ('numeric', 'prediction' or 'categorical'), psi,
    and for numeric rows ks_statistic, ks_pvalue_<unit>s, missing_ref, missing_cur and
    missing_pvalue_<unit>s (<unit> = `thresholds.unit`: days or flights); out_of_range_cur
    and rows_cur where ranges were checked.
    """
    url = url if url is not None else runbook_url()
    n_tests = count_tests(table)
    level = thresholds.per_test_alpha(n_tests)
    unit = f"{thresholds.unit}s"
    measured = table["ks_statistic"].notna() if "ks_statistic" in table else None
    if (
        measured is not None
        and measured.any()
        and table.loc[measured, f"ks_pvalue_{unit}"].isna().all()
    ):
        raise ValueError(
            f"the comparison has no ks_pvalue_{unit}: compare with flight_pvalues=True to judge "
            "it by flights"
        )
    alerts = []
    for row in table.to_dict("records"):
        feature, kind = row["feature"], row["kind"]
        if kind in ("numeric", "prediction"):
            p = row[f"ks_pvalue_{unit}"]
            psi = row["psi"]
            if np.isfinite(p) and p < level and psi >= thresholds.psi:
                alerts.append(
                    Alert(
                        month, feature,
                        "prediction_drift" if kind == "prediction" else "feature_drift",
                        "psi", float(psi), thresholds.psi,
                        f"{feature}: PSI {psi:.3f} >= {thresholds.psi} and KS D "
                        f"{row['ks_statistic']:.3f} significant over {unit} (p {p:.2g} < "
                        f"{level:.2g} = {thresholds.alpha} / {n_tests} tests)",
                        url,
                    )
                )  # fmt: skip
            increase = row["missing_cur"] - row["missing_ref"]
            p_missing = row[f"missing_pvalue_{unit}"]
            if (
                np.isfinite(p_missing)
                and p_missing < level
                and increase >= thresholds.missing_increase
            ):
                alerts.append(
                    Alert(
                        month, feature, "missing_rate", "missing_increase", float(increase),
                        thresholds.missing_increase,
                        f"{feature}: {row['missing_cur']:.1%} missing against "
                        f"{row['missing_ref']:.1%} in the reference (p {p_missing:.2g} over "
                        f"{unit})",
                        url,
                    )
                )  # fmt: skip
        elif row["psi"] >= thresholds.psi_categorical:
            alerts.append(
                Alert(
                    month, feature, "categorical_drift", "psi", float(row["psi"]),
                    thresholds.psi_categorical,
                    f"{feature}: PSI {row['psi']:.3f} >= {thresholds.psi_categorical}",
                    url,
                )
            )  # fmt: skip
        if row.get("out_of_range_cur", 0) > 0:
            alerts.append(
                Alert(
                    month, feature, "out_of_range", "rows", float(row["out_of_range_cur"]), 0.0,
                    f"{feature}: {int(row['out_of_range_cur'])} of {int(row['rows_cur'])} "
                    "values outside the contract's range",
                    url,
                )
            )  # fmt: skip
    return alerts
