"""Service level objectives: error budgets, burn rates and multi-window burn-rate alerts.

An SLO such as "99.9 % of requests succeed over 30 days" is a promise with a built-in
allowance: the error budget, the 0.1 % of requests (or 43.2 minutes of full outage) you may
fail. Spending it is fine - it pays for deploys, experiments and maintenance - as long as you
do not spend it faster than the window refills it.

The *burn rate* measures that speed: the observed error ratio divided by the budgeted one. A
burn rate of 1 spends exactly the budget over the SLO period; 14.4 spends 2 % of a 30-day
budget in one hour, which is worth waking someone up for.

Alerting on burn rate, as chapter 5 of Google's *The Site Reliability Workbook* recommends,
pairs each long window with a short one: the long window (1 h, 6 h, 3 days) proves enough
budget is gone to matter; the short window (5 min, 30 min, 6 h) proves it is *still* burning,
so the alert stops soon after the incident ends instead of firing for another hour.

Checkpoint 0.4 is :func:`error_budget`, :func:`allowed_downtime`, :func:`burn_rate` and
:func:`budget_remaining`; checkpoint 0.5 is :func:`rolling_burn_rate` and
:func:`evaluate_alerts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from sysdesign._checks import require_fraction, require_non_negative, require_positive_int

#: The SLO period the default alert thresholds are derived for (the workbook's 30 days).
SLO_PERIOD = timedelta(days=30)


def _check_slo(slo: float) -> float:
    """An SLO is a fraction strictly between 0 and 1: 100 % leaves no budget to alert on."""
    return require_fraction("slo", slo, allow_one=False)


def error_budget(slo: float, total_events: float) -> float:
    """How many of ``total_events`` may fail without breaking an ``slo`` such as 0.999.

    ``(1 - slo) * total_events``. A 99.9 % SLO on 10 million requests a month allows 10,000
    failed requests - a number a team can plan releases around, unlike "three nines".
    """
    slo = _check_slo(slo)
    total_events = require_non_negative("total_events", total_events)
    # BEGIN SOLUTION 0.4: the budget is the allowed failure ratio times the events
    return (1.0 - slo) * total_events
    # END SOLUTION


def allowed_downtime(slo: float, window: timedelta = SLO_PERIOD) -> timedelta:
    """The full-outage time an availability ``slo`` allows over ``window``.

    99.9 % over 30 days is 43.2 minutes; 99.99 % is 4.32 minutes - shorter than it takes to
    notice, diagnose and roll back by hand, which is why four nines demand automation.
    """
    slo = _check_slo(slo)
    if not isinstance(window, timedelta):
        raise ValueError(f"window must be a datetime.timedelta, got {type(window).__name__}")
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    # BEGIN SOLUTION 0.4: the allowed failure ratio of the window, as a timedelta
    return timedelta(seconds=(1.0 - slo) * window.total_seconds())
    # END SOLUTION


def _check_bad_total(bad: float, total: float) -> tuple[float, float]:
    bad = require_non_negative("bad", bad)
    total = require_non_negative("total", total)
    if bad > total:
        raise ValueError(f"bad ({bad}) cannot exceed total ({total})")
    return bad, total


def burn_rate(bad: float, total: float, slo: float) -> float:
    """How fast ``bad`` failures out of ``total`` events spend the error budget.

    The observed error ratio ``bad / total`` divided by the budgeted ratio ``1 - slo``. At 1 the
    budget lasts exactly the SLO period; at 10 it is gone in a tenth of it (3 days of a 30-day
    window). No traffic burns no budget: ``total == 0`` gives 0.
    """
    slo = _check_slo(slo)
    bad, total = _check_bad_total(bad, total)
    # BEGIN SOLUTION 0.4: the error ratio over the budgeted ratio (0 when there is no traffic)
    if total == 0:
        return 0.0
    return (bad / total) / (1.0 - slo)
    # END SOLUTION


def budget_remaining(bad: float, total: float, slo: float) -> float:
    """The fraction of the error budget left after ``bad`` failures in ``total`` events.

    1.0 is untouched, 0.0 exactly spent, negative overspent (the SLO is broken). With no
    traffic nothing is spent, so it returns 1.0. Typical policy: freeze risky launches while
    it is below 0, as the SRE book's error-budget policy suggests.
    """
    slo = _check_slo(slo)
    bad, total = _check_bad_total(bad, total)
    # BEGIN SOLUTION 0.4: one minus the spent share of the budget (1.0 when there is no traffic)
    if total == 0:
        return 1.0
    return 1.0 - bad / ((1.0 - slo) * total)
    # END SOLUTION


@dataclass(frozen=True)
class BurnRateAlert:
    """One multi-window burn-rate alert: fire when *both* windows burn faster than ``threshold``.

    ``long_window_min`` decides significance (enough budget is gone), ``short_window_min``
    decides freshness (it is still happening). The workbook suggests a short window of 1/12 of
    the long one.
    """

    name: str
    severity: str  # "page" (wake a human now) or "ticket" (handle in working hours)
    long_window_min: int
    short_window_min: int
    threshold: float

    def __post_init__(self) -> None:
        require_positive_int("long_window_min", self.long_window_min)
        require_positive_int("short_window_min", self.short_window_min)
        if self.short_window_min > self.long_window_min:
            raise ValueError(
                f"{self.name}: the short window ({self.short_window_min} min) must not be "
                f"longer than the long one ({self.long_window_min} min)"
            )
        if not self.threshold > 0:
            raise ValueError(f"{self.name}: threshold must be > 0, got {self.threshold}")

    def budget_consumed(self, period: timedelta = SLO_PERIOD) -> float:
        """Fraction of the period's budget spent by the time the long window first fires.

        ``threshold * long window / period``: 14.4 x 1 h / 30 days = 2 %, 6 x 6 h = 5 %,
        1 x 3 days = 10 %, the workbook's three tiers.
        """
        return self.threshold * self.long_window_min * 60 / period.total_seconds()


def default_policy() -> list[BurnRateAlert]:
    """The SRE workbook's recommended alerts for a 30-day SLO (a fresh, editable list).

    Page at 14.4x over 1 h and 5 min (2 % of the budget gone) or at 6x over 6 h and 30 min (5 %);
    open a ticket at 1x over 3 days and 6 h (10 %).
    """
    return [
        BurnRateAlert("page-1h", "page", long_window_min=60, short_window_min=5, threshold=14.4),
        BurnRateAlert("page-6h", "page", long_window_min=360, short_window_min=30, threshold=6.0),
        BurnRateAlert(
            "ticket-3d", "ticket", long_window_min=3 * 24 * 60, short_window_min=360, threshold=1.0
        ),
    ]


def _check_counts(
    good: Sequence[float] | npt.ArrayLike, bad: Sequence[float] | npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(good, dtype=float)
    b = np.asarray(bad, dtype=float)
    if g.ndim != 1 or b.ndim != 1:
        raise ValueError("good and bad must be one-dimensional per-minute counts")
    if g.shape != b.shape:
        raise ValueError(f"good and bad must have the same length, got {g.size} and {b.size}")
    for name, arr in (("good", g), ("bad", b)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} counts must be finite (no NaN): fill gaps with 0")
        if (arr < 0).any():
            raise ValueError(f"{name} counts must be >= 0")
    return g, b


def rolling_burn_rate(
    good: Sequence[float] | npt.ArrayLike,
    bad: Sequence[float] | npt.ArrayLike,
    window_min: int,
    slo: float,
) -> np.ndarray:
    """Burn rate over the trailing ``window_min`` minutes, at the end of every minute.

    ``good[t]`` and ``bad[t]`` count the events of minute ``t``. The value at minute ``t``
    covers minutes ``t - window_min + 1`` to ``t`` inclusive, and is the *ratio of the sums*,
    ``sum(bad) / sum(good + bad)``, over ``1 - slo`` - never the mean of per-minute ratios, which
    would give a quiet minute with one failure as much weight as a busy one.

    Windows longer than the data so far: the value uses the minutes available (from minute 0
    to ``t``). That is how a Prometheus ``rate()`` behaves for a series younger than its range,
    and it means an alert at the very start of the data rests on less evidence than its nominal
    window. A window with no events at all has burn rate 0.
    """
    g, b = _check_counts(good, bad)
    window_min = require_positive_int("window_min", window_min)
    slo = _check_slo(slo)
    # BEGIN SOLUTION 0.5: windowed sums from cumulative sums, then bad / total / (1 - slo)
    n = g.size
    cum_bad = np.concatenate(([0.0], np.cumsum(b)))
    cum_total = np.concatenate(([0.0], np.cumsum(g + b)))
    end = np.arange(1, n + 1)
    start = np.maximum(0, end - window_min)
    bad_in = cum_bad[end] - cum_bad[start]
    total_in = cum_total[end] - cum_total[start]
    ratio = np.divide(bad_in, total_in, out=np.zeros(n), where=total_in > 0)
    return ratio / (1.0 - slo)
    # END SOLUTION


def evaluate_alerts(
    good: Sequence[float] | npt.ArrayLike,
    bad: Sequence[float] | npt.ArrayLike,
    slo: float,
    policy: Sequence[BurnRateAlert] | None = None,
) -> dict[str, np.ndarray]:
    """Which alerts of ``policy`` fire at each minute, given per-minute good and bad counts.

    Returns ``{alert.name: fires}`` where ``fires[t]`` is True when, at the end of minute ``t``,
    the burn rate over the alert's long window *and* over its short window (both trailing, as in
    :func:`rolling_burn_rate`) are strictly greater than its threshold - the ``>`` of the
    workbook's Prometheus rules. ``policy`` defaults to :func:`default_policy`.
    """
    g, b = _check_counts(good, bad)
    slo = _check_slo(slo)
    alerts = list(default_policy() if policy is None else policy)
    names = [a.name for a in alerts]
    if len(set(names)) != len(names):
        raise ValueError(f"alert names must be unique, got {names}")
    # BEGIN SOLUTION 0.5: an alert fires where both its windows burn above its threshold
    fires: dict[str, np.ndarray] = {}
    for alert in alerts:
        long_rate = rolling_burn_rate(g, b, alert.long_window_min, slo)
        short_rate = rolling_burn_rate(g, b, alert.short_window_min, slo)
        fires[alert.name] = (long_rate > alert.threshold) & (short_rate > alert.threshold)
    return fires
    # END SOLUTION


def first_firing(fires: dict[str, np.ndarray]) -> dict[str, int | None]:
    """The first minute each alert fires, or None: the detection time of an incident."""
    return {name: (int(np.argmax(mask)) if mask.any() else None) for name, mask in fires.items()}
