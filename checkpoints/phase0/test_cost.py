"""Checkpoint 0.6: cost per 1,000 requests, CPU vs GPU, and the break-even load.

Prices here are made-up round numbers chosen so the arithmetic can be checked by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def cost():
    return import_learner("sysdesign.cost")


def _fleet_cost(load, price, capacity):
    """Hourly cost of whole instances (at least one) serving ``load``; works on arrays."""
    instances = np.maximum(1, np.ceil(np.asarray(load, dtype=float) / capacity - 1e-9))
    return instances * price


@pytest.mark.checkpoint("0.6")
def test_cost_per_1k_requests_by_hand(cost):
    # $0.36/h serving 10 req/s flat out: 36,000 requests an hour, $0.01 per 1,000
    assert cost.cost_per_1k_requests(0.36, 10, 1.0) == pytest.approx(0.01)
    # $1/h, 400 req/s at 60 %: 864,000 requests an hour
    assert cost.cost_per_1k_requests(1.0, 400, 0.6) == pytest.approx(1000 / 864_000)
    # half the utilisation, double the cost per request
    assert cost.cost_per_1k_requests(0.9, 50, 0.3) == pytest.approx(
        2 * cost.cost_per_1k_requests(0.9, 50, 0.6)
    )
    assert cost.cost_per_1k_requests(0.0, 50, 0.5) == 0


@pytest.mark.checkpoint("0.6")
def test_instances_needed(cost):
    cpu = cost.InstanceType("cpu", hourly_price=0.4, rps_at_slo=50)
    assert cost.instances_needed(0, cpu, 0.5) == 1
    assert cost.instances_needed(25, cpu, 0.5) == 1
    assert cost.instances_needed(26, cpu, 0.5) == 2
    assert cost.instances_needed(1000, cpu, 0.8) == 25
    # 7 req/s at 70 % is 4.8999999999999995 in floating point: 49 req/s is exactly 10 instances
    assert cost.instances_needed(49, cost.InstanceType("c", 1.0, 7), 0.7) == 10
    rng = np.random.default_rng(9)
    for _ in range(100):
        inst = cost.InstanceType("x", 1.0, float(rng.uniform(1, 500)))
        load, u = float(rng.uniform(0, 5000)), float(rng.uniform(0.2, 1.0))
        n = cost.instances_needed(load, inst, u)
        assert n == round(_fleet_cost(load, 1.0, inst.rps_at_slo * u)), (load, u)


@pytest.mark.checkpoint("0.6")
def test_compare_cpu_gpu(cost):
    cpu = cost.InstanceType("cpu", hourly_price=0.4, rps_at_slo=50)
    gpu = cost.InstanceType("gpu", hourly_price=1.5, rps_at_slo=600)
    low = cost.compare_cpu_gpu(60, cpu, gpu, 1.0)
    assert (low.cpu_instances, low.gpu_instances) == (2, 1)
    assert low.cpu_hourly == pytest.approx(0.8) and low.gpu_hourly == pytest.approx(1.5)
    assert low.cheaper == "cpu"
    assert low.cpu_cost_per_1k == pytest.approx(0.8 / (60 * 3600) * 1000)
    high = cost.compare_cpu_gpu(1000, cpu, gpu, 0.5)  # 40 CPUs vs 4 GPUs
    assert (high.cpu_instances, high.gpu_instances) == (40, 4)
    assert high.cheaper == "gpu"
    assert high.gpu_cost_per_1k == pytest.approx(6.0 / (1000 * 3600) * 1000)


@pytest.mark.checkpoint("0.6")
def test_break_even_by_hand(cost):
    cpu = cost.InstanceType("cpu", hourly_price=0.4, rps_at_slo=50)
    gpu = cost.InstanceType("gpu", hourly_price=1.5, rps_at_slo=600)
    # 3 CPUs ($1.20) serve up to 150 req/s; the 4th ($1.60) makes them dearer than one GPU
    assert cost.break_even_rps(cpu, gpu, 1.0) == pytest.approx(150.0)
    assert cost.break_even_rps(cpu, gpu, 0.5) == pytest.approx(75.0)
    cheap_gpu = cost.InstanceType("gpu", hourly_price=0.3, rps_at_slo=600)
    assert cost.break_even_rps(cpu, cheap_gpu, 1.0) == 0.0
    weak_gpu = cost.InstanceType("gpu", hourly_price=10.0, rps_at_slo=20)
    assert cost.break_even_rps(cpu, weak_gpu, 1.0, max_rps=10_000) is None


@pytest.mark.checkpoint("0.6")
def test_break_even_is_the_first_win_not_a_lasting_one(cost):
    # CPU $1 per 100 req/s, GPU $2.5 per 250 req/s: the GPU wins on (200, 250], loses after
    cpu = cost.InstanceType("cpu", hourly_price=1.0, rps_at_slo=100)
    gpu = cost.InstanceType("gpu", hourly_price=2.5, rps_at_slo=250)
    assert cost.break_even_rps(cpu, gpu, 1.0, max_rps=2000) == pytest.approx(200.0)


@pytest.mark.checkpoint("0.6")
def test_break_even_matches_a_load_sweep(cost):
    rng = np.random.default_rng(31)
    for _ in range(25):
        cpu = cost.InstanceType("cpu", float(rng.uniform(0.1, 1.0)), float(rng.uniform(5, 60)))
        gpu = cost.InstanceType("gpu", float(rng.uniform(0.5, 4.0)), float(rng.uniform(100, 900)))
        u = float(rng.uniform(0.4, 0.9))
        max_rps = 2000.0
        got = cost.break_even_rps(cpu, gpu, u, max_rps=max_rps)
        cpu_cap, gpu_cap = cpu.rps_at_slo * u, gpu.rps_at_slo * u
        step = 0.01
        loads = np.arange(step, max_rps, step)
        wins = _fleet_cost(loads, gpu.hourly_price, gpu_cap) < _fleet_cost(
            loads, cpu.hourly_price, cpu_cap
        ) * (1 - 1e-9)
        if not wins.any():
            assert got is None
            continue
        first = loads[int(np.argmax(wins))]
        assert got is not None and math.isclose(got, first, abs_tol=step + 1e-9), (got, first)
