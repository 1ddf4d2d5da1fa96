"""The service's objectives and the burn-rate alerting policy, as data.

An SLO here is a ratio of bad events (5xx answers, answers slower than 25 ms) to valid events,
and an objective over a 30-day period. Valid events are the requests to POST /v1/predict that
were not answered with a 4xx: a malformed request is the caller's mistake, and counting it as a
success would let a flood of bad requests dilute a real error ratio (phase 0, "valid events").
Both SLOs share that denominator. The rules generator turns each SLO into recording rules
(`<sli>_rate<window>`, the bad-event ratio over each window, and over the whole period for the
budget) and into the multi-window, multi-burn-rate alerts of the Google SRE workbook (chapter
"Alerting on SLOs"):

    burn rate 14.4 over 1 h and 5 m  -> page    (2 % of a 30-day budget gone in an hour)
    burn rate 6    over 6 h and 30 m -> page    (5 % in six hours)
    burn rate 1    over 3 d and 6 h  -> ticket  (10 % in three days: on course to miss the SLO)

A burn rate of 1 spends the budget exactly over the period; the long window makes an alert
significant (enough budget has gone), the short one makes it reset soon after the problem stops.
Changing an objective here and running `make rules` regenerates everything that depends on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREDICT_ROUTE = "/v1/predict"
"""The route the SLOs cover: one flight per request (the batch route has its own latency)."""

INVALID_STATUS = "4.."
"""Status codes (a PromQL regex) that are not valid events of either SLO: the caller's mistakes
(422 a bad field, 413 a body too large, 405 a wrong method). The service answers 4xx only for
faults of the request itself; its own failures are 5xx (503 while the model is not loaded, 500
for an exception), so nothing the service gets wrong hides here. A service that throttled with
429 would have to count those as bad, not as invalid."""

LATENCY_THRESHOLD_SECONDS = 0.025
"""A request answered within this is "fast enough"; it is a bucket bound of the histogram, so the
good-event count is one bucket series (le="0.025"), exact rather than interpolated."""

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""Every window a bad-event ratio is recorded over (the burn-rate alerts use six of them; 2h and
1d serve dashboards and ad-hoc budget questions)."""

SEVERITIES = ("page", "ticket")
"""page: a human acts now. ticket: someone looks within a working day."""

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def window_seconds(window: str) -> int:
    """Seconds in a Prometheus duration of one unit ("5m", "3d"); ValueError for anything else."""
    match = _DURATION.match(window)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a Prometheus duration like '5m' or '3d': {window!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class BurnWindow:
    """One row of the multi-window policy: alert when the bad-event ratio exceeds
    `factor * (1 - objective)` over both `long` and `short`."""

    long: str
    short: str
    factor: float
    severity: str

    def budget_spent(self, period: str) -> float:
        """Fraction of the period's error budget spent by the time the long window fires."""
        return self.factor * window_seconds(self.long) / window_seconds(period)


MULTI_WINDOWS = (
    BurnWindow("1h", "5m", 14.4, "page"),
    BurnWindow("6h", "30m", 6.0, "page"),
    BurnWindow("3d", "6h", 1.0, "ticket"),
)


@dataclass(frozen=True)
class SLO:
    """A request-based objective: `objective` of requests are good over `period`."""

    alert: str
    """Name of the burn-rate alert (three rules share it, one per `MULTI_WINDOWS` row)."""
    sli: str
    """Prefix of the recorded bad-event ratios: `<sli>_rate5m`, `<sli>_rate1h`, ..."""
    objective: float
    title: str
    """What is promised, for people: "availability of POST /v1/predict"."""
    bad_events: str
    """What counts against the budget, for people: "5xx answers"."""
    period: str = "30d"

    def __post_init__(self) -> None:
        if not 0 < self.objective < 1:
            raise ValueError(f"{self.alert}: objective must be in (0, 1), got {self.objective}")
        window_seconds(self.period)

    @property
    def budget(self) -> float:
        """The error budget as a ratio: the share of requests allowed to be bad."""
        return 1 - self.objective

    def ratio(self, window: str) -> str:
        """Name of the recorded bad-event ratio over `window` (one of `WINDOWS`, or the period:
        the budget's ratio, recorded at a slower interval)."""
        if window not in (*WINDOWS, self.period):
            raise ValueError(
                f"no recorded ratio over {window!r}; recorded windows: {WINDOWS} and the "
                f"period {self.period}"
            )
        return f"{self.sli}_rate{window}"


AVAILABILITY = SLO(
    alert="PredictAvailabilityBudgetBurn",
    sli="mlops:predict_requests:error_ratio",
    objective=0.995,
    title=f"availability of POST {PREDICT_ROUTE}",
    bad_events="5xx answers",
)
LATENCY = SLO(
    alert="PredictLatencyBudgetBurn",
    sli="mlops:predict_requests:slow_ratio",
    objective=0.99,
    title=f"latency of POST {PREDICT_ROUTE}",
    bad_events=f"answers slower than {LATENCY_THRESHOLD_SECONDS * 1000:g} ms",
)
SLOS = (AVAILABILITY, LATENCY)
