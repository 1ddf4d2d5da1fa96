"""Cost per request, CPU versus GPU, and the load at which a GPU starts to pay off.

Cloud instances are billed by the hour whether they are busy or not, so the cost of a request
is the hourly price divided by the requests the instance *actually* serves in that hour. Two
consequences drive most serving-cost decisions:

- utilisation is a cost multiplier: an instance run at 30 % costs 3.3x more per request than
  the same instance at 100 %, and you cannot run at 100 % without breaking the latency SLO
  (see :mod:`sysdesign.capacity`);
- instances are discrete: at low load one GPU is mostly idle and a few cheap CPU instances
  win; past some load, the CPU fleet grows by whole instances while one GPU still has room.

Prices in this module are ILLUSTRATIVE ASSUMPTIONS, round numbers of the order of on-demand
cloud list prices for a mid-size CPU instance and a single-GPU inference instance. They are not
quotes; redo the numbers with your provider's current prices and your own load-test
throughput before deciding anything.

Everything here is checkpoint 0.6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sysdesign._checks import (
    ceil_tolerant,
    require_fraction,
    require_non_negative,
    require_positive,
)

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class InstanceType:
    """A kind of serving instance: what it costs and how much it serves within the SLO.

    ``rps_at_slo`` is the highest request rate one instance sustains while still meeting the
    latency SLO, measured by a load test - not the peak throughput, which comes with a p99
    nobody would accept.
    """

    name: str
    hourly_price: float  # USD per hour, on demand
    rps_at_slo: float

    def __post_init__(self) -> None:
        require_positive(f"{self.name}.hourly_price", self.hourly_price)
        require_positive(f"{self.name}.rps_at_slo", self.rps_at_slo)


#: ASSUMPTION, illustrative only: an 8-vCPU general-purpose instance running a small
#: transformer classifier with ONNX Runtime, about $0.35/h, 25 req/s within the SLO.
CPU_EXAMPLE = InstanceType("cpu-8vcpu", hourly_price=0.35, rps_at_slo=25.0)

#: ASSUMPTION, illustrative only: a single 24 GB inference-GPU instance serving the same model
#: with dynamic batching, about $1.00/h, 400 req/s within the SLO.
GPU_EXAMPLE = InstanceType("gpu-1x24gb", hourly_price=1.00, rps_at_slo=400.0)


def cost_per_1k_requests(
    hourly_price: float, requests_per_second_at_slo: float, utilization: float
) -> float:
    """USD per 1,000 requests for one instance run at ``utilization`` of its SLO capacity.

    An instance that sustains ``requests_per_second_at_slo`` within the SLO, run on average at
    ``utilization`` of that, serves ``rps * utilization * 3600`` requests an hour; its hourly
    price spread over them, times 1,000, is the cost per 1,000 requests. Halve the utilisation
    and the cost per request doubles.
    """
    hourly_price = require_non_negative("hourly_price", hourly_price)
    rps = require_positive("requests_per_second_at_slo", requests_per_second_at_slo)
    utilization = require_fraction("utilization", utilization)
    # BEGIN SOLUTION 0.6: the hourly price over the requests served in an hour, times 1,000
    served_per_hour = rps * utilization * SECONDS_PER_HOUR
    return hourly_price / served_per_hour * 1000.0
    # END SOLUTION


def instances_needed(load_rps: float, instance: InstanceType, target_utilization: float) -> int:
    """Whole instances of ``instance`` that serve ``load_rps`` at most at ``target_utilization``.

    ``ceil(load / (rps_at_slo * target_utilization))``, and at least one: a service that is up
    costs at least one instance even with no traffic.
    """
    load_rps = require_non_negative("load_rps", load_rps)
    target_utilization = require_fraction("target_utilization", target_utilization)
    # BEGIN SOLUTION 0.6: the load over one instance's usable capacity, rounded up, at least 1
    usable = instance.rps_at_slo * target_utilization
    return max(1, ceil_tolerant(load_rps / usable))
    # END SOLUTION


@dataclass(frozen=True)
class CostComparison:
    """CPU and GPU fleets sized for the same load, side by side."""

    load_rps: float
    cpu: InstanceType
    gpu: InstanceType
    cpu_instances: int
    gpu_instances: int

    @property
    def cpu_hourly(self) -> float:
        """USD per hour for the CPU fleet."""
        return self.cpu_instances * self.cpu.hourly_price

    @property
    def gpu_hourly(self) -> float:
        """USD per hour for the GPU fleet."""
        return self.gpu_instances * self.gpu.hourly_price

    @property
    def cpu_cost_per_1k(self) -> float:
        """USD per 1,000 requests actually served by the CPU fleet (inf with no load)."""
        return _per_1k(self.cpu_hourly, self.load_rps)

    @property
    def gpu_cost_per_1k(self) -> float:
        """USD per 1,000 requests actually served by the GPU fleet (inf with no load)."""
        return _per_1k(self.gpu_hourly, self.load_rps)

    @property
    def cheaper(self) -> str:
        """``"cpu"``, ``"gpu"`` or ``"tie"``, by hourly fleet cost."""
        if math.isclose(self.cpu_hourly, self.gpu_hourly, rel_tol=1e-9):
            return "tie"
        return "cpu" if self.cpu_hourly < self.gpu_hourly else "gpu"


def _per_1k(hourly: float, load_rps: float) -> float:
    return hourly / (load_rps * SECONDS_PER_HOUR) * 1000.0 if load_rps > 0 else math.inf


def compare_cpu_gpu(
    load_rps: float,
    cpu: InstanceType = CPU_EXAMPLE,
    gpu: InstanceType = GPU_EXAMPLE,
    target_utilization: float = 0.6,
) -> CostComparison:
    """Size a CPU fleet and a GPU fleet for ``load_rps`` and compare what they cost.

    Both fleets run at most at ``target_utilization`` of their SLO capacity (headroom for
    bursts and for losing an instance) and have at least one instance.
    """
    load_rps = require_non_negative("load_rps", load_rps)
    target_utilization = require_fraction("target_utilization", target_utilization)
    # BEGIN SOLUTION 0.6: size both fleets for the load with instances_needed
    return CostComparison(
        load_rps=load_rps,
        cpu=cpu,
        gpu=gpu,
        cpu_instances=instances_needed(load_rps, cpu, target_utilization),
        gpu_instances=instances_needed(load_rps, gpu, target_utilization),
    )
    # END SOLUTION


def break_even_rps(
    cpu: InstanceType = CPU_EXAMPLE,
    gpu: InstanceType = GPU_EXAMPLE,
    target_utilization: float = 0.6,
    *,
    max_rps: float | None = None,
) -> float | None:
    """The load above which the GPU fleet first becomes strictly cheaper than the CPU fleet.

    Both fleets are sized as in :func:`compare_cpu_gpu`, in whole instances, so their hourly
    costs are step functions of the load that only change at multiples of each instance's
    usable capacity (``rps_at_slo * target_utilization``). Returns the load ``L`` such that the
    GPU fleet costs more than or as much as the CPU fleet at every load up to ``L`` and strictly
    less just above it: with one GPU against ``N`` CPU instances that is the load at which the
    CPU fleet needs the instance that makes it dearer than the GPU. Returns 0.0 if the GPU is
    cheaper from the first request, and None if it never is up to ``max_rps`` (default: 1,000
    of the larger usable capacities).

    The steps matter: just after the GPU fleet needs its second GPU, the CPUs may win again for
    a while. The break-even point is where the GPU *starts* to pay off, not where it always does;
    look at the whole curve (the lab notebook plots it).
    """
    target_utilization = require_fraction("target_utilization", target_utilization)
    cpu_cap = cpu.rps_at_slo * target_utilization
    gpu_cap = gpu.rps_at_slo * target_utilization
    if max_rps is None:
        max_rps = 1000 * max(cpu_cap, gpu_cap)
    max_rps = require_positive("max_rps", max_rps)
    # BEGIN SOLUTION 0.6: compare costs between capacity steps; return the first GPU win
    steps = np.concatenate(
        (
            [0.0],
            cpu_cap * np.arange(1, math.floor(max_rps / cpu_cap) + 1),
            gpu_cap * np.arange(1, math.floor(max_rps / gpu_cap) + 1),
            [max_rps],
        )
    )
    steps = np.unique(steps[steps <= max_rps])
    # both costs are constant on each interval (lo, hi]: compare them in its middle
    mids = (steps[:-1] + steps[1:]) / 2
    cpu_cost = np.ceil(mids / cpu_cap) * cpu.hourly_price
    gpu_cost = np.ceil(mids / gpu_cap) * gpu.hourly_price
    gpu_wins = gpu_cost < cpu_cost * (1 - 1e-9)  # a float tie is not a win
    if not gpu_wins.any():
        return None
    return float(steps[int(np.argmax(gpu_wins))])
    # END SOLUTION
