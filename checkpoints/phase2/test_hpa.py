"""Checkpoint 2.7: the Horizontal Pod Autoscaler's replica calculation and its stabilisation.

Grades `mlops_pipeline.autoscaling.hpa.desired_replicas(current, current_value, target,
tolerance, ready)` and `stabilized_recommendation(history, now, desired, current,
scale_up_window, scale_down_window)`, alone and inside the controller's reconcile loop. The
oracles are the worked examples of the Kubernetes documentation (Horizontal Pod Autoscaling,
"Algorithm details" and "Configurable scaling behavior"), written out here as numbers.
"""

from __future__ import annotations

import pytest

from learn.testing import import_learner


@pytest.fixture
def hpa():
    return import_learner("mlops_pipeline.autoscaling.hpa")


def _spec(hpa, **kwargs):
    """An HPA on CPU (target 100 %) unless told otherwise."""
    kwargs.setdefault("metrics", (hpa.MetricSpec("Resource", "cpu", 100),))
    kwargs.setdefault("max_replicas", 100)
    return hpa.HPASpec(**kwargs)


def _cpu(hpa, pods: int, percent: float):
    return {"cpu": [hpa.PodMetric(percent)] * pods}


@pytest.mark.checkpoint("2.7")
def test_twice_the_target_doubles_the_replicas(hpa):
    """Docs: a current value of 200m against a target of 100m doubles the count (200/100 = 2)."""
    assert hpa.desired_replicas(1, 200, 100) == 2
    assert hpa.desired_replicas(3, 200, 100) == 6
    assert hpa.desired_replicas(4, 0.2, 0.1) == 8


@pytest.mark.checkpoint("2.7")
def test_half_the_target_halves_the_replicas_rounding_up(hpa):
    """Docs: 50m against 100m halves the count; a fraction of a pod rounds UP (3 -> 2)."""
    assert hpa.desired_replicas(4, 50, 100) == 2
    assert hpa.desired_replicas(3, 50, 100) == 2
    assert hpa.desired_replicas(10, 70, 100) == 7
    assert hpa.desired_replicas(10, 71, 100) == 8  # ceil(7.1)


@pytest.mark.checkpoint("2.7")
def test_no_scaling_within_the_tolerance(hpa):
    """Docs: a ratio within 0.1 of 1.0 changes nothing; beyond it the ratio applies."""
    assert hpa.desired_replicas(10, 109, 100) == 10
    assert hpa.desired_replicas(10, 91, 100) == 10
    assert hpa.desired_replicas(10, 100, 100) == 10
    assert hpa.desired_replicas(10, 112, 100) == 12  # ceil(11.2)
    assert hpa.desired_replicas(10, 88, 100) == 9  # ceil(8.8)
    assert hpa.desired_replicas(10, 105, 100, tolerance=0.0) == 11  # ceil(10.5)
    assert hpa.desired_replicas(10, 130, 100, tolerance=0.5) == 10


@pytest.mark.checkpoint("2.7")
def test_ratio_scales_the_averaged_pods_but_no_change_keeps_current(hpa):
    """The ceiling multiplies the pods whose metric was averaged (`ready`); within the
    tolerance the answer is the current count, however many pods reported."""
    assert hpa.desired_replicas(5, 200, 100, ready=3) == 6
    assert hpa.desired_replicas(5, 105, 100, ready=3) == 5
    assert hpa.desired_replicas(6, 30, 100, ready=4) == 2  # ceil(1.2)


@pytest.mark.checkpoint("2.7")
def test_scale_down_takes_the_highest_recommendation_of_the_last_300_s(hpa):
    """Docs: scaling down uses the highest recommendation within the window (default 300 s);
    a recommendation counts while it is strictly newer than now - window."""
    rec = hpa.Recommendation
    history = [rec(0.0, 10), rec(60.0, 7), rec(120.0, 5)]
    assert hpa.stabilized_recommendation(history, 290.0, 3, 10) == 10
    assert hpa.stabilized_recommendation(history, 310.0, 3, 10) == 7
    assert hpa.stabilized_recommendation(history, 400.0, 3, 10) == 5
    assert hpa.stabilized_recommendation(history, 430.0, 3, 10) == 3
    assert hpa.stabilized_recommendation(history, 150.0, 3, 10, scale_down_window=100.0) == 7
    assert hpa.stabilized_recommendation(history, 150.0, 3, 10, scale_down_window=60.0) == 5
    assert hpa.stabilized_recommendation(history, 150.0, 3, 10, scale_down_window=0.0) == 3


@pytest.mark.checkpoint("2.7")
def test_scale_up_is_immediate_unless_it_has_a_window(hpa):
    """Scale-up has no window by default (the new recommendation wins at once); with one, the
    lowest recommendation of that window limits it, and never below the current count."""
    rec = hpa.Recommendation
    history = [rec(0.0, 8), rec(30.0, 12)]
    assert hpa.stabilized_recommendation(history, 45.0, 15, 10) == 15
    assert hpa.stabilized_recommendation(history, 45.0, 15, 10, scale_up_window=60.0) == 10
    assert hpa.stabilized_recommendation(history, 75.0, 15, 10, scale_up_window=60.0) == 12
    assert hpa.stabilized_recommendation(history, 75.0, 15, 14, scale_up_window=60.0) == 14


@pytest.mark.checkpoint("2.7")
def test_a_count_inside_the_recent_band_stays(hpa):
    """Current count between the up-window's lowest and the down-window's highest: no change,
    neither the dip (down to 5) nor the recent high (8) moves it."""
    history = [hpa.Recommendation(200.0, 8)]
    assert hpa.stabilized_recommendation(history, 250.0, 5, 6) == 6
    assert hpa.stabilized_recommendation(history, 250.0, 5, 9) == 8


@pytest.mark.checkpoint("2.7")
def test_controller_keeps_pods_for_300_s_after_the_load_falls(hpa):
    """Ten pods at target, then the load halves: the controller holds 10 pods until 300 s after
    the last 10-pod recommendation (t = 0), then scales to ceil(10 x 0.5) = 5."""
    controller = hpa.HorizontalPodAutoscaler(_spec(hpa))
    assert controller.reconcile(0.0, 10, _cpu(hpa, 10, 100)).desired == 10
    for t in range(15, 300, 15):
        decision = controller.reconcile(float(t), 10, _cpu(hpa, 10, 50))
        assert decision.proposed == 5 and decision.desired == 10, t
    assert controller.reconcile(300.0, 10, _cpu(hpa, 10, 50)).desired == 5


@pytest.mark.checkpoint("2.7")
def test_scaling_policies_limit_one_step(hpa):
    """Docs defaults: scale-up by the larger of 100 % and 4 pods per 15 s (2 -> 6, then 6 -> 12).
    Docs example, scale-down by 4 pods or 10 % per 60 s: 80 -> 72 at once, 72 again within the
    period, then 64 (10 % of 72 rounds to 8 pods removed)."""
    controller = hpa.HorizontalPodAutoscaler(_spec(hpa))
    assert controller.reconcile(0.0, 2, _cpu(hpa, 2, 1000)).desired == 6
    assert controller.reconcile(15.0, 6, _cpu(hpa, 6, 1000)).desired == 12

    down = hpa.HPAScalingRules(
        stabilization_window_seconds=0,
        policies=(hpa.HPAScalingPolicy("Pods", 4, 60), hpa.HPAScalingPolicy("Percent", 10, 60)),
    )
    controller = hpa.HorizontalPodAutoscaler(_spec(hpa, behavior=hpa.HPABehavior(scale_down=down)))
    assert controller.reconcile(0.0, 80, _cpu(hpa, 80, 12.5)).desired == 72
    assert controller.reconcile(15.0, 72, _cpu(hpa, 72, 13)).desired == 72
    assert controller.reconcile(60.0, 72, _cpu(hpa, 72, 13)).desired == 64


@pytest.mark.checkpoint("2.7")
def test_several_metrics_take_the_largest_proposal(hpa):
    """Docs: with several metrics, each proposes a count and the largest wins (CPU asks 4,
    requests per pod ask 6)."""
    spec = _spec(
        hpa,
        metrics=(
            hpa.MetricSpec("Resource", "cpu", 70),
            hpa.MetricSpec("Pods", "mlops_http_requests_per_second", 40),
        ),
    )
    controller = hpa.HorizontalPodAutoscaler(spec)
    samples = {
        "cpu": [hpa.PodMetric(140)] * 2,
        "mlops_http_requests_per_second": [hpa.PodMetric(120)] * 2,
    }
    decision = controller.reconcile(0.0, 2, samples)
    assert decision.proposed == 6 and decision.desired == 6
    assert decision.metric == "mlops_http_requests_per_second"
