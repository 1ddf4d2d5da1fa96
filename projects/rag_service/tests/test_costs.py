"""The cost model: cost per 1,000 requests from tokens/s, fleets, break-even, savings."""

from __future__ import annotations

import numpy as np
import pytest

from rag_service.costs import (
    CPU_2VCPU,
    CPU_8VCPU,
    GPU_24GB,
    GPU_H100,
    Instance,
    break_even_rps,
    cost_curve,
    cost_per_1k_requests,
    instances_needed,
    requests_per_second,
    savings,
)


def test_requests_per_second():
    """50 tokens/s over 200-token answers is 0.25 req/s per stream; 4 streams serve 1 req/s."""
    assert requests_per_second(50, 200) == pytest.approx(0.25)
    assert requests_per_second(50, 200, concurrency=4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="concurrency"):
        requests_per_second(50, 200, concurrency=0)
    with pytest.raises(ValueError, match="tokens_per_request"):
        requests_per_second(50, 0)


def test_cost_per_1k_by_hand():
    """$0.36/h at 100 tokens/s and 250 tokens an answer: 1,440 answers an hour, $0.25 per 1,000."""
    assert cost_per_1k_requests(0.36, 100, 250) == pytest.approx(0.25)
    assert cost_per_1k_requests(0.36, 100, 250, utilization=0.5) == pytest.approx(0.5)
    assert cost_per_1k_requests(0.0, 100, 250) == 0.0
    for bad, match in (
        ((-1, 100, 250), "hourly_price"),
        ((1, 0, 250), "tokens_per_s"),
        ((1, 100, float("inf")), "tokens_per_request"),
        ((1, 100, 250, 0), "utilization"),
        ((1, 100, 250, 1.5), "utilization"),
        (("cheap", 100, 250), "hourly_price"),
    ):
        with pytest.raises(ValueError, match=match):
            cost_per_1k_requests(*bad)


def test_instances_are_whole_and_at_least_one():
    """ceil(load / (capacity * utilisation)) without buying an instance for float noise."""
    assert instances_needed(0, 10, 0.5) == 1
    assert instances_needed(5, 10, 0.5) == 1
    assert instances_needed(5.01, 10, 0.5) == 2
    assert instances_needed(49, 7, 0.7) == 10  # 7 * 0.7 = 4.8999999999999995 in floats


def test_break_even_matches_phase0_example():
    """CPU $0.35/h at 25 req/s, GPU $1/h at 400 req/s, 60 %: the third CPU ($1.05) loses at 30."""
    assert break_even_rps(CPU_8VCPU, GPU_24GB, 25, 400, 0.6) == pytest.approx(30.0)
    cpu = Instance("cpu", 1.0, "cpu")
    gpu = Instance("gpu", 2.5, "gpu")
    # the GPU wins on (200, 250] and loses again after: the first win is reported
    assert break_even_rps(cpu, gpu, 100, 250, 1.0, max_rps=2000) == pytest.approx(200.0)
    assert break_even_rps(cpu, Instance("g", 0.5, "gpu"), 100, 250, 1.0) == 0.0
    assert break_even_rps(cpu, Instance("g", 10, "gpu"), 100, 20, 1.0, max_rps=5000) is None


def test_cost_curve_agrees_with_break_even():
    """The GPU fleet costs at least as much up to the break-even load and less after it."""
    curve = cost_curve(CPU_8VCPU, GPU_24GB, 25, 400, 0.6, max_rps=100, points=1000)
    assert curve.load_rps.shape == (1000,) and curve.load_rps[-1] == pytest.approx(100)
    assert curve.cpu_instances[curve.load_rps <= 15].max() == 1
    assert curve.cpu_instances[np.isclose(curve.load_rps, 15.1)].item() == 2
    assert np.all(curve.gpu_instances == 1)
    before = curve.load_rps <= 30 * (1 + 1e-9)  # linspace's 30.000000000000004
    assert np.all(curve.gpu_hourly[before] >= curve.cpu_hourly[before])
    assert np.all(curve.gpu_hourly[~before] < curve.cpu_hourly[~before])
    assert curve.cpu_per_1k == pytest.approx(curve.cpu_hourly / (curve.load_rps * 3600) * 1000)
    with pytest.raises(ValueError, match="points"):
        cost_curve(CPU_8VCPU, GPU_24GB, 25, 400, max_rps=100, points=1)


def test_savings_and_instances():
    """A quarter of the cost saves 75 %; a dearer option saves a negative share."""
    assert savings(0.25, 1.0) == pytest.approx(0.75)
    assert savings(1.2, 1.0) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="baseline_cost"):
        savings(0.1, 0)
    assert {CPU_2VCPU.kind, CPU_8VCPU.kind, GPU_24GB.kind, GPU_H100.kind} == {"cpu", "gpu"}
    assert CPU_2VCPU.hourly_price < CPU_8VCPU.hourly_price < GPU_24GB.hourly_price
    assert 1.0 <= GPU_24GB.hourly_price <= GPU_H100.hourly_price <= 2.5
    with pytest.raises(ValueError, match="kind"):
        Instance("tpu", 1.0, "tpu")
    with pytest.raises(ValueError, match="hourly_price"):
        Instance("free", 0.0, "cpu")
