"""Canary analysis: the PromQL queries, the thresholds and the decision (checkpoint 2.6).

One place holds the query strings (`QUERIES`), so the local controller and the Argo Rollouts
AnalysisTemplate ask Prometheus exactly the same questions (the deploy tests compare them).
Queries carry two placeholders, `{role}` ("stable" or "canary", the target label Prometheus adds)
and `{window}` (a PromQL range such as "30s" or "2m"); `render` substitutes them. PromQL uses
braces itself, so `str.format` cannot be used.

The decision is deliberately asymmetric: a breach of any threshold rolls back at once, while
anything unknown (too few canary requests, an empty query, Prometheus down) holds. A canary is
never promoted on data the controller could not see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "QUERIES",
    "SUPPORT_QUERIES",
    "Decision",
    "RoleMetrics",
    "StepMetrics",
    "Thresholds",
    "decide",
    "histogram_psi",
    "known",
    "render",
]

QUERIES: dict[str, str] = {
    "error_rate": (
        'sum(rate(mlops_http_requests_total{role="{role}",route="/v1/predict",status=~"5.."}'
        "[{window}]))"
        ' / sum(rate(mlops_http_requests_total{role="{role}",route="/v1/predict",status!~"4.."}'
        "[{window}]))"
    ),
    "p99_latency": (
        "histogram_quantile(0.99, sum by (le) (rate(mlops_http_request_duration_seconds_bucket"
        '{role="{role}",route="/v1/predict"}[{window}])))'
    ),
    "mean_score": (
        'sum(rate(mlops_prediction_score_sum{role="{role}"}[{window}]))'
        ' / sum(rate(mlops_prediction_score_count{role="{role}"}[{window}]))'
    ),
    "score_buckets": (
        'sum by (le) (increase(mlops_prediction_score_bucket{role="{role}"}[{window}]))'
    ),
}
"""The design's canary queries, verbatim (Argo's AnalysisTemplate uses the first three)."""

SUPPORT_QUERIES: dict[str, str] = {
    "requests": (
        'sum(increase(mlops_http_requests_total{role="{role}",route="/v1/predict"}[{window}]))'
    ),
    "errors": (
        'sum(increase(mlops_http_requests_total{role="{role}",route="/v1/predict",status=~"5.."}'
        "[{window}]))"
    ),
    "up": 'max(max_over_time(up{role="{role}"}[3s]))',
}
"""What the local controller asks besides `QUERIES`: how many requests the window holds (the
"enough data" rule), whether any 5xx series exists (the error-rate query is empty, not 0, for a
service that never failed: prometheus_client creates a labelled series on first use), and the
scrape health of the target: down only when every scrape of the last 3 s failed (one slow
scrape is not a crash; a local controller also watches the process itself)."""

Action = Literal["promote", "hold", "rollback"]


def render(query: str, role: str, window: str) -> str:
    """`query` with `{role}` and `{window}` substituted (both checked: no PromQL injection)."""
    if role not in ("stable", "canary"):
        raise ValueError(f"role must be 'stable' or 'canary', got {role!r}")
    if not window or not window[:-1].isdigit() or window[-1] not in "smhd":
        raise ValueError(f"window must be a PromQL duration such as '30s' or '2m', got {window!r}")
    return query.replace("{role}", role).replace("{window}", window)


def known(value: float | None) -> bool:
    """True for a real number: None (no answer) and NaN (0/0 in PromQL) are unknown."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Thresholds:
    """When a canary is healthy enough to advance (the design's defaults)."""

    max_error_rate: float = 0.01
    """Share of /v1/predict answers that are 5xx, at most."""
    max_p99_seconds: float = 0.025
    """The latency SLO: 99 % of predictions within 25 ms."""
    max_p99_ratio: float = 2.0
    p99_slack_seconds: float = 0.005
    """Relative latency: canary p99 <= max_p99_ratio * stable p99 + p99_slack_seconds (the slack
    keeps a 1 ms vs 2 ms difference, pure noise at these sizes, from failing the canary)."""
    max_score_shift: float = 0.05
    """|mean score(canary) - mean score(stable)|, at most: same traffic split at random, so a
    shift this large means the canary sees or computes different features."""
    min_requests: int = 50
    """Fewer canary requests than this in the window: not enough data to judge."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not known(value) or value < 0:
                raise ValueError(f"Thresholds.{name} must be a number >= 0, got {value!r}")
        if self.max_error_rate > 1:
            raise ValueError(
                f"Thresholds.max_error_rate is a share <= 1, got {self.max_error_rate}"
            )


@dataclass(frozen=True)
class RoleMetrics:
    """One role's numbers over the analysis window; None where Prometheus had no answer."""

    error_rate: float | None = None
    p99_latency: float | None = None
    """Seconds."""
    mean_score: float | None = None
    requests: float | None = None
    """/v1/predict requests in the window (Prometheus' `increase`, so not always an integer)."""


@dataclass(frozen=True)
class StepMetrics:
    """What the analysis sees at one step: both roles, and whether the canary target is up."""

    canary: RoleMetrics = field(default_factory=RoleMetrics)
    stable: RoleMetrics = field(default_factory=RoleMetrics)
    canary_up: bool | None = None
    """Prometheus' `up` for the canary target: False = scrape failed (process gone), None =
    unknown (Prometheus itself did not answer)."""
    score_psi: float | None = None
    """PSI of the canary's score histogram against the stable one: recorded, not a gate."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None)."""

        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value if known(value) or isinstance(value, bool) else None

        return clean(asdict(self))


@dataclass(frozen=True)
class Decision:
    """The analysis verdict at one step, and every reason behind it."""

    action: Action
    reasons: list[str]


def decide(metrics: StepMetrics, thresholds: Thresholds) -> Decision:
    """Promote (advance to the next step), hold (wait for data) or roll back.

    Each reason is a string "<check>: <message>" whose check is one of:
    - "canary_down": the canary target is down (`canary_up is False`) -> rollback, always;
    - "insufficient_data": canary requests unknown or < `min_requests` -> hold (no threshold is
      judged on so few requests);
    - "error_rate": canary error rate > `max_error_rate` -> rollback;
    - "p99_latency": canary p99 > `max_p99_seconds` -> rollback;
    - "p99_relative": canary p99 > `max_p99_ratio` * stable p99 + `p99_slack_seconds` -> rollback;
    - "score_shift": |canary mean score - stable mean score| > `max_score_shift` -> rollback;
    - "missing": a value a check needs is None or NaN -> hold (one reason per missing value).
    Values exactly AT a threshold pass. With enough data every check that can be evaluated is,
    and all breaches are reported together; a breach rolls back even when another value is
    missing. Promote only when every check was evaluated and passed (reasons then empty).
    """
    # BEGIN SOLUTION 2.6: threshold checks -> rollback; unknown or too little data -> hold
    if metrics.canary_up is False:
        return Decision("rollback", ["canary_down: the canary target is down (scrape failed)"])
    canary, stable = metrics.canary, metrics.stable
    if not known(canary.requests) or canary.requests < thresholds.min_requests:
        seen = f"{canary.requests:.0f}" if known(canary.requests) else "unknown"
        return Decision(
            "hold",
            [
                f"insufficient_data: {seen} canary requests in the window "
                f"< {thresholds.min_requests}"
            ],
        )

    breaches: list[str] = []
    missing: list[str] = []

    def need(role: str, name: str, value: float | None) -> bool:
        if known(value):
            return True
        missing.append(f"missing: {role} {name} has no value")
        return False

    if need("canary", "error_rate", canary.error_rate) and (
        canary.error_rate > thresholds.max_error_rate
    ):
        breaches.append(
            f"error_rate: canary {canary.error_rate:.4f} > {thresholds.max_error_rate:.4f}"
        )
    if need("canary", "p99_latency", canary.p99_latency):
        if canary.p99_latency > thresholds.max_p99_seconds:
            breaches.append(
                f"p99_latency: canary {canary.p99_latency * 1000:.1f} ms > "
                f"{thresholds.max_p99_seconds * 1000:.1f} ms"
            )
        if need("stable", "p99_latency", stable.p99_latency):
            limit = thresholds.max_p99_ratio * stable.p99_latency + thresholds.p99_slack_seconds
            if canary.p99_latency > limit:
                breaches.append(
                    f"p99_relative: canary {canary.p99_latency * 1000:.1f} ms > "
                    f"{thresholds.max_p99_ratio:g} x stable {stable.p99_latency * 1000:.1f} ms + "
                    f"{thresholds.p99_slack_seconds * 1000:.1f} ms"
                )
    if need("canary", "mean_score", canary.mean_score) and need(
        "stable", "mean_score", stable.mean_score
    ):
        shift = canary.mean_score - stable.mean_score
        if abs(shift) > thresholds.max_score_shift:
            breaches.append(
                f"score_shift: canary mean score {canary.mean_score:.3f} vs stable "
                f"{stable.mean_score:.3f} (shift {shift:+.3f}, limit {thresholds.max_score_shift})"
            )
    if breaches:
        return Decision("rollback", breaches)
    if missing:
        return Decision("hold", missing)
    return Decision("promote", [])
    # END SOLUTION


def histogram_psi(
    canary: Mapping[float, float], stable: Mapping[float, float], epsilon: float = 1e-4
) -> float | None:
    """Population stability index of two score histograms given as CUMULATIVE bucket counts.

    Prometheus histograms are cumulative (`le` = upper bound, the last one +Inf), so each bin's
    count is the difference of neighbouring buckets. PSI = sum((c - s) * ln(c / s)) over the
    bins' shares, with empty shares raised to `epsilon` so a bin one side never used does not
    make it infinite. None when either side saw nothing (no basis for a comparison).
    """
    bounds = sorted(set(canary) | set(stable))
    if not bounds:
        return None

    def shares(cumulative: Mapping[float, float]) -> list[float] | None:
        counts, previous = [], 0.0
        for bound in bounds:
            total = cumulative.get(bound, previous)
            counts.append(max(total - previous, 0.0))
            previous = max(previous, total)
        n = sum(counts)
        return [c / n for c in counts] if n > 0 else None

    c_shares, s_shares = shares(canary), shares(stable)
    if c_shares is None or s_shares is None:
        return None
    psi = 0.0
    for c, s in zip(c_shares, s_shares, strict=True):
        c, s = max(c, epsilon), max(s, epsilon)
        psi += (c - s) * math.log(c / s)
    return psi
