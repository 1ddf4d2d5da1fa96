"""What a generated answer costs: per 1,000 requests, CPU against GPU, and where a GPU pays off.

This is the Phase 0 cost model (`phases/phase0/sysdesign/cost.py`) with the same definitions,
re-implemented here because the package must stand alone, and restated for text generation:
an instance's capacity is no longer a load-tested request rate but the tokens per second the
model generates on it (measured: `make bench`), divided by the tokens one answer takes.

Cloud instances are billed by the hour whether they are busy or not, so the cost of a request
is the hourly price divided by the requests the instance actually serves in that hour:
- utilisation is a cost multiplier: an instance run at 30 % costs 3.3x more per request than the
  same instance at 100 %, and no service runs at 100 % without breaking its latency SLO;
- instances are whole: at low load one GPU is mostly idle and a couple of cheap CPU instances
  win; past some load the CPU fleet grows instance by instance while one GPU still has room.

The prices below are ILLUSTRATIVE ASSUMPTIONS: round numbers of the order of on-demand cloud
list prices, not quotes from any provider. Redo the numbers with your provider's current prices
and your own measured throughput before deciding anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

SECONDS_PER_HOUR = 3600.0
CEIL_RTOL = 1e-9
"""Slack when a float that should be a whole number is rounded up: `0.3 / 0.1` is
2.9999999999999996 and `100 * 0.2 / 2` is 10.000000000000002; without it an exact multiple
would buy an extra instance for a rounding error."""


def _number(name: str, value: float) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def _positive(name: str, value: float) -> float:
    out = _number(name, value)
    if out <= 0:
        raise ValueError(f"{name} must be > 0, got {out}")
    return out


def _non_negative(name: str, value: float) -> float:
    out = _number(name, value)
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def _fraction(name: str, value: float) -> float:
    out = _number(name, value)
    if not 0 < out <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {out}")
    return out


def _ceil_tolerant(x: float) -> int:
    nearest = round(x)
    if math.isclose(x, nearest, rel_tol=CEIL_RTOL, abs_tol=CEIL_RTOL):
        return int(nearest)
    return math.ceil(x)


@dataclass(frozen=True)
class Instance:
    """A kind of serving instance and what it costs an hour (USD, on demand)."""

    name: str
    hourly_price: float
    kind: Literal["cpu", "gpu"]

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must be a non-empty string")
        _positive(f"{self.name}.hourly_price", self.hourly_price)
        if self.kind not in ("cpu", "gpu"):
            raise ValueError(f"{self.name}.kind must be 'cpu' or 'gpu', got {self.kind!r}")


#: ASSUMPTION, illustrative only: a 2-vCPU general-purpose instance, about $0.10/h.
CPU_2VCPU = Instance("cpu-2vcpu", hourly_price=0.10, kind="cpu")
#: ASSUMPTION, illustrative only: an 8-vCPU general-purpose instance, about $0.35/h (the
#: Phase 0 example's price).
CPU_8VCPU = Instance("cpu-8vcpu", hourly_price=0.35, kind="cpu")
#: ASSUMPTION, illustrative only: one 24 GB inference GPU (L4/A10 class), about $1.00/h.
GPU_24GB = Instance("gpu-1x24gb", hourly_price=1.00, kind="gpu")
#: ASSUMPTION, illustrative only: one 80 GB H100-class GPU, about $2.50/h.
GPU_H100 = Instance("gpu-1xh100", hourly_price=2.50, kind="gpu")


def requests_per_second(
    tokens_per_s: float, tokens_per_request: float, concurrency: int = 1
) -> float:
    """Requests one instance completes per second when generation is the bottleneck.

    `tokens_per_s` is the measured generation rate of one stream, `tokens_per_request` the
    tokens one answer takes (generated tokens; add the prompt's when prefill time matters) and
    `concurrency` the streams that run in parallel at that rate each. Pass a batch's aggregate
    tokens/s with concurrency 1 instead: batching raises the total but not each stream's rate.
    """
    tokens_per_s = _positive("tokens_per_s", tokens_per_s)
    tokens_per_request = _positive("tokens_per_request", tokens_per_request)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    return tokens_per_s / tokens_per_request * concurrency


def cost_per_1k_requests(
    hourly_price: float,
    tokens_per_s: float,
    tokens_per_request: float,
    utilization: float = 1.0,
) -> float:
    """USD per 1,000 requests for one instance run at `utilization` of its capacity.

    The instance completes `tokens_per_s / tokens_per_request` requests a second flat out; run
    on average at `utilization` of that it serves `rps * utilization * 3600` requests an hour,
    and its hourly price spread over them, times 1,000, is the cost per 1,000 requests. Halve
    the utilisation or double the answer length and the cost per request doubles. A price of 0
    (hardware already paid for) gives 0.
    """
    hourly_price = _non_negative("hourly_price", hourly_price)
    tokens_per_s = _positive("tokens_per_s", tokens_per_s)
    tokens_per_request = _positive("tokens_per_request", tokens_per_request)
    utilization = _fraction("utilization", utilization)
    # BEGIN SOLUTION 3.11: the hourly price over the requests served in an hour, times 1,000
    served_per_hour = tokens_per_s / tokens_per_request * utilization * SECONDS_PER_HOUR
    return hourly_price / served_per_hour * 1000.0
    # END SOLUTION


def instances_needed(load_rps: float, rps_per_instance: float, target_utilization: float) -> int:
    """Whole instances that serve `load_rps` with none above `target_utilization`, at least 1.

    A service that is up costs at least one instance even with no traffic.
    """
    load_rps = _non_negative("load_rps", load_rps)
    rps_per_instance = _positive("rps_per_instance", rps_per_instance)
    target_utilization = _fraction("target_utilization", target_utilization)
    return max(1, _ceil_tolerant(load_rps / (rps_per_instance * target_utilization)))


def break_even_rps(
    cpu: Instance,
    gpu: Instance,
    cpu_rps_per_instance: float,
    gpu_rps_per_instance: float,
    target_utilization: float = 0.6,
    *,
    max_rps: float | None = None,
) -> float | None:
    """The load above which the GPU fleet first becomes strictly cheaper than the CPU fleet.

    Both fleets are sized with `instances_needed`, so their hourly costs are step functions
    that change only at multiples of each instance's usable capacity (`rps * utilization`).
    Returns the load L such that the GPU fleet costs at least as much as the CPU fleet at every
    load up to L and strictly less just above it; 0.0 if the GPU is cheaper from the first
    request; None if it never is up to `max_rps` (default: 1,000 of the larger usable capacity).

    The steps matter: right after the GPU fleet needs its second GPU the CPUs may win again for
    a while. This is where the GPU starts to pay off, not where it always does: plot
    `cost_curve` before deciding.
    """
    cpu_cap = _positive("cpu_rps_per_instance", cpu_rps_per_instance)
    gpu_cap = _positive("gpu_rps_per_instance", gpu_rps_per_instance)
    target_utilization = _fraction("target_utilization", target_utilization)
    cpu_cap *= target_utilization
    gpu_cap *= target_utilization
    limit = 1000 * max(cpu_cap, gpu_cap) if max_rps is None else _positive("max_rps", max_rps)
    steps = np.concatenate(
        (
            [0.0],
            cpu_cap * np.arange(1, math.floor(limit / cpu_cap) + 1),
            gpu_cap * np.arange(1, math.floor(limit / gpu_cap) + 1),
            [limit],
        )
    )
    steps = np.unique(steps[steps <= limit])
    # both costs are constant on each interval (lo, hi]: compare them in its middle
    mids = (steps[:-1] + steps[1:]) / 2
    cpu_cost = np.ceil(mids / cpu_cap) * cpu.hourly_price
    gpu_cost = np.ceil(mids / gpu_cap) * gpu.hourly_price
    gpu_wins = gpu_cost < cpu_cost * (1 - 1e-9)  # a float tie is not a win
    if not gpu_wins.any():
        return None
    return float(steps[int(np.argmax(gpu_wins))])


@dataclass(frozen=True)
class CostCurve:
    """Hourly fleet cost and cost per 1,000 requests of both fleets over a range of loads."""

    load_rps: np.ndarray
    cpu_instances: np.ndarray
    gpu_instances: np.ndarray
    cpu_hourly: np.ndarray
    gpu_hourly: np.ndarray
    cpu_per_1k: np.ndarray
    gpu_per_1k: np.ndarray


def cost_curve(
    cpu: Instance,
    gpu: Instance,
    cpu_rps_per_instance: float,
    gpu_rps_per_instance: float,
    target_utilization: float = 0.6,
    *,
    max_rps: float,
    points: int = 500,
) -> CostCurve:
    """Both fleets' costs at `points` loads from max_rps/points up to `max_rps`, for plotting.

    The loads start above 0 because a cost per request at no load is infinite; the step shape
    of the hourly costs is why `break_even_rps` is a first crossing, not a threshold.
    """
    cpu_cap = _positive("cpu_rps_per_instance", cpu_rps_per_instance)
    gpu_cap = _positive("gpu_rps_per_instance", gpu_rps_per_instance)
    target_utilization = _fraction("target_utilization", target_utilization)
    max_rps = _positive("max_rps", max_rps)
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an int >= 2, got {points!r}")
    loads = np.linspace(max_rps / points, max_rps, points)

    def fleet(capacity: float) -> np.ndarray:
        ratio = loads / (capacity * target_utilization)
        return np.maximum(1, np.ceil(ratio - CEIL_RTOL * np.maximum(1.0, ratio))).astype(int)

    cpu_n, gpu_n = fleet(cpu_cap), fleet(gpu_cap)
    cpu_hourly = cpu_n * cpu.hourly_price
    gpu_hourly = gpu_n * gpu.hourly_price
    served_per_hour = loads * SECONDS_PER_HOUR
    return CostCurve(
        load_rps=loads,
        cpu_instances=cpu_n,
        gpu_instances=gpu_n,
        cpu_hourly=cpu_hourly,
        gpu_hourly=gpu_hourly,
        cpu_per_1k=cpu_hourly / served_per_hour * 1000.0,
        gpu_per_1k=gpu_hourly / served_per_hour * 1000.0,
    )


def savings(quantized_cost: float, baseline_cost: float) -> float:
    """The fraction of the baseline's cost saved, `1 - quantized / baseline`.

    0.75 means a quarter of the cost; a negative value means the "cheaper" option costs more
    (a quantised model slower on hardware without fast int kernels does that).
    """
    quantized_cost = _non_negative("quantized_cost", quantized_cost)
    baseline_cost = _positive("baseline_cost", baseline_cost)
    return 1.0 - quantized_cost / baseline_cost
