"""Checkpoint 2.6: the canary decision (promote, hold or roll back) from one step's metrics.

Grades `mlops_pipeline.rollout.analysis.decide(metrics, thresholds) -> Decision(action,
reasons)`. Each case below writes out its metrics and the expected action and checks (the part
of each reason before ":"), from the rules in the design: a breached threshold rolls back, too
few canary requests or a missing value holds, a dead canary rolls back, otherwise promote.
Boundary cases use numbers whose sums are exact in binary floating point.
"""

from __future__ import annotations

import math

import pytest

from learn.testing import import_learner

NAN = math.nan
HEALTHY_CANARY = dict(error_rate=0.002, p99_latency=0.012, mean_score=0.22, requests=400.0)
HEALTHY_STABLE = dict(error_rate=0.001, p99_latency=0.010, mean_score=0.21, requests=7600.0)
EXACT = dict(
    max_error_rate=0.0625,
    max_p99_seconds=0.03125,
    max_p99_ratio=2.0,
    p99_slack_seconds=0.0078125,
    max_score_shift=0.0625,
    min_requests=50,
)
"""Thresholds that are powers of two: canary values AT them compare exactly."""


@pytest.fixture
def analysis():
    return import_learner("mlops_pipeline.rollout.analysis")


def _metrics(analysis, canary=None, stable=None, canary_up=True):
    """StepMetrics from the healthy defaults with some fields replaced."""
    return analysis.StepMetrics(
        canary=analysis.RoleMetrics(**{**HEALTHY_CANARY, **(canary or {})}),
        stable=analysis.RoleMetrics(**{**HEALTHY_STABLE, **(stable or {})}),
        canary_up=canary_up,
    )


def _checks(decision):
    """The check names of a decision's reasons ("error_rate: ..." -> "error_rate")."""
    return {reason.split(":", 1)[0].strip() for reason in decision.reasons}


CASES = [
    # id, canary changes, stable changes, canary_up, thresholds (None = defaults), action, checks
    ("healthy", {}, {}, True, None, "promote", set()),
    ("error-rate-above", {"error_rate": 0.0101}, {}, True, None, "rollback", {"error_rate"}),
    ("p99-above-slo", {"p99_latency": 0.0251}, {"p99_latency": 0.02}, True, None, "rollback",
     {"p99_latency"}),
    ("p99-relative-only", {"p99_latency": 0.02}, {"p99_latency": 0.005}, True, None, "rollback",
     {"p99_relative"}),
    ("p99-both", {"p99_latency": 0.04}, {"p99_latency": 0.005}, True, None, "rollback",
     {"p99_latency", "p99_relative"}),
    ("score-up", {"mean_score": 0.30}, {"mean_score": 0.21}, True, None, "rollback",
     {"score_shift"}),
    ("score-down", {"mean_score": 0.10}, {"mean_score": 0.21}, True, None, "rollback",
     {"score_shift"}),
    ("too-few-requests", {"requests": 49.0}, {}, True, None, "hold", {"insufficient_data"}),
    ("requests-unknown", {"requests": None}, {}, True, None, "hold", {"insufficient_data"}),
    ("requests-nan", {"requests": NAN}, {}, True, None, "hold", {"insufficient_data"}),
    ("few-requests-hide-breach", {"requests": 10.0, "error_rate": 0.5}, {}, True, None, "hold",
     {"insufficient_data"}),
    ("canary-down", {}, {}, False, None, "rollback", {"canary_down"}),
    ("canary-down-no-data", {"requests": 0.0, "error_rate": None}, {}, False, None, "rollback",
     {"canary_down"}),
    ("canary-score-missing", {"mean_score": None}, {}, True, None, "hold", {"missing"}),
    ("canary-score-nan", {"mean_score": NAN}, {}, True, None, "hold", {"missing"}),
    ("stable-score-missing", {}, {"mean_score": None}, True, None, "hold", {"missing"}),
    ("canary-p99-nan", {"p99_latency": NAN}, {}, True, None, "hold", {"missing"}),
    ("stable-p99-missing", {}, {"p99_latency": None}, True, None, "hold", {"missing"}),
    ("error-rate-missing", {"error_rate": None}, {}, True, None, "hold", {"missing"}),
    ("breach-beats-missing", {"error_rate": 0.2, "mean_score": None}, {}, True, None, "rollback",
     {"error_rate"}),
    ("three-breaches", {"error_rate": 0.05, "p99_latency": 0.03, "mean_score": 0.5},
     {"p99_latency": 0.02}, True, None, "rollback", {"error_rate", "p99_latency", "score_shift"}),
    ("custom-min-requests", {"requests": 12.0}, {}, True, {"min_requests": 10}, "promote", set()),
    ("custom-score-limit", {"mean_score": 0.25}, {"mean_score": 0.21}, True,
     {"max_score_shift": 0.02}, "rollback", {"score_shift"}),
]  # fmt: skip


@pytest.mark.checkpoint("2.6")
@pytest.mark.parametrize(
    ("canary", "stable", "up", "limits", "action", "checks"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision_table(analysis, canary, stable, up, limits, action, checks):
    """Each row: the action and the set of checks named in the reasons."""
    thresholds = analysis.Thresholds(**(limits or {}))
    decision = analysis.decide(_metrics(analysis, canary, stable, up), thresholds)
    assert decision.action == action, decision.reasons
    assert _checks(decision) == checks, decision.reasons


@pytest.mark.checkpoint("2.6")
def test_values_exactly_at_the_thresholds_pass(analysis):
    """Error rate, p99 (absolute and relative) and score shift exactly at their limits promote."""
    thresholds = analysis.Thresholds(**EXACT)
    canary = {"error_rate": 0.0625, "p99_latency": 0.03125, "mean_score": 0.5625, "requests": 50.0}
    stable = {"p99_latency": 0.01171875, "mean_score": 0.5}  # 2 x 0.01171875 + 0.0078125 = 0.03125
    decision = analysis.decide(_metrics(analysis, canary, stable), thresholds)
    assert decision.action == "promote", decision.reasons
    assert decision.reasons == []


@pytest.mark.checkpoint("2.6")
@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("error_rate", 0.0625 + 2**-20, "error_rate"),
        ("p99_latency", 0.03125 + 2**-20, "p99_latency"),
        ("mean_score", 0.5625 + 2**-20, "score_shift"),
        ("mean_score", 0.4375 - 2**-20, "score_shift"),
    ],
)
def test_just_past_a_threshold_rolls_back(analysis, field, value, check):
    """A hair past a limit (either side for the score) rolls back and names that check."""
    thresholds = analysis.Thresholds(**EXACT)
    canary = {"error_rate": 0.0, "p99_latency": 0.001, "mean_score": 0.5, "requests": 50.0}
    stable = {"p99_latency": 0.05, "mean_score": 0.5}
    canary[field] = value
    decision = analysis.decide(_metrics(analysis, canary, stable), thresholds)
    assert decision.action == "rollback"
    assert check in _checks(decision)


@pytest.mark.checkpoint("2.6")
def test_relative_p99_limit_is_ratio_times_stable_plus_slack(analysis):
    """Canary p99 at 2 x stable + slack passes; a hair more fails on p99_relative alone."""
    thresholds = analysis.Thresholds(**EXACT)
    stable = {"p99_latency": 0.0078125}  # limit 2 x 0.0078125 + 0.0078125 = 0.0234375
    at = {"p99_latency": 0.0234375}
    above = {"p99_latency": 0.0234375 + 2**-20}
    assert analysis.decide(_metrics(analysis, at, stable), thresholds).action == "promote"
    decision = analysis.decide(_metrics(analysis, above, stable), thresholds)
    assert decision.action == "rollback" and _checks(decision) == {"p99_relative"}


@pytest.mark.checkpoint("2.6")
def test_minimum_requests_is_inclusive(analysis):
    """Exactly `min_requests` canary requests are enough; one fewer holds."""
    thresholds = analysis.Thresholds()
    assert analysis.decide(_metrics(analysis, {"requests": 50.0}), thresholds).action == "promote"
    decision = analysis.decide(_metrics(analysis, {"requests": 49.9}), thresholds)
    assert decision.action == "hold" and _checks(decision) == {"insufficient_data"}


@pytest.mark.checkpoint("2.6")
def test_default_thresholds_at_their_limits(analysis):
    """The design's defaults: 1 % errors, 25 ms p99 (= 2 x 10 ms + 5 ms) and a 0.05 shift pass."""
    canary = {"error_rate": 0.01, "p99_latency": 0.025, "mean_score": 0.25}
    stable = {"p99_latency": 0.01, "mean_score": 0.20}
    decision = analysis.decide(_metrics(analysis, canary, stable), analysis.Thresholds())
    assert decision.action == "promote", decision.reasons


@pytest.mark.checkpoint("2.6")
def test_nothing_known_never_promotes(analysis):
    """Prometheus down: every value None and `canary_up` unknown -> hold, not promote."""
    blank = analysis.StepMetrics(
        canary=analysis.RoleMetrics(), stable=analysis.RoleMetrics(), canary_up=None
    )
    decision = analysis.decide(blank, analysis.Thresholds())
    assert decision.action == "hold"
    assert decision.reasons, "a hold must say why"


@pytest.mark.checkpoint("2.6")
def test_every_reason_names_its_check(analysis):
    """Reasons are "<check>: <message>", one per breached check, each with a message."""
    canary = {"error_rate": 0.25, "p99_latency": 0.5, "mean_score": 0.9}
    decision = analysis.decide(_metrics(analysis, canary), analysis.Thresholds())
    assert decision.action == "rollback"
    assert _checks(decision) == {"error_rate", "p99_latency", "p99_relative", "score_shift"}
    for reason in decision.reasons:
        check, _, message = reason.partition(":")
        assert message.strip(), reason
