"""The HPA rule against the Kubernetes docs, its invariants on random inputs, the load traces
against brute-force counts, and replays of a synthetic trace and of a real 2013 day."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_pipeline import data
from mlops_pipeline.autoscaling import hpa, replay, trace
from mlops_pipeline.autoscaling.hpa import (
    HorizontalPodAutoscaler,
    HPABehavior,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    MetricSpec,
    PodMetric,
)

CPU = MetricSpec("Resource", "cpu", 100)
RPS = MetricSpec("Pods", trace.REQUESTS_METRIC, 40)
K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"


def cpu(pods: int, percent: float) -> dict[str, list[PodMetric]]:
    return {"cpu": [PodMetric(percent)] * pods}


# --- the replica calculation ------------------------------------------------------------------


def test_doc_examples_and_tolerance():
    """200m/100m doubles, 50m/100m halves, within 10 % nothing changes."""
    assert hpa.desired_replicas(3, 200, 100) == 6
    assert hpa.desired_replicas(4, 50, 100) == 2
    assert hpa.desired_replicas(7, 108, 100) == 7
    assert hpa.desired_replicas(7, 93, 100) == 7
    assert hpa.desired_replicas(7, 120, 100) == 9  # ceil(8.4)
    with pytest.raises(ValueError, match="target"):
        hpa.desired_replicas(3, 1, 0)
    with pytest.raises(ValueError, match="negative"):
        hpa.desired_replicas(-1, 1, 1)


def test_resource_average_is_an_integer_percent():
    """The controller truncates CPU utilisation to a whole percent before the ratio: 10 pods at
    110.9 % are 'at 110 %', inside the tolerance of a 100 % target."""
    assert hpa.replicas_for_metric(CPU, 10, [PodMetric(110.9)] * 10) == 11  # 110 %: |1-1.1|>0.1
    assert hpa.replicas_for_metric(CPU, 10, [PodMetric(109.9)] * 10) == 10


def test_pods_metric_average_in_milli_units():
    """A Pods metric is averaged in milli-units, like Quantity values: 3 pods at 60 requests/s
    against 40 need ceil(3 x 1.5) = 5."""
    assert hpa.replicas_for_metric(RPS, 3, [PodMetric(60.0)] * 3) == 5
    assert hpa.replicas_for_metric(RPS, 3, [PodMetric(40.0005)] * 3) == 3


def test_missing_pods_on_a_scale_down_count_as_full():
    """Docs: a pod without a sample counts as 100 % of its request (CPU) or the target (Pods)
    on a scale-down, damping it: without that, 3 pods at 20 % would shrink 4 pods to 2."""
    samples = [PodMetric(20.0)] * 3 + [PodMetric(None)]
    cpu50 = MetricSpec("Resource", "cpu", 50)
    assert hpa.replicas_for_metric(cpu50, 4, samples[:3]) == 2
    assert hpa.replicas_for_metric(cpu50, 4, samples) == 4  # (60+100)/4 = 40 %: ceil(3.2) = 4
    rps = [PodMetric(10.0)] * 3 + [PodMetric(None)]
    assert hpa.replicas_for_metric(RPS, 4, rps) == 2  # (30+40)/4 = 17.5: ceil(4 x 0.4375)


def test_missing_pods_on_a_scale_up_count_as_zero():
    """On a scale-up a missing pod counts as 0: 3 pods at 200 % and one silent one give
    600/4 = 150 %, so ceil(4 x 1.5) = 6 (the same total, the tolerance checked again)."""
    samples = [PodMetric(200.0)] * 3 + [PodMetric(None)]
    assert hpa.replicas_for_metric(CPU, 4, samples) == 6
    near = [PodMetric(115.0)] * 3 + [PodMetric(None)]  # 345/4 = 86 %: the direction reverses
    assert hpa.replicas_for_metric(CPU, 4, near) == 4


def test_unready_pods_damp_a_scale_up_and_are_ignored_otherwise():
    """Starting pods count as 0 on a scale-up: 2 ready pods at 150 % with 2 starting ones give
    75 %, the direction reverses, nothing changes (without them: ceil(2 x 1.5) = 3)."""
    ready = [PodMetric(150.0)] * 2
    starting = [PodMetric(None, ready=False)] * 2
    assert hpa.replicas_for_metric(CPU, 2, ready) == 3
    assert hpa.replicas_for_metric(CPU, 4, ready + starting) == 4
    assert hpa.replicas_for_metric(CPU, 4, [PodMetric(400.0)] * 2 + starting) == 8
    assert hpa.replicas_for_metric(CPU, 4, [PodMetric(20.0)] * 2 + starting) == 1  # set aside
    with pytest.raises(hpa.NoMetrics):
        hpa.replicas_for_metric(CPU, 2, starting)


# --- the controller ---------------------------------------------------------------------------


def test_default_policies_and_limits():
    """Scale-up: the larger of +100 % and +4 pods per 15 s; max_replicas caps it."""
    controller = HorizontalPodAutoscaler(HPASpec(max_replicas=10, metrics=(CPU,)))
    first = controller.reconcile(0.0, 1, cpu(1, 5000))
    assert (first.proposed, first.desired, first.reason) == (50, 5, "ScaleUpLimit")
    second = controller.reconcile(15.0, 5, cpu(5, 5000))
    assert (second.desired, second.reason) == (10, "TooManyReplicas")


def test_policy_period_counts_earlier_steps():
    """A Pods policy of +2 per 60 s: two steps inside one minute share the 2 pods."""
    up = HPAScalingRules(policies=(HPAScalingPolicy("Pods", 2, 60),))
    spec = HPASpec(max_replicas=50, metrics=(CPU,), behavior=HPABehavior(scale_up=up))
    controller = HorizontalPodAutoscaler(spec)
    assert controller.reconcile(0.0, 4, cpu(4, 300)).desired == 6
    assert controller.reconcile(30.0, 6, cpu(6, 300)).desired == 6
    assert controller.reconcile(60.0, 6, cpu(6, 300)).desired == 8


def test_select_policy_min_and_disabled():
    """Min takes the smaller change; Disabled forbids the direction."""
    policies = (HPAScalingPolicy("Pods", 4, 60), HPAScalingPolicy("Percent", 10, 60))
    for select, expected in (("Max", 72), ("Min", 76), ("Disabled", 80)):
        down = HPAScalingRules(stabilization_window_seconds=0, select_policy=select,
                               policies=policies)  # fmt: skip
        spec = HPASpec(max_replicas=100, metrics=(CPU,), behavior=HPABehavior(scale_down=down))
        decision = HorizontalPodAutoscaler(spec).reconcile(0.0, 80, cpu(80, 10))
        assert decision.desired == expected, select
    # under 40 pods, 4 pods is the larger change
    down = HPAScalingRules(stabilization_window_seconds=0, policies=policies)
    spec = HPASpec(max_replicas=100, metrics=(CPU,), behavior=HPABehavior(scale_down=down))
    assert HorizontalPodAutoscaler(spec).reconcile(0.0, 30, cpu(30, 10)).desired == 26


def test_percent_scale_up_rounds_up():
    """+10 % of 10 pods allows 11; of 3 pods, 3.3 rounds UP to 4, else a small deployment
    could never grow under a percent policy."""
    up = HPAScalingRules(policies=(HPAScalingPolicy("Percent", 10, 60),))
    spec = HPASpec(max_replicas=100, metrics=(CPU,), behavior=HPABehavior(scale_up=up))
    assert HorizontalPodAutoscaler(spec).reconcile(0.0, 10, cpu(10, 500)).desired == 11
    assert HorizontalPodAutoscaler(spec).reconcile(0.0, 3, cpu(3, 500)).desired == 4
    assert HorizontalPodAutoscaler(spec).reconcile(0.0, 1, cpu(1, 500)).desired == 2


def test_out_of_range_counts_and_failed_metrics():
    """Outside [min, max] the controller moves to the bound whatever the metrics; with every
    metric failing, or one failing while the others want fewer pods, it does nothing."""
    spec = HPASpec(max_replicas=10, min_replicas=2, metrics=(CPU, RPS))
    controller = HorizontalPodAutoscaler(spec)
    assert controller.reconcile(0.0, 12, {}).desired == 10
    assert controller.reconcile(15.0, 1, {}).desired == 2
    assert controller.reconcile(30.0, 0, {}).reason == "ScalingDisabled"
    nothing = controller.reconcile(45.0, 4, {})
    assert (nothing.desired, nothing.reason) == (4, "FailedGetMetrics")
    fewer = controller.reconcile(60.0, 4, {RPS.name: [PodMetric(5.0)] * 4})
    assert (fewer.desired, fewer.reason) == (4, "FailedGetMetrics")
    more = controller.reconcile(75.0, 4, {RPS.name: [PodMetric(80.0)] * 4})
    assert more.desired == 8 and more.metric == RPS.name
    with pytest.raises(ValueError, match="back"):
        controller.reconcile(10.0, 4, {})


def test_spec_from_the_design_manifest():
    """An autoscaling/v2 manifest (the design's: CPU 70 %, 40 requests/s, 2-10, 300 s down
    window) becomes the same HPASpec as `design_spec()`."""
    manifest = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "flight-delay"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {
                    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Pods", "pods": {
                    "metric": {"name": trace.REQUESTS_METRIC},
                    "target": {"type": "AverageValue", "averageValue": "40"}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }  # fmt: skip
    spec = HPASpec.from_manifest(manifest)
    assert spec == replay.design_spec()
    up, down = spec.behavior.resolved()
    assert down.stabilization_window_seconds == 300 and down.select_policy == "Max"
    assert up == dataclasses.replace(hpa.DEFAULT_SCALE_UP, tolerance=hpa.DEFAULT_TOLERANCE)
    assert spec.tolerances == hpa.Tolerances(0.1, 0.1)
    assert hpa.parse_quantity("500m") == 0.5 and hpa.parse_quantity("2k") == 2000
    bad = {**manifest, "spec": {**manifest["spec"], "metrics": [{"type": "External"}]}}
    with pytest.raises(ValueError, match="External"):
        HPASpec.from_manifest(bad)


def _design_manifest(behavior: dict) -> dict:
    """A CPU-only autoscaling/v2 HPA with the given `behavior`."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "spec": {
            "maxReplicas": 20,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 100}}}],
            "behavior": behavior,
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("behavior", "where", "key"),
    [
        ({"scaleUp": {"tolerence": 0.05}}, "spec.behavior.scaleUp", "tolerence"),
        ({"scaleup": {"stabilizationWindowSeconds": 0}}, "spec.behavior", "scaleup"),
        ({"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60,
                                      "limit": 3}]}}, "spec.behavior.scaleDown.policies[0]",
         "limit"),
    ],
)  # fmt: skip
def test_manifest_fields_the_model_does_not_know_are_refused(behavior, where, key):
    """A behavior field that would be silently ignored (a typo, a newer API field) is refused
    with its place and name, so a replay never runs a different HPA than the manifest."""
    with pytest.raises(ValueError, match=rf"{re.escape(where)}: unknown .*field '{key}'"):
        HPASpec.from_manifest(_design_manifest(behavior))
    manifest = _design_manifest({})
    manifest["spec"]["metrics"][0]["resource"]["target"]["averageValue"] = "1"
    with pytest.raises(ValueError, match=r"spec.metrics\[0\].resource.target: .*'averageValue'"):
        HPASpec.from_manifest(manifest)
    manifest = _design_manifest({})
    manifest["spec"]["scaleTargetRefs"] = {}
    with pytest.raises(ValueError, match="spec: unknown .*'scaleTargetRefs'"):
        HPASpec.from_manifest(manifest)
    missing = _design_manifest({"scaleDown": {"policies": [{"type": "Pods", "value": 1}]}})
    with pytest.raises(ValueError, match="missing field 'periodSeconds'"):
        HPASpec.from_manifest(missing)
    wrong = _design_manifest({"scaleDown": {"policies": [{"type": "Pod", "value": 1,
                                                          "periodSeconds": 60}]}})  # fmt: skip
    with pytest.raises(ValueError, match=r"scaleDown.policies\[0\]: .*type must be one of"):
        HPASpec.from_manifest(wrong)


def test_tolerance_per_direction_from_the_manifest():
    """behavior.scaleUp/scaleDown.tolerance (Kubernetes 1.33+) replace the cluster's 10 % for
    their direction: with 0.02 up and 0.3 down, 10 pods at 105 % grow to 11 (inside the
    default band, they would stay) and at 75 % stay at 10 (outside it, they would shrink)."""
    spec = HPASpec.from_manifest(
        _design_manifest({"scaleUp": {"tolerance": "20m"}, "scaleDown": {"tolerance": 0.3,
                          "stabilizationWindowSeconds": 0}})
    )  # fmt: skip
    assert spec.tolerances == hpa.Tolerances(scale_down=0.3, scale_up=0.02)
    assert HorizontalPodAutoscaler(spec).reconcile(0.0, 10, cpu(10, 105)).desired == 11
    assert HorizontalPodAutoscaler(spec).reconcile(0.0, 10, cpu(10, 75)).desired == 10
    assert HorizontalPodAutoscaler(spec).reconcile(0.0, 10, cpu(10, 69)).desired == 7
    default = HPASpec.from_manifest(
        _design_manifest({"scaleDown": {"stabilizationWindowSeconds": 0}})
    )
    assert HorizontalPodAutoscaler(default).reconcile(0.0, 10, cpu(10, 105)).desired == 10
    assert HorizontalPodAutoscaler(default).reconcile(0.0, 10, cpu(10, 75)).desired == 8
    # only one direction set: the other keeps the cluster flag (HPASpec.tolerance)
    one = HPASpec.from_manifest(_design_manifest({"scaleUp": {"tolerance": 0}}), tolerance=0.2)
    assert one.tolerances == hpa.Tolerances(scale_down=0.2, scale_up=0.0)
    with pytest.raises(ValueError, match="spec.behavior.scaleUp: .*tolerance must be .* >= 0"):
        HPASpec.from_manifest(_design_manifest({"scaleUp": {"tolerance": "-0.1"}}))


def test_per_direction_tolerance_with_missing_pods():
    """The recomputed ratio (missing pods filled in) is checked against its direction's
    tolerance: 3 pods at 200 % and a silent one give 150 % (ratio 1.5), so an up-tolerance of
    0.4 scales 4 pods to 6, one of 0.6 keeps 4, and the down-tolerance plays no part."""
    samples = [PodMetric(200.0)] * 3 + [PodMetric(None)]
    assert hpa.replicas_for_metric(CPU, 4, samples, hpa.Tolerances(0.1, 0.4)) == 6
    assert hpa.replicas_for_metric(CPU, 4, samples, hpa.Tolerances(0.1, 0.6)) == 4
    assert hpa.replicas_for_metric(CPU, 4, samples, hpa.Tolerances(0.9, 0.1)) == 6


# --- invariants on random inputs --------------------------------------------------------------


def _random_run(seed: int, spec: HPASpec, steps: int = 300):
    """Drive a controller with random per-pod CPU samples; return its decisions."""
    rng = np.random.default_rng(seed)
    controller = HorizontalPodAutoscaler(spec)
    current = int(rng.integers(spec.min_replicas, spec.max_replicas + 1))
    decisions = []
    level = rng.uniform(10, 300)
    for k in range(steps):
        level = float(np.clip(level * rng.lognormal(0, 0.25), 1, 2000))
        n_missing = int(rng.integers(0, 2)) if current > 1 else 0
        pods = [PodMetric(level * rng.uniform(0.8, 1.2)) for _ in range(current - n_missing)]
        pods += [PodMetric(None)] * n_missing
        decision = controller.reconcile(15.0 * k, current, {"cpu": pods})
        decisions.append(decision)
        current = decision.desired
    return decisions


def test_random_runs_stay_within_min_and_max():
    """Whatever the load, a controller started within [min, max] never leaves it."""
    for seed in range(20):
        spec = HPASpec(max_replicas=12, min_replicas=3, metrics=(CPU,))
        for d in _random_run(seed, spec):
            assert 3 <= d.desired <= 12, (seed, d)


def test_random_runs_never_exceed_the_policies():
    """+2 pods per 60 s up and -50 % per 30 s down, checked against the counts at the start of
    each period (the count after the last reconcile at or before t - period)."""
    up = HPAScalingRules(policies=(HPAScalingPolicy("Pods", 2, 60),))
    down = HPAScalingRules(
        stabilization_window_seconds=0, policies=(HPAScalingPolicy("Percent", 50, 30),)
    )
    spec = HPASpec(max_replicas=40, metrics=(CPU,), behavior=HPABehavior(up, down))
    for seed in range(20):
        decisions = _random_run(seed, spec)
        times = np.array([d.timestamp for d in decisions])
        counts_after = np.array([d.desired for d in decisions])

        def count_at(t: float, decisions=decisions, times=times, counts_after=counts_after):
            done = np.flatnonzero(times <= t)
            return counts_after[done[-1]] if done.size else decisions[0].current

        for d in decisions:
            if d.desired > d.current:
                assert d.desired <= max(d.current, count_at(d.timestamp - 60) + 2), (seed, d)
            if d.desired < d.current:
                start = count_at(d.timestamp - 30)
                assert d.desired >= min(d.current, int(start * 0.5)), (seed, d)


def test_random_runs_never_scale_down_below_the_last_300_s():
    """With the default window a scale-down never goes below any proposal of the last 300 s,
    so no pod is removed within 300 s of a higher recommendation."""
    spec = HPASpec(max_replicas=30, metrics=(CPU,))
    for seed in range(20):
        decisions = _random_run(seed, spec)
        for d in decisions:
            if d.desired < d.current:
                recent = [
                    e.proposed
                    for e in decisions
                    if d.timestamp - 300 < e.timestamp <= d.timestamp and e.proposed is not None
                ]
                assert d.desired >= max(recent), (seed, d)


# --- traces -----------------------------------------------------------------------------------


def test_one_request_per_flight_two_hours_ahead():
    """With one client and no re-scoring each flight is one request at sched_dep - 2 h: the
    trace equals a histogram of those times."""
    start, end = trace.day_bounds("2013-06-14")
    fan_out = trace.FanOut(clients=1, rescore_every_s=7200)
    load = trace.schedule_trace(start, end, fan_out)
    flights = data.flights(start, end + pd.Timedelta(hours=2))
    sent = flights["sched_dep"] - pd.Timedelta(hours=2)
    sent = sent[(sent >= start) & (sent < end)]
    expected = np.bincount(
        ((sent - start) / pd.Timedelta(seconds=15)).astype(int), minlength=len(load.rps)
    )
    np.testing.assert_array_equal(load.rps * 15, expected)
    assert load.requests == len(sent) > 800


def test_fan_out_matches_flights_in_their_window():
    """Default fan-out (100 clients every 60 s, phases 0.6 s apart): each 15 s bucket holds
    exactly 25 requests per flight whose 2 h window covers it; the day totals 12,000 requests
    per flight."""
    start, end = trace.day_bounds(trace.busiest_day())
    assert start == pd.Timestamp("2013-11-27 05:00", tz="UTC")
    load = trace.schedule_trace(start, end)
    flights = data.flights(start, end)
    assert len(flights) == 1014
    assert load.requests == 1014 * 12_000
    edges = start + pd.to_timedelta(np.arange(len(load.rps) + 1) * 15, unit="s")
    open_at = (flights["sched_dep"] - pd.Timedelta(hours=2)).to_numpy()
    close_at = flights["sched_dep"].to_numpy()
    lo, hi = edges[:-1].to_numpy(), edges[1:].to_numpy()
    active = ((open_at[None, :] <= lo[:, None]) & (close_at[None, :] >= hi[:, None])).sum(axis=1)
    np.testing.assert_allclose(load.rps, active * 100 / 60)
    assert load.rps.max() == pytest.approx(158 * 100 / 60)


def test_fan_out_counts_are_exact_for_odd_times():
    """Flights at odd seconds, 7 clients every 45 s: counts equal every request time listed."""
    start = pd.Timestamp("2013-01-01", tz="UTC")
    sched = start + pd.to_timedelta([7200.4, 7261.0, 9000.0, 13_333.3, 20_000.0], unit="s")
    flights = pd.DataFrame({"sched_dep": sched})
    fan_out = trace.FanOut(clients=7, rescore_every_s=45, lead=pd.Timedelta(hours=2))
    load = trace.schedule_trace(start, start + pd.Timedelta(hours=5), fan_out, flights=flights)
    n = fan_out.requests_per_flight
    assert n == 7 * 160
    sent = np.concatenate(
        [(s - start).total_seconds() - 7200 + np.arange(n) * 45 / 7 for s in sched]
    )
    expected, _ = np.histogram(sent, bins=np.arange(0, 5 * 3600 + 1, 15))
    np.testing.assert_array_equal(np.rint(load.rps * 15), expected)


def test_trace_checks_and_resampling():
    """Bad bounds and steps are refused; resampling keeps every request."""
    start = pd.Timestamp("2013-01-01", tz="UTC")
    flights = pd.DataFrame({"sched_dep": [start + pd.Timedelta(hours=3)]})
    with pytest.raises(ValueError, match="after"):
        trace.schedule_trace(start, start, flights=flights)
    with pytest.raises(ValueError, match="whole number"):
        trace.schedule_trace(start, start + pd.Timedelta(seconds=20), flights=flights)
    with pytest.raises(ValueError, match="clients"):
        trace.FanOut(clients=0)
    load = trace.schedule_trace(start, start + pd.Timedelta(hours=4), flights=flights)
    assert load.resample(60).requests == pytest.approx(load.requests)
    assert len(load.resample(60).rps) == 240
    first, last = trace.day_bounds("2013-03-10")  # spring forward: a 23-hour day
    assert last - first == pd.Timedelta(hours=23)


def _write_sample(path, rates=(0, 10, 25, 50, 100, 50, 10), per_level=20, dt=1.0):
    """A measured-trace file as the benchmark would write it: CPU = 0.05 + 0.008 x rps cores."""
    samples = []
    for i, rate in enumerate(np.repeat(rates, per_level)):
        samples.append(
            {"t": (i + 1) * dt, "rps": float(rate), "cpu_seconds": (0.05 + 0.008 * rate) * dt}
        )
    doc = {
        "format": trace.TRACE_FORMAT,
        "cpu_request_cores": 0.5,
        "cpu_limit_cores": 1.0,
        "meta": {"command": "python -m mlops_pipeline.serving --port 8080"},
        "samples": samples,
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_measured_trace_round_trip_and_capacity(tmp_path):
    """The documented file is read, the CPU cost per request and the idle CPU are recovered,
    and capacity turns a per-pod rate into the HPA's two metrics."""
    measured = trace.MeasuredTrace.from_json(_write_sample(tmp_path / "trace.json"))
    per_request, idle = measured.fit()
    assert per_request == pytest.approx(0.008) and idle == pytest.approx(0.05)
    capacity = measured.capacity()
    assert capacity.capacity_rps == pytest.approx((1.0 - 0.05) / 0.008)
    assert capacity.cpu_utilisation(40.0) == pytest.approx((0.05 + 0.32) / 0.5 * 100)
    assert capacity.served_rps(500.0) == pytest.approx(capacity.capacity_rps)
    assert capacity.cpu_utilisation(500.0) == pytest.approx(200.0)  # the 1-core limit
    assert capacity.rps_at_utilisation(70) == pytest.approx((0.35 - 0.05) / 0.008)
    again = trace.MeasuredTrace.from_json(measured.to_json(tmp_path / "copy.json"))
    np.testing.assert_array_equal(again.cpu_seconds, measured.cpu_seconds)
    load = measured.load_trace(step_s=15)
    assert len(load.rps) == 9  # 140 s of samples: nine whole 15 s buckets
    assert load.rps[0] == 0.0  # seconds 0-15: the idle level
    assert load.rps[2] == pytest.approx((10 * 10 + 5 * 25) / 15)  # 30-40 s at 10, 40-45 s at 25


def test_measured_trace_from_a_benchmark_report(tmp_path):
    """from_json also reads the benchmark's report, where the trace is serving.load_trace;
    from_dict takes the parsed document; a report without the trace says what is missing."""
    document = json.loads(_write_sample(tmp_path / "trace.json").read_text())
    report = {"machine": {"cpus": 2}, "serving": {"p99_s": 0.01, "load_trace": document}}
    path = tmp_path / "mlops_pipeline.json"
    path.write_text(json.dumps(report), encoding="utf-8")
    from_report = trace.MeasuredTrace.from_json(path)
    from_dict = trace.MeasuredTrace.from_dict(document, source="in memory")
    assert from_report.fit() == pytest.approx((0.008, 0.05))
    np.testing.assert_array_equal(from_report.rps, from_dict.rps)
    assert from_dict.to_dict() == from_report.to_dict()
    assert from_report.cpu_request_cores == 0.5

    broken = {**report, "serving": {"load_trace": {**document, "samples": [{"t": 1}]}}}
    path.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ValueError, match=r"mlops_pipeline.json \(serving.load_trace\): .*rps"):
        trace.MeasuredTrace.from_json(path)
    path.write_text(json.dumps({"machine": {}, "serving": {"p99_s": 0.01}}), encoding="utf-8")
    with pytest.raises(ValueError, match="serving.*without 'load_trace'"):
        trace.MeasuredTrace.from_json(path)
    path.write_text(json.dumps({"machine": {}, "cdc": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"nor a benchmark report.*\['cdc', 'machine'\]"):
        trace.MeasuredTrace.from_json(path)
    with pytest.raises(ValueError, match="in memory: .*number"):
        trace.MeasuredTrace.from_dict({**document, "max_rps_at_slo": "fast"}, source="in memory")
    with pytest.raises(ValueError, match="load trace: .*format"):
        trace.MeasuredTrace.from_dict({"samples": document["samples"]})


def test_measured_trace_errors_name_the_file(tmp_path):
    """A wrong format, a missing field or time going back is refused with the file's name."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "other", "samples": []}))
    with pytest.raises(ValueError, match="bad.json.*format"):
        trace.MeasuredTrace.from_json(path)
    path.write_text(json.dumps({"format": trace.TRACE_FORMAT, "samples": [{"t": 1, "rps": 2}]}))
    with pytest.raises(ValueError, match="cpu_seconds"):
        trace.MeasuredTrace.from_json(path)
    samples = [{"t": 2, "rps": 1, "cpu_seconds": 0.1}, {"t": 1, "rps": 1, "cpu_seconds": 0.1}]
    path.write_text(json.dumps({"format": trace.TRACE_FORMAT, "samples": samples}))
    with pytest.raises(ValueError, match="bad.json.*increasing"):
        trace.MeasuredTrace.from_json(path)


# --- replays ----------------------------------------------------------------------------------


def _step_trace(before_s=600, high_s=1800, after_s=1800, rps=300.0):
    """0 requests/s, then `rps`, then 0 again, in 15 s buckets."""
    levels = np.concatenate(
        [np.zeros(before_s // 15), np.full(high_s // 15, rps), np.zeros(after_s // 15)]
    )
    return trace.LoadTrace("2013-01-01", 15.0, levels, "step")


def test_replay_of_a_step_follows_lag_startup_and_window():
    """A jump to 300 requests/s on 2 pods of 100 requests/s: the HPA sees it a scrape lag (30 s)
    later, averaged over 60 s, so it first scales when half its window is saturated (45 s after
    the jump, CPU seen at 100 % > 77 %); new pods serve 60 s after that; the overload
    lasts at least until then; after the drop no pod goes for 300 s, then they go within 100 s."""
    load = _step_trace()
    spec = replay.design_spec(rps_target=None)
    config = replay.ReplayConfig(scrape_lag_s=30, metric_window_s=60, pod_startup_s=60)
    frame = replay.replay(load, spec, trace.ASSUMED_CAPACITY, config)
    ups = frame.loc[frame["desired"] > frame["replicas"], "t"]
    assert ups.iloc[0] == 600 + 45
    assert frame.loc[frame["t"] == 630, "seen_cpu_pct"].item() == pytest.approx(50.0)
    first_ready = frame.loc[frame["ready"] > 2, "t"].iloc[0]
    assert first_ready == 645 + 60  # created by the reconcile at 645 s, ready 60 s later
    summary = replay.replay_summary(frame)
    assert summary["overload_seconds"] >= first_ready - 600
    assert summary["overload_requests"] > 0
    downs = frame.loc[frame["desired"] < frame["replicas"], "t"]
    assert downs.iloc[0] >= 600 + 1800 + 300 and downs.iloc[-1] <= 600 + 1800 + 400
    assert frame["replicas"].iloc[-1] == 2
    assert frame["replicas"].between(2, 10).all()
    assert summary["flaps"] == 0

    quick = replay.replay(load, replay.design_spec(rps_target=None, scale_down_window_s=0),
                          trace.ASSUMED_CAPACITY, config)  # fmt: skip
    quick_downs = quick.loc[quick["desired"] < quick["replicas"], "t"]
    assert quick_downs.iloc[0] < 600 + 1800 + 120
    assert replay.replay_summary(quick)["pod_hours"] < summary["pod_hours"]


def test_static_baseline_costs_max_pods_and_never_overloads():
    """Ten pods all day: 10 pod-hours per hour, no overload, no scale events."""
    load = _step_trace()
    summary = replay.replay_summary(replay.replay_static(load, 10))
    assert summary["pod_hours"] == pytest.approx(10 * load.duration_s / 3600)
    assert summary["overload_seconds"] == 0 and summary["scale_events"] == 0
    small = replay.replay_summary(replay.replay_static(load, 2))
    assert small["overload_seconds"] == 1800
    assert small["overload_requests"] == pytest.approx(100 * 1800)


def test_replay_of_a_real_day():
    """The busiest day of 2013 through the design's HPA: within 2-10 pods, following the
    morning peak up, at most one direction change per 10 minutes kept by the 300 s window,
    and less than half the cost of ten static pods."""
    start, end = trace.day_bounds("2013-11-27")
    load = trace.schedule_trace(start, end)
    frame = replay.replay(load, replay.design_spec())
    summary = replay.replay_summary(frame)
    assert summary["requests"] == load.requests
    assert frame["replicas"].between(2, 10).all()
    peak = frame.loc[frame["load_rps"].idxmax()]
    assert peak["replicas"] >= math.ceil(peak["load_rps"] / 40)
    night = frame["time"].dt.tz_convert(data.LOCAL_TZ).dt.hour < 3
    assert (frame.loc[night, "replicas"] == 2).all()
    assert summary["scale_events"] == summary["scale_ups"] + summary["scale_downs"] > 4
    assert 2 * 24 < summary["pod_hours"] < 0.5 * 10 * 24
    no_window = replay.replay_summary(
        replay.replay(load, replay.design_spec(scale_down_window_s=0))
    )
    assert no_window["flaps"] >= summary["flaps"]
    assert no_window["pod_hours"] <= summary["pod_hours"]


def test_policy_comparison_table():
    """The comparison has one row per policy and the static row costs the most."""
    start = pd.Timestamp("2013-11-27 09:00", tz="UTC")
    load = trace.schedule_trace(start, start + pd.Timedelta(hours=6))
    table = replay.policy_comparison(load)
    assert list(table.index) == [
        "cpu, no window", "cpu, 300 s window", "rps, no window", "rps, 300 s window",
        "cpu+rps, 300 s window", "static 10",
    ]  # fmt: skip
    assert table["pod_hours"].idxmax() == "static 10"
    assert (table["requests"] == load.requests).all()


def _slow_down_spec() -> HPASpec:
    """The design's metrics, 2-8 pods, a 120 s window and at most 1 pod removed per 120 s."""
    down = HPAScalingRules(
        stabilization_window_seconds=120,
        select_policy="Min",
        policies=(HPAScalingPolicy("Pods", 1, 120), HPAScalingPolicy("Percent", 50, 60)),
    )
    up = HPAScalingRules(policies=(HPAScalingPolicy("Pods", 2, 30),))
    return dataclasses.replace(
        replay.design_spec(max_replicas=8),
        behavior=HPABehavior(scale_up=up, scale_down=down),
        tolerance=0.05,
    )


def test_policy_variants_keep_the_base_policies():
    """Every variant keeps the base's bounds, tolerance and scaling policies and changes only
    its metrics and scale-down window; the all-metrics row is the base itself."""
    base = _slow_down_spec()
    variants = replay.policy_variants(base)
    assert list(variants) == [
        "cpu, no window", "cpu, 120 s window", "rps, no window", "rps, 120 s window",
        "cpu+rps, 120 s window",
    ]  # fmt: skip
    for name, spec in variants.items():
        up, down = spec.behavior.resolved()
        assert up == dataclasses.replace(base.behavior.scale_up, stabilization_window_seconds=0,
                                         select_policy="Max", tolerance=0.1), name  # fmt: skip
        assert (down.select_policy, down.policies) == ("Min", base.behavior.scale_down.policies)
        assert down.stabilization_window_seconds == (0 if "no window" in name else 120), name
        assert (spec.min_replicas, spec.max_replicas, spec.tolerance) == (2, 8, 0.05)
    assert [m.name for m in variants["rps, no window"].metrics] == [trace.REQUESTS_METRIC]
    assert variants["cpu+rps, 120 s window"] == base
    # a base without a window of its own is compared with the controller's 300 s
    no_window = replay.with_scale_down_window(base, 0)
    assert "cpu, 300 s window" in replay.policy_variants(no_window)
    assert list(replay.policy_variants(replay.with_metrics(base, ["cpu"]))) == [
        "cpu, no window", "cpu, 120 s window",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="memory"):
        replay.with_metrics(base, ["memory"])


def test_policy_comparison_replays_the_given_base():
    """policy_comparison(base=...) replays the base's own policies: after a step down, a
    scale-down of 1 pod per 120 s keeps more pods longer than the API default (-100 % per
    15 s), and its all-metrics row is exactly a replay of the base."""
    load = _step_trace(before_s=300, high_s=1200, after_s=1800, rps=500.0)
    base = _slow_down_spec()
    table = replay.policy_comparison(load, base=base)
    assert list(table.index)[-1] == "static 8"
    assert table.loc["cpu+rps, 120 s window"].to_dict() == replay.replay_summary(
        replay.replay(load, base)
    )
    api_defaults = replay.policy_comparison(load, base=replay.design_spec(max_replicas=8))
    assert "cpu, 300 s window" in api_defaults.index
    slow, fast = table.loc["cpu, no window"], api_defaults.loc["cpu, no window"]
    assert slow["max_replicas"] == fast["max_replicas"] == 8
    assert slow["scale_downs"] >= 6 > fast["scale_downs"]
    assert slow["pod_hours"] > fast["pod_hours"]


def test_replay_names_the_deciding_metric():
    """With the assumed capacity CPU reaches 70 % at 35 requests/s, before the 40 requests/s
    target: on a steady day the request rate never asks for more pods than CPU, so every
    reconcile that had metrics was decided by CPU."""
    assert trace.ASSUMED_CAPACITY.rps_at_utilisation(70) == pytest.approx(35.0)
    start = pd.Timestamp("2013-11-27 09:00", tz="UTC")
    load = trace.schedule_trace(start, start + pd.Timedelta(hours=3))
    frame = replay.replay(load, replay.design_spec())
    used = frame.loc[frame["proposed"] >= 0, "metric"]
    assert len(used) > 600 and set(used) == {"cpu"}
    assert set(frame.loc[frame["proposed"] < 0, "metric"]) <= {""}
    cheap = trace.ServiceCapacity(cpu_seconds_per_request=0.005)  # 70 % CPU at 70 requests/s
    rps_frame = replay.replay(load, replay.design_spec(), cheap)
    assert (rps_frame["metric"] == trace.REQUESTS_METRIC).mean() > 0.5


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_deployed_prod_hpa_replays():
    """The prod overlay, rendered by `kubectl kustomize`, is an HPA the model reads in full
    (no field refused) with the deployed policies, and its pods request the CPU the assumed
    capacity is a percentage of."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / "prod")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    [manifest] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    deployed = HPASpec.from_manifest(manifest)
    assert (deployed.min_replicas, deployed.max_replicas) == (2, 10)
    assert {m.name for m in deployed.metrics} == {"cpu", trace.REQUESTS_METRIC}
    _, down = deployed.behavior.resolved()
    assert down.select_policy == "Min" and down.stabilization_window_seconds == 300
    variants = replay.policy_variants(deployed)
    assert variants["cpu+rps, 300 s window"] == replay.with_scale_down_window(deployed, 300)
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    request = hpa.parse_quantity(container["resources"]["requests"]["cpu"])
    assert request == trace.ASSUMED_CAPACITY.cpu_request_cores
