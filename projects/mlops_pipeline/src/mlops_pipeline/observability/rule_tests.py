"""Unit tests of the rule files for `promtool test rules`: deploy/prometheus/tests/*.yml.

The scenarios are written here by hand: input series, evaluation times, and which alerts must
be firing then with which labels, or which value a recording rule must have. Only the alerts'
annotations are filled in from the rules (promtool compares them too; they are prose, not
behaviour), so rewording a description or moving the runbooks does not break the tests.

Cost: promtool evaluates every rule at every step from 0 to the last evaluation time, a few
milliseconds a step, so scenarios keep their histories to hours at a 1 m step and use coarser
steps (`evaluation_interval`) where only long windows matter. That limits what a scenario can
show: with 4 h of history the "3-day" window holds 4 h, so the 1x ticket fires in scenarios
where three real days would have diluted it; the expectations say so where it happens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_pipeline.observability.rules import (
    MODEL_ALERT_GROUP,
    PERIOD_GROUP,
    RECORDING_GROUP,
    RUNBOOK_BASE_URL,
    SLO_ALERT_GROUP,
    alert_rules,
    promql_number,
    to_yaml,
)
from mlops_pipeline.observability.slo import AVAILABILITY, LATENCY

RULE_FILES = ["../recording.yml", "../alerts.yml"]
GROUP_ORDER = [RECORDING_GROUP, PERIOD_GROUP, SLO_ALERT_GROUP, MODEL_ALERT_GROUP]
"""Recording first, so alerts at time t read the series recorded at t. Without it promtool picks
an order at random, and an alert reads the previous step's values, or none when the step is
longer than the 5-minute lookback: a flaky test."""
_LABEL_REF = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")

# --- input series --------------------------------------------------------------------------


def counter(*segments: tuple[float, int]) -> str:
    """promtool values of a counter from 0: each (increase per step, steps) segment in turn.

    >>> counter((100, 3), (0, 2))
    '0 100+100x2 300+0x1'
    """
    parts, value = ["0"], 0.0
    for increase, steps in segments:
        if steps < 1:
            raise ValueError(f"a segment needs at least one step, got {steps}")
        parts.append(f"{promql_number(value + increase)}+{promql_number(increase)}x{steps - 1}")
        value += increase * steps
    return " ".join(parts)


def gauge(*segments: tuple[float, int]) -> str:
    """promtool values of a gauge: (value, steps) segments; the first value is at time 0."""
    return " ".join(f"{promql_number(v)}+0x{steps - 1}" for v, steps in segments)


def series(name: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


PREDICT = {"route": "/v1/predict", "method": "POST"}


def requests(role: str, status: str, values: str, **extra: str) -> dict[str, str]:
    """A request counter of POST /v1/predict (role and instance as Prometheus adds them)."""
    labels = {**PREDICT, "status": status, "role": role, "instance": f"{role}-0", **extra}
    return series("mlops_http_requests_total", labels, values)


# --- expectations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """An alert expected to be firing: its name and ALL its labels but alertname."""

    alert: str
    labels: dict[str, str]


@dataclass(frozen=True)
class AlertCheck:
    """At `at`, the firing alerts named `alert` are exactly `firing` (pending ones don't count)."""

    at: str
    alert: str
    firing: tuple[Firing, ...] = ()


@dataclass(frozen=True)
class ValueCheck:
    """At `at`, `expr` returns exactly these samples ({labels: value}; labels in promtool's
    series syntax, e.g. '{role="stable"}')."""

    at: str
    expr: str
    samples: dict[str, float]


@dataclass
class Scenario:
    name: str
    interval: str
    series: list[dict[str, str]]
    checks: list[AlertCheck | ValueCheck] = field(default_factory=list)


def _burn(slo_alert: str, window: str, severity: str) -> Firing:
    return Firing(slo_alert, {"severity": severity, "window": window})


FAST = _burn(AVAILABILITY.alert, "1h", "page")
MEDIUM = _burn(AVAILABILITY.alert, "6h", "page")
SLOW = _burn(AVAILABILITY.alert, "3d", "ticket")
LAT_FAST = _burn(LATENCY.alert, "1h", "page")
LAT_MEDIUM = _burn(LATENCY.alert, "6h", "page")
LAT_SLOW = _burn(LATENCY.alert, "3d", "ticket")


def _annotations(firing: Firing, rules: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The annotations promtool will see: the matching rule's, with $labels rendered."""
    for rule in rules:
        if rule["alert"] == firing.alert and rule["labels"].items() <= firing.labels.items():
            return {
                key: _LABEL_REF.sub(lambda m: firing.labels.get(m.group(1), ""), text)
                for key, text in rule["annotations"].items()
            }
    raise ValueError(f"no rule {firing.alert} with labels within {firing.labels}")


def _scenario_yaml(scenario: Scenario, rules: Sequence[dict[str, Any]]) -> dict[str, Any]:
    alerts, values = [], []
    for check in scenario.checks:
        if isinstance(check, AlertCheck):
            alerts.append(
                {
                    "eval_time": check.at,
                    "alertname": check.alert,
                    "exp_alerts": [
                        {"exp_labels": f.labels, "exp_annotations": _annotations(f, rules)}
                        for f in check.firing
                    ],
                }
            )
        else:
            values.append(
                {
                    "expr": check.expr,
                    "eval_time": check.at,
                    "exp_samples": [
                        {"labels": labels, "value": value}
                        for labels, value in check.samples.items()
                    ],
                }
            )
    out: dict[str, Any] = {
        "name": scenario.name,
        "interval": scenario.interval,
        "input_series": scenario.series,
    }
    if alerts:
        out["alert_rule_test"] = alerts
    if values:
        out["promql_expr_test"] = values
    return out


def render_test_file(
    evaluation_interval: str, scenarios: Sequence[Scenario], base: str = RUNBOOK_BASE_URL
) -> str:
    rules = [r for g in alert_rules(base)["groups"] for r in g["rules"]]
    document = {
        "rule_files": RULE_FILES,
        "evaluation_interval": evaluation_interval,
        "group_eval_order": GROUP_ORDER,
        "tests": [_scenario_yaml(s, rules) for s in scenarios],
    }
    return to_yaml(document)


# --- the scenarios -------------------------------------------------------------------------


def _recording() -> list[Scenario]:
    """Ten minutes of steady traffic from a stable and a canary pod in namespace "prod", whose
    every recorded value is known in closed form.

    Per minute the stable pod answers POST /v1/predict 45 times 200, 15 times 503 and 20 times
    422 (invalid: outside both SLIs), and 40 batch requests; the canary 40 single and 20 batch
    requests, all 200. Probes (/healthz) and scrapes (/metrics) come on top and count nowhere
    but the all-routes request rate. promtool evaluates every group at every step, so the
    30-day ratios (slower group) are checked here too, over the ten minutes that exist.

    Values are compared scaled and rounded (round(1e4 * x)): promtool compares floats exactly,
    and a ratio of two extrapolated rates need not be the double the fraction is.
    """
    steps = 10

    def target(role: str) -> dict[str, str]:
        """The labels Kubernetes service discovery adds to every series of a pod."""
        return {"namespace": "prod", "pod": f"flight-delay-{role}", "role": role,
                "instance": f"{role}-0"}  # fmt: skip

    def predict(role: str, **labels: str) -> dict[str, str]:
        return {"route": "/v1/predict", **labels, **target(role)}

    def route(role: str, path: str, method: str, per_minute: int) -> dict[str, str]:
        labels = {"route": path, "method": method, "status": "200", **target(role)}
        return series("mlops_http_requests_total", labels, counter((per_minute, steps)))

    # Cumulative per minute. Stable: the 20 422s within 5 ms, then of the 60 valid answers 20
    # within 7.5 ms, 50 within 20 ms, 56 within 25 ms, all within 50 ms (4 slow).
    # Canary: 20 within 7.5 ms, 36 within 10 ms, all 40 within 15 ms.
    latency_buckets = {
        "stable": {"0.005": 20, "0.0075": 40, "0.01": 40, "0.015": 40, "0.02": 70,
                   "0.025": 76, "0.05": 80, "0.1": 80, "+Inf": 80},
        "canary": {"0.005": 0, "0.0075": 20, "0.01": 36, "0.015": 40, "0.02": 40,
                   "0.025": 40, "0.05": 40, "0.1": 40, "+Inf": 40},
    }  # fmt: skip
    staleness = {"1800": 0, "3600": 6, "+Inf": 6}  # weather: every row 30-60 min old
    score_sum = {"stable": 12, "canary": 30}  # per minute, of 60 predictions: means 0.2, 0.5
    stable = target("stable")
    inputs = [
        *(series("mlops_http_requests_total", predict(role, method="POST", status=status),
                 counter((n, steps)))
          for role, status, n in (("stable", "200", 45), ("stable", "503", 15),
                                  ("stable", "422", 20), ("canary", "200", 40))),
        route("stable", "/v1/predict/batch", "POST", 40),
        route("canary", "/v1/predict/batch", "POST", 20),
        route("stable", "/healthz", "GET", 60),
        route("canary", "/metrics", "GET", 30),
        *(series("mlops_http_request_duration_seconds_bucket", predict(role, le=le),
                 counter((n, steps)))
          for role, buckets in latency_buckets.items() for le, n in buckets.items()),
        *(series("mlops_http_request_duration_seconds_count", predict(role),
                 counter((buckets["+Inf"], steps)))
          for role, buckets in latency_buckets.items()),
        *(series(f"mlops_prediction_score_{part}", target(role),
                 counter((total if part == "sum" else 60, steps)))
          for role, total in score_sum.items() for part in ("sum", "count")),
        series("mlops_predictions_total", {"degraded": "true", **stable}, counter((6, steps))),
        series("mlops_predictions_total", {"degraded": "false", **stable}, counter((54, steps))),
        series("mlops_features_missing_total", {"view": "weather", "reason": "stale", **stable},
               counter((3, steps))),
        series("mlops_features_missing_total", {"view": "planes", "reason": "missing", **stable},
               counter((9, steps))),
        *(series("mlops_feature_staleness_seconds_bucket", {"view": "weather", "le": le, **stable},
                 counter((n, steps))) for le, n in staleness.items()),
    ]  # fmt: skip

    def scaled(name: str, samples: dict[str, float]) -> ValueCheck:
        return ValueCheck(
            "10m", f"round(10000 * {name})", {k: round(v * 10000) for k, v in samples.items()}
        )

    prod = '{namespace="prod"}'
    by_role = {role: f'{{namespace="prod",role="{role}"}}' for role in ("stable", "canary")}
    checks: list[AlertCheck | ValueCheck] = [
        # Prediction routes only: stable 45 + 15 + 20 + 40 batch, canary 40 + 20 a minute. (A
        # sum of rates may come out as 1.9999999999999998, the order of its terms varies.)
        scaled(
            "mlops_http_requests_per_second",
            {
                '{namespace="prod",pod="flight-delay-stable"}': 2,
                '{namespace="prod",pod="flight-delay-canary"}': 1,
            },
        ),
        # Every route: stable 120 + 60 probes, canary 60 + 30 scrapes a minute.
        scaled("role:mlops_http_requests:rate1m", {by_role["stable"]: 3, by_role["canary"]: 1.5}),
        # 15 5xx of the stable pod's 60 valid requests (its 20 422s are not valid events).
        scaled(
            "role:mlops_predict_requests:error_ratio_rate5m",
            {by_role["stable"]: 0.25, by_role["canary"]: 0},
        ),
        # Service-wide SLIs over valid requests (60 stable + 40 canary a minute): 15 5xx, and
        # 4 slower than 25 ms. Counting the 422s would give 15/120 and 4/120.
        *(scaled(AVAILABILITY.ratio(w), {prod: 0.15}) for w in ("5m", "30m", "1h", "3d", "30d")),
        *(scaled(LATENCY.ratio(w), {prod: 0.04}) for w in ("5m", "1h", "3d", "30d")),
        # Quantiles of all answers (the histogram has no status): stable p50 at the 40th of 80,
        # the top of the 7.5 ms bucket; p99 at 79.2, 3.2 of the 4 between 25 and 50 ms.
        scaled(
            "role:mlops_predict_request_duration_seconds:p50_5m",
            {by_role["stable"]: 0.0075, by_role["canary"]: 0.0075},
        ),
        scaled(
            "role:mlops_predict_request_duration_seconds:p99_5m",
            {by_role["stable"]: 0.045, by_role["canary"]: 0.0145},
        ),
        scaled(
            "role:mlops_prediction_score:mean_rate5m",
            {by_role["stable"]: 0.2, by_role["canary"]: 0.5},
        ),
        scaled("mlops:predictions:degraded_ratio_rate5m", {prod: 0.1}),
        scaled(
            "view_reason:mlops_features_missing:ratio_rate5m",
            {
                '{namespace="prod",reason="stale",view="weather"}': 0.05,
                '{namespace="prod",reason="missing",view="planes"}': 0.15,
            },
        ),
        scaled(
            "view:mlops_feature_staleness_seconds:p95_5m",
            {'{namespace="prod",view="weather"}': 3510},
        ),
    ]
    return [Scenario("recorded values of steady traffic", "1m", inputs, checks)]


def _availability() -> list[Scenario]:
    """The availability burn-rate alerts at a 1 m step (100 requests a minute throughout)."""
    ok, errors = [], []  # (per minute, minutes) of 200s and 5xx
    for minutes, share in ((240, 0), (3, 1), (77, 0), (5, 1), (25, 0)):
        ok.append((100 * (1 - share), minutes))
        errors.append((100 * share, minutes))
    timeline = Scenario(
        "4 h clean, a 3-minute spike at 4h, an outage of 5 minutes at 5h20m, recovery",
        "1m",
        [requests("stable", "200", counter(*ok)), requests("stable", "500", counter(*errors))],
        [
            AlertCheck("4h", AVAILABILITY.alert),
            # The spike: the 5m window sees 60 % errors, the 1h window 5 % (< 7.2 %): no page.
            # 3 bad minutes in 4 h of data are 1.2 % (> 0.5 %): the 1x ticket fires (3 real days
            # of history would dilute it to 0.07 %).
            AlertCheck("4h3m", AVAILABILITY.alert),
            AlertCheck("4h10m", AVAILABILITY.alert, (SLOW,)),
            AlertCheck("5h20m", AVAILABILITY.alert, (SLOW,)),
            # Outage: 5 bad minutes make the 1h ratio 8.3 % at 5h25m; 2 minutes `for` -> 5h27m.
            AlertCheck("5h26m", AVAILABILITY.alert, (SLOW,)),
            AlertCheck("5h27m", AVAILABILITY.alert, (FAST, SLOW)),
            # 6h window: 8 bad minutes of 327 = 2.4 % < 3 %: the 6x page stays quiet.
            # Five minutes after the fix the 5m window is clean: the page resolves although
            # the 1h ratio is still 8.3 %.
            AlertCheck("5h30m", AVAILABILITY.alert, (SLOW,)),
            AlertCheck("5h50m", AVAILABILITY.alert, (SLOW,)),
        ],
    )
    medium = Scenario(
        "4 % errors (8x budget) from the start: the 6h/30m page, not the 1h/5m one (7.2 %)",
        "1m",
        [requests("stable", "200", counter((96, 60))), requests("stable", "500", counter((4, 60)))],
        [AlertCheck("1h", AVAILABILITY.alert, (MEDIUM, SLOW))],
    )
    slow = Scenario(
        "1 % errors (2x budget) for 2 h: a ticket, never a page",
        "1m",
        [
            requests("stable", "200", counter((99, 120))),
            requests("stable", "500", counter((1, 120))),
        ],
        [
            AlertCheck("30m", AVAILABILITY.alert, (SLOW,)),
            AlertCheck("2h", AVAILABILITY.alert, (SLOW,)),
        ],
    )
    fast = Scenario(
        "10 % errors from the start: every window is above its threshold",
        "1m",
        [
            requests("stable", "200", counter((90, 30))),
            requests("stable", "500", counter((10, 30))),
        ],
        [
            AlertCheck("1m", AVAILABILITY.alert),  # 2 minutes pending first
            AlertCheck("30m", AVAILABILITY.alert, (FAST, MEDIUM, SLOW)),
        ],
    )
    healthy = Scenario(
        "no 5xx at all: the error ratio is 0 (not empty) and nothing fires",
        "1m",
        [requests("stable", "200", counter((100, 30)))],
        [
            AlertCheck("30m", AVAILABILITY.alert),
            ValueCheck("30m", AVAILABILITY.ratio("5m"), {AVAILABILITY.ratio("5m"): 0}),
            ValueCheck("30m", AVAILABILITY.ratio("3d"), {AVAILABILITY.ratio("3d"): 0}),
        ],
    )
    canary = Scenario(
        "a canary failing 1 % of its requests: the SLI sums roles, the service's 0.52 % opens "
        "a ticket; 5xx of the batch route are outside this SLO",
        "1m",
        [
            requests("stable", "200", counter((100, 30))),
            requests("canary", "200", counter((90, 30))),
            requests("canary", "500", counter((1, 30))),
            series(
                "mlops_http_requests_total",
                {
                    "route": "/v1/predict/batch",
                    "method": "POST",
                    "status": "500",
                    "role": "stable",
                    "instance": "stable-0",
                },
                counter((50, 30)),
            ),  # fmt: skip
        ],
        [
            # 1 bad of 191 a minute = 0.52 % > 0.5 %: the ticket. The batch route's 5xx are
            # outside this SLO and do not count.
            AlertCheck("30m", AVAILABILITY.alert, (SLOW,)),
            ValueCheck(
                "30m", f"round(10000 * {AVAILABILITY.ratio('1h')})", {"{}": round(1e4 / 191)}
            ),
        ],
    )
    invalid = Scenario(
        "1 % 5xx (2x budget) under a flood of 422s nine times the valid traffic: the 4xx are "
        "not valid events and do not dilute the ratio; the ticket opens",
        "1m",
        [
            requests("stable", "200", counter((99, 30))),
            requests("stable", "500", counter((1, 30))),
            requests("stable", "422", counter((900, 30))),
        ],
        [
            # 1 of 100 valid requests: 1 % > 0.5 %. Were the 422s counted, 1 of 1000 = 0.1 %.
            AlertCheck("30m", AVAILABILITY.alert, (SLOW,)),
            ValueCheck("30m", f"round(10000 * {AVAILABILITY.ratio('1h')})", {"{}": 100}),
        ],
    )
    only_invalid = Scenario(
        "nothing but 4xx: no valid events, no ratio (0/0), nothing fires",
        "1m",
        [requests("stable", "422", counter((100, 30)))],
        [
            AlertCheck("30m", AVAILABILITY.alert),
            ValueCheck("30m", f"{AVAILABILITY.ratio('5m')} >= 0", {}),
        ],
    )
    return [timeline, medium, slow, fast, healthy, canary, invalid, only_invalid]


def _latency() -> list[Scenario]:
    """The latency burn-rate alerts: shares of requests above 25 ms, from the start."""

    def traffic(slow_per_minute: int, invalid: int = 0, minutes: int = 30) -> list[dict[str, str]]:
        """100 valid requests a minute (200s), `slow_per_minute` of them slower than 25 ms, and
        `invalid` 422s a minute, all fast; the histogram counts every answer, as the service's."""
        labels = {"route": "/v1/predict", "role": "stable", "instance": "stable-0"}
        fast = 100 - slow_per_minute + invalid
        out = [
            series(
                "mlops_http_request_duration_seconds_bucket",
                {**labels, "le": "0.025"},
                counter((fast, minutes)),
            ),
            series(
                "mlops_http_request_duration_seconds_bucket",
                {**labels, "le": "+Inf"},
                counter((100 + invalid, minutes)),
            ),
            series(
                "mlops_http_request_duration_seconds_count",
                labels,
                counter((100 + invalid, minutes)),
            ),
            requests("stable", "200", counter((100, minutes))),
        ]
        if invalid:
            out.append(requests("stable", "422", counter((invalid, minutes))))
        return out

    return [
        Scenario(
            "all requests within 25 ms: no alert",
            "1m",
            traffic(0),
            [AlertCheck("30m", LATENCY.alert)],
        ),
        Scenario(
            "10 % slower than 25 ms: the 6h/30m page (> 6 %), not the 1h/5m one (14.4 %)",
            "1m",
            traffic(10),
            [AlertCheck("30m", LATENCY.alert, (LAT_MEDIUM, LAT_SLOW))],
        ),
        Scenario(
            "20 % slower than 25 ms: both pages and the ticket",
            "1m",
            traffic(20),
            [AlertCheck("30m", LATENCY.alert, (LAT_FAST, LAT_MEDIUM, LAT_SLOW))],
        ),
        Scenario(
            "10 % of valid requests slower than 25 ms under a flood of fast 422s nine times the "
            "valid traffic: the 4xx do not dilute the ratio, the 6h/30m page still fires",
            "1m",
            traffic(10, invalid=900),
            [
                # 10 of 100 valid requests; counting the 422s it would be 10 of 1000 = 1 %,
                # not above the 1x threshold: nothing would fire.
                AlertCheck("30m", LATENCY.alert, (LAT_MEDIUM, LAT_SLOW)),
                ValueCheck("30m", f"round(10000 * {LATENCY.ratio('1h')})", {"{}": 1000}),
            ],
        ),
    ]


def _model() -> list[Scenario]:
    """Missing and stale features, and the scrape targets, at a 1 m step."""
    minutes = 30
    missing = Scenario(
        "weather stale in 10 % of predictions (page after 10 m); planes missing in 20 % (no "
        "TTL: not alerted); route rates missing in 3 % (below 5 %)",
        "1m",
        [
            series("mlops_predictions_total", {"degraded": "true"}, counter((30, minutes))),
            series("mlops_predictions_total", {"degraded": "false"}, counter((70, minutes))),
            *(
                series(
                    "mlops_features_missing_total",
                    {"view": view, "reason": reason},
                    counter((n, minutes)),
                )
                for view, reason, n in (
                    ("weather", "stale", 10),
                    ("planes", "missing", 20),
                    ("route_delay_rates", "missing", 3),
                )
            ),
        ],
        [
            AlertCheck("10m", "FeaturesMissing"),
            AlertCheck(
                "20m",
                "FeaturesMissing",
                (Firing("FeaturesMissing", {"severity": "page", "view": "weather"}),),
            ),
        ],
    )
    # Staleness buckets per minute: weather rows 2-3 h old (p95 ~ 2.95 h > 75 % of 3 h),
    # origin rates 30-60 min old (p95 ~ 58 min < 75 % of 2 h).
    bounds = ("1800", "3600", "7200", "10800", "+Inf")
    ages = {"weather": (0, 0, 0, 10, 10), "origin_delay_rates": (0, 10, 10, 10, 10)}
    stale = Scenario(
        "weather rows 2-3 h old for 30 minutes: a ticket after 15 m; origin rates fresh",
        "1m",
        [
            series(
                "mlops_feature_staleness_seconds_bucket",
                {"view": view, "le": le},
                counter((n, minutes)),
            )
            for view, counts in ages.items()
            for le, n in zip(bounds, counts, strict=True)
        ],
        [
            AlertCheck("10m", "FeatureStalenessHigh"),
            AlertCheck(
                "30m",
                "FeatureStalenessHigh",
                (Firing("FeatureStalenessHigh", {"severity": "ticket", "view": "weather"}),),
            ),
        ],
    )
    target = {"job": "flight-delay"}
    down = Scenario(
        "stable-1 down from 10m, stable-0 too from 20m; the canary stays up",
        "1m",
        [
            series(
                "up", {**target, "instance": "stable-0", "role": "stable"}, gauge((1, 20), (0, 11))
            ),
            series(
                "up", {**target, "instance": "stable-1", "role": "stable"}, gauge((1, 10), (0, 21))
            ),
            series("up", {**target, "instance": "canary-0", "role": "canary"}, gauge((1, 31))),
        ],  # fmt: skip
        [
            AlertCheck("14m", "TargetDown"),  # down since 10m, 5 m `for`
            AlertCheck(
                "16m",
                "TargetDown",
                (
                    Firing(
                        "TargetDown",
                        {"severity": "ticket", **target, "instance": "stable-1", "role": "stable"},
                    ),
                ),
            ),
            AlertCheck("16m", "PredictionServiceDown"),  # stable-0 still serves
            AlertCheck("21m", "PredictionServiceDown"),
            AlertCheck(
                "23m",
                "PredictionServiceDown",
                (Firing("PredictionServiceDown", {"severity": "page", "role": "stable"}),),
            ),
        ],
    )
    unseen = Scenario(
        "only a canary target exists (no stable one discovered): the service-down page",
        "1m",
        [series("up", {**target, "instance": "canary-0", "role": "canary"}, gauge((1, 11)))],
        [
            AlertCheck("1m", "PredictionServiceDown"),
            AlertCheck(
                "5m",
                "PredictionServiceDown",
                (Firing("PredictionServiceDown", {"severity": "page", "role": "stable"}),),
            ),
        ],
    )
    return [missing, stale, down, unseen]


def _score_shift() -> list[Scenario]:
    """A week of scores at a 30 m step (the shift alert compares with 7 days earlier)."""
    step_minutes, week = 30, 7 * 48  # steps of 30 m in 7 days
    count = 3000  # predictions per 30 minutes
    # Stable: mean 0.20 for a week, 0.23 for 3 h (shift 0.03: quiet), then 0.30 (shift 0.10).
    stable_sum = counter((0.20 * count, week), (0.23 * count, 6), (0.30 * count, 6))
    # Canary: mean 0.90 from the start, far from anything: the alert watches stable only.
    canary_sum = counter((0.90 * count, week + 12))
    total = week + 12
    first_week = 6 * 48  # six days at 30 m
    return [
        Scenario(
            "stable mean 0.20 for a week, then 0.23 (quiet), then 0.30 (ticket)",
            f"{step_minutes}m",
            [
                series("mlops_prediction_score_sum", {"role": "stable"}, stable_sum),
                series("mlops_prediction_score_count", {"role": "stable"}, counter((count, total))),
                series("mlops_prediction_score_sum", {"role": "canary"}, canary_sum),
                series("mlops_prediction_score_count", {"role": "canary"}, counter((count, total))),
            ],
            [
                AlertCheck("3d", "PredictionScoreShift"),  # no week-old baseline yet
                AlertCheck("7d2h30m", "PredictionScoreShift"),
                AlertCheck("7d3h30m", "PredictionScoreShift"),  # mean 0.265: active, pending
                AlertCheck(
                    "7d4h",
                    "PredictionScoreShift",
                    (Firing("PredictionScoreShift", {"role": "stable", "severity": "ticket"}),),
                ),
            ],
        ),
        Scenario(
            "a new deployment whose mean jumps from 0.20 to 0.60 on day 2: blind, no week-old "
            "baseline (offset 7d returns nothing) - the limitation the runbook states",
            f"{step_minutes}m",
            [
                series(
                    "mlops_prediction_score_sum",
                    {"role": "stable"},
                    counter((0.20 * count, 48), (0.60 * count, first_week - 48)),
                ),
                series(
                    "mlops_prediction_score_count",
                    {"role": "stable"},
                    counter((count, first_week)),
                ),
            ],
            [AlertCheck(at, "PredictionScoreShift") for at in ("2d12h", "4d", "6d")],
        ),
    ]


TEST_FILES = {
    "recording_test.yml": ("1m", _recording),
    "availability_test.yml": ("1m", _availability),
    "latency_test.yml": ("1m", _latency),
    "model_test.yml": ("1m", _model),
    "score_shift_test.yml": ("30m", _score_shift),
}
"""{file: (evaluation interval, scenarios)} under deploy/prometheus/tests/."""


def render_test_files(base: str = RUNBOOK_BASE_URL) -> dict[str, str]:
    """{file name: text} of every promtool unit-test file."""
    return {
        name: render_test_file(interval, build(), base)
        for name, (interval, build) in TEST_FILES.items()
    }
