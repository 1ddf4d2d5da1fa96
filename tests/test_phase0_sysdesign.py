"""Unit tests for the parts of the Phase 0 sysdesign lab that learners do not write.

Input validation, dataclasses and the simulation helpers live outside the solution regions, so
the scaffold keeps them; they are tested here, against the reference. The graded behaviour is
in checkpoints/phase0.
"""

from __future__ import annotations

import importlib
import math
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

PHASE0 = Path(__file__).resolve().parents[1] / "phases" / "phase0"
if str(PHASE0) not in sys.path:
    sys.path.insert(0, str(PHASE0))

from sysdesign import _checks, capacity, cost, latency, slo  # noqa: E402

INF = math.inf


# --- package layout -------------------------------------------------------------------------


def test_package_init_imports_no_submodule():
    """A broken slo.py must not break the latency checkpoints: __init__ stays import-free."""
    pkg = importlib.import_module("sysdesign")
    source = Path(pkg.__file__).read_text()
    assert "import" not in source.split('"""')[-1]


# --- shared checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [(3.0, 3), (3.0000000000000004, 3), (2.9999999999, 3), (3.01, 4), (0.0, 0), (0.2, 1)],
)
def test_ceil_tolerant(x, expected):
    assert _checks.ceil_tolerant(x) == expected


@pytest.mark.parametrize("bad", [0, -1, 2.5, "x", None, True, math.inf])
def test_require_positive_int_rejects(bad):
    with pytest.raises(ValueError, match="positive integer"):
        _checks.require_positive_int("servers", bad)


def test_require_positive_int_accepts_whole_floats():
    assert _checks.require_positive_int("servers", 4.0) == 4


# --- latency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "q", "message"),
    [
        ([], 50, "empty"),
        (np.array([]), 50, "empty"),
        ([1.0, math.nan], 50, "NaN"),
        ([1.0, math.inf], 50, "infinite"),
        ([[1.0, 2.0]], 50, "one-dimensional"),
        ([1.0, 2.0], -0.1, r"\[0, 100\]"),
        ([1.0, 2.0], 100.5, r"\[0, 100\]"),
        ([1.0, 2.0], math.nan, "NaN"),
        ([1.0, 2.0], "p99", "number"),
    ],
)
def test_percentile_validation(samples, q, message):
    with pytest.raises(ValueError, match=message):
        latency.percentile(samples, q)


@pytest.mark.parametrize("samples", [[], [math.nan]])
def test_summarize_validation(samples):
    with pytest.raises(ValueError):
        latency.summarize(samples)


def test_latency_summary_helpers():
    s = latency.LatencySummary(
        count=3, mean=0.02, p50=0.01, p90=0.05, p95=0.06, p99=0.1, p999=0.2, max=0.3
    )
    assert s.tail_ratio == pytest.approx(10.0)
    ms = s.scaled(1000)
    assert ms.p99 == pytest.approx(100.0) and ms.count == 3
    with pytest.raises(AttributeError):
        s.p50 = 1.0  # frozen: a summary is a measurement, not a scratchpad
    zero = latency.LatencySummary(1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert zero.tail_ratio == math.inf


def test_simulate_latencies_is_seeded_and_has_a_tail():
    a = latency.simulate_latencies(5000, seed=3)
    b = latency.simulate_latencies(5000, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5000,) and (a > 0).all()
    assert np.percentile(a, 99) > 4 * np.median(a)
    assert latency.simulate_latencies(0).size == 0
    with pytest.raises(ValueError):
        latency.simulate_latencies(10, slow_fraction=1.5)


def test_bucket_counts_are_cumulative_and_inclusive():
    counts = latency.bucket_counts([0.1, 0.2, 0.2, 0.7, 3.0], [0.2, 0.5, 1.0, INF])
    np.testing.assert_array_equal(counts, [3, 3, 4, 5])  # le="0.2" includes 0.2 itself
    assert latency.bucket_counts([], [1.0, INF]).tolist() == [0, 0]


@pytest.mark.parametrize(
    ("q", "bounds", "counts", "kwargs", "message"),
    [
        (1.5, [1, INF], [1, 2], {}, r"\[0, 1\]"),
        (-0.1, [1, INF], [1, 2], {}, r"\[0, 1\]"),
        (math.nan, [1, INF], [1, 2], {}, "NaN"),
        (0.5, [1, 2], [1, 2], {}, r"\+Inf"),
        (0.5, [INF], [2], {}, "at least one finite"),
        (0.5, [2, 1, INF], [1, 2, 3], {}, "strictly increasing"),
        (0.5, [1, 1, INF], [1, 2, 3], {}, "strictly increasing"),
        (0.5, [1, INF, INF], [1, 2, 3], {}, "only the last"),
        (0.5, [1, 2, INF], [1, 2], {}, "one entry per bound"),
        (0.5, [1, 2, INF], [3, 2, 4], {}, "must not decrease"),
        (0.5, [1, 2, INF], [1, -1, 4], {"cumulative": False}, ">= 0"),
        (0.5, [1, 2, INF], [0, 0, 0], {}, "no observations"),
        (0.5, [1, 2, INF], [1, math.nan, 2], {}, "finite"),
    ],
)
def test_histogram_quantile_validation(q, bounds, counts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        latency.histogram_quantile(q, bounds, counts, **kwargs)


def test_histogram_quantile_q0_with_empty_first_bucket_is_not_nan():
    # Prometheus computes 0/0 here; the lab returns the first bucket's lower bound
    assert latency.histogram_quantile(0.0, [1, 2, INF], [0, 5, 5]) == 0.0


def test_default_buckets_end_with_inf():
    assert latency.DEFAULT_BUCKETS[-1] == INF
    assert list(latency.DEFAULT_BUCKETS) == sorted(latency.DEFAULT_BUCKETS)


# --- capacity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: capacity.concurrency(-1, 0.1), "arrival_rate"),
        (lambda: capacity.concurrency(1, math.nan), "latency_s"),
        (lambda: capacity.throughput(4, 0), "latency_s"),
        (lambda: capacity.replicas_needed(10, 0.1, 0, 0.5), "per_replica_concurrency"),
        (lambda: capacity.replicas_needed(10, 0.1, 2, 0), "target_utilization"),
        (lambda: capacity.replicas_needed(10, 0.1, 2, 1.2), "target_utilization"),
        (lambda: capacity.replicas_needed(10, 0.1, 2, 0.5, min_replicas=-1), "min_replicas"),
        (lambda: capacity.erlang_b(1.0, 0), "servers"),
        (lambda: capacity.erlang_c_wait_probability(1.0, 0.0, 2), "service_rate"),
        (lambda: capacity.erlang_c_mean_wait(-1.0, 1.0, 2), "arrival_rate"),
        (lambda: capacity.erlang_c_wait_probability(1.0, 1.0, 2.5), "servers"),
        (lambda: capacity.servers_for_wait_probability(1.0, 1.0, 0.0), "max_wait_probability"),
        (lambda: capacity.simulate_mmc(1.0, 1.0, 1, customers=10, warmup=10), "warmup"),
    ],
)
def test_capacity_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_simulate_mmc_reproduces_erlang_c():
    sim = capacity.simulate_mmc(3.2, 1.0, 4, customers=40_000, seed=1)
    assert sim.customers == 39_000
    assert sim.utilization == pytest.approx(0.8, abs=0.03)
    assert sim.wait_probability == pytest.approx(
        capacity.erlang_c_wait_probability(3.2, 1.0, 4), abs=0.04
    )
    assert sim.mean_response_s == pytest.approx(sim.mean_wait_s + 1.0, abs=0.05)
    assert sim.p99_response_s > sim.mean_response_s


def test_simulate_mmc_heavy_tailed_service_keeps_the_mean():
    sim = capacity.simulate_mmc(0.5, 1.0, 1, customers=40_000, service_sigma=1.0, seed=2)
    assert sim.utilization == pytest.approx(0.5, abs=0.05)
    # M/G/1 (Pollaczek-Khinchine): heavier service tail, longer wait than M/M/1's 1.0 s
    assert sim.mean_wait_s > 1.2


# --- slo ------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", [0.0, 1.0, 1.5, -0.2, math.nan])
def test_slo_must_be_a_fraction_below_one(objective):
    with pytest.raises(ValueError, match="slo"):
        slo.error_budget(objective, 100)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: slo.error_budget(0.99, -1), "total_events"),
        (lambda: slo.allowed_downtime(0.99, 3600), "timedelta"),
        (lambda: slo.allowed_downtime(0.99, timedelta(0)), "positive"),
        (lambda: slo.burn_rate(5, 4, 0.99), "cannot exceed"),
        (lambda: slo.burn_rate(-1, 4, 0.99), "bad"),
        (lambda: slo.budget_remaining(1, 0, 0.99), "cannot exceed"),
        (lambda: slo.rolling_burn_rate([1, 2], [0], 5, 0.99), "same length"),
        (lambda: slo.rolling_burn_rate([1, -2], [0, 0], 5, 0.99), ">= 0"),
        (lambda: slo.rolling_burn_rate([1, math.nan], [0, 0], 5, 0.99), "finite"),
        (lambda: slo.rolling_burn_rate([[1]], [[0]], 5, 0.99), "one-dimensional"),
        (lambda: slo.rolling_burn_rate([1], [0], 0, 0.99), "window_min"),
    ],
)
def test_slo_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_default_policy_is_the_sre_workbook_table():
    policy = slo.default_policy()
    rows = [
        (a.name, a.severity, a.long_window_min, a.short_window_min, a.threshold) for a in policy
    ]
    assert rows == [
        ("page-1h", "page", 60, 5, 14.4),
        ("page-6h", "page", 360, 30, 6.0),
        ("ticket-3d", "ticket", 4320, 360, 1.0),
    ]
    consumed = [a.budget_consumed() for a in policy]
    assert consumed == pytest.approx([0.02, 0.05, 0.10])
    policy.pop()
    assert len(slo.default_policy()) == 3, "default_policy must return a fresh list"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"long_window_min": 5, "short_window_min": 60, "threshold": 2.0}, "must not be longer"),
        ({"long_window_min": 60, "short_window_min": 0, "threshold": 2.0}, "short_window_min"),
        ({"long_window_min": 60, "short_window_min": 5, "threshold": 0.0}, "threshold"),
    ],
)
def test_burn_rate_alert_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        slo.BurnRateAlert("x", "page", **kwargs)


def test_evaluate_alerts_rejects_duplicate_names():
    alert = slo.BurnRateAlert("x", "page", 60, 5, 2.0)
    with pytest.raises(ValueError, match="unique"):
        slo.evaluate_alerts([1.0], [0.0], 0.99, [alert, alert])


def test_first_firing():
    fires = {"a": np.array([False, False, True, True]), "b": np.zeros(4, dtype=bool)}
    assert slo.first_firing(fires) == {"a": 2, "b": None}


# --- cost -----------------------------------------------------------------------------------


def test_instance_type_validation_and_examples():
    with pytest.raises(ValueError, match="hourly_price"):
        cost.InstanceType("x", hourly_price=0, rps_at_slo=10)
    with pytest.raises(ValueError, match="rps_at_slo"):
        cost.InstanceType("x", hourly_price=1, rps_at_slo=-1)
    assert cost.GPU_EXAMPLE.rps_at_slo > cost.CPU_EXAMPLE.rps_at_slo
    assert "ASSUMPTION" in Path(cost.__file__).read_text()


def test_cost_comparison_properties():
    cpu = cost.InstanceType("cpu", 0.5, 10)
    gpu = cost.InstanceType("gpu", 2.0, 100)
    c = cost.CostComparison(load_rps=36.0, cpu=cpu, gpu=gpu, cpu_instances=4, gpu_instances=1)
    assert c.cpu_hourly == pytest.approx(2.0) and c.gpu_hourly == pytest.approx(2.0)
    assert c.cheaper == "tie"
    assert c.cpu_cost_per_1k == pytest.approx(2.0 / (36 * 3.6))
    idle = cost.CostComparison(load_rps=0.0, cpu=cpu, gpu=gpu, cpu_instances=1, gpu_instances=1)
    assert idle.gpu_cost_per_1k == math.inf and idle.cheaper == "cpu"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cost.cost_per_1k_requests(-1, 10, 0.5), "hourly_price"),
        (lambda: cost.cost_per_1k_requests(1, 0, 0.5), "requests_per_second_at_slo"),
        (lambda: cost.cost_per_1k_requests(1, 10, 0), "utilization"),
        (lambda: cost.instances_needed(-5, cost.CPU_EXAMPLE, 0.5), "load_rps"),
        (lambda: cost.compare_cpu_gpu(10, target_utilization=1.5), "target_utilization"),
        (lambda: cost.break_even_rps(max_rps=0), "max_rps"),
    ],
)
def test_cost_validation(call, message):
    with pytest.raises(ValueError, match=message):
        call()
