"""Canary analysis pieces that need no server: the query strings, thresholds, PSI, metrics."""

from __future__ import annotations

import math

import pytest

from mlops_pipeline.rollout.analysis import (
    QUERIES,
    Decision,
    RoleMetrics,
    StepMetrics,
    Thresholds,
    decide,
    histogram_psi,
    render,
)

# The design's queries; the error rate's denominator leaves out 4xx (malformed requests are not
# valid events, as in the availability SLO).
DESIGN = {
    "error_rate": 'sum(rate(mlops_http_requests_total{role="canary",route="/v1/predict",'
    'status=~"5.."}[30s])) / sum(rate(mlops_http_requests_total{role="canary",'
    'route="/v1/predict",status!~"4.."}[30s]))',
    "p99_latency": "histogram_quantile(0.99, sum by (le) (rate("
    'mlops_http_request_duration_seconds_bucket{role="canary",route="/v1/predict"}[30s])))',
    "mean_score": 'sum(rate(mlops_prediction_score_sum{role="canary"}[30s])) / '
    'sum(rate(mlops_prediction_score_count{role="canary"}[30s]))',
    "score_buckets": 'sum by (le) (increase(mlops_prediction_score_bucket{role="canary"}[30s]))',
}
"""The design document's queries with ROLE = canary and W = 30s, copied by hand."""


def test_queries_are_the_designs():
    """Rendered for the canary over 30 s, each query is the design's text, character for
    character (the Argo AnalysisTemplate is checked against the same strings)."""
    assert set(QUERIES) == set(DESIGN)
    for name, expected in DESIGN.items():
        assert render(QUERIES[name], "canary", "30s") == expected


def test_render_substitutes_every_placeholder():
    """No `{role}`/`{window}` left, and the stable role and a k8s window work too."""
    for query in QUERIES.values():
        text = render(query, "stable", "2m")
        assert "{role}" not in text and "{window}" not in text
        assert 'role="stable"' in text and "[2m]" in text


@pytest.mark.parametrize(
    ("role", "window"), [("prod", "30s"), ("canary", "30"), ("canary", "1m]) or vector(1"),
                         ("canary", "")],
)  # fmt: skip
def test_render_refuses_what_is_not_a_role_or_a_duration(role, window):
    """A typo or an injected expression fails loudly instead of querying something else."""
    with pytest.raises(ValueError):
        render(QUERIES["mean_score"], role, window)


def test_thresholds_defaults_are_the_designs():
    """1 % errors, 25 ms p99 (and 2 x stable + 5 ms), 0.05 score shift, 50 requests."""
    t = Thresholds()
    assert (t.max_error_rate, t.max_p99_seconds, t.max_p99_ratio, t.p99_slack_seconds) == (
        0.01, 0.025, 2.0, 0.005,
    )  # fmt: skip
    assert (t.max_score_shift, t.min_requests) == (0.05, 50)


@pytest.mark.parametrize(
    "changes", [{"max_error_rate": -0.1}, {"max_error_rate": 1.5}, {"max_score_shift": math.nan}]
)
def test_thresholds_refuse_nonsense(changes):
    """Negative, NaN or an error share above 1 is a configuration error."""
    with pytest.raises(ValueError, match="Thresholds"):
        Thresholds(**changes)


def test_psi_of_identical_histograms_is_zero():
    """Same shares in every bin (counts may differ): PSI 0."""
    stable = {0.1: 10.0, 0.5: 60.0, 1.0: 100.0, math.inf: 100.0}
    canary = {le: v / 10 for le, v in stable.items()}
    assert histogram_psi(canary, stable) == pytest.approx(0.0, abs=1e-12)


def test_psi_from_cumulative_buckets_matches_the_formula():
    """Cumulative counts -> bin shares -> sum((c - s) ln(c / s)), worked by hand."""
    stable = {0.5: 50.0, 1.0: 100.0, math.inf: 100.0}  # shares 0.5, 0.5, 0
    canary = {0.5: 20.0, 1.0: 100.0, math.inf: 100.0}  # shares 0.2, 0.8, 0
    expected = (0.2 - 0.5) * math.log(0.2 / 0.5) + (0.8 - 0.5) * math.log(0.8 / 0.5)
    assert histogram_psi(canary, stable) == pytest.approx(expected, rel=1e-9)


def test_psi_is_none_without_observations():
    """No buckets, or no observations on one side: nothing to compare."""
    assert histogram_psi({}, {}) is None
    assert histogram_psi({0.5: 0.0, math.inf: 0.0}, {0.5: 3.0, math.inf: 5.0}) is None


def test_step_metrics_to_dict_turns_nan_into_none():
    """PromQL's 0/0 is NaN; the timeline JSON gets null instead of an invalid NaN token."""
    metrics = StepMetrics(canary=RoleMetrics(mean_score=math.nan, requests=3.0), canary_up=False)
    out = metrics.to_dict()
    assert out["canary"]["mean_score"] is None and out["canary"]["requests"] == 3.0
    assert out["canary_up"] is False and out["stable"]["p99_latency"] is None


def test_decide_returns_a_decision():
    """A healthy step promotes with no reasons (the full table is checkpoint 2.6's)."""
    healthy = RoleMetrics(error_rate=0.0, p99_latency=0.01, mean_score=0.2, requests=500.0)
    decision = decide(StepMetrics(canary=healthy, stable=healthy, canary_up=True), Thresholds())
    assert decision == Decision("promote", [])
