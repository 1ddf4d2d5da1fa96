"""Capacity planning: Little's law, replica counts and the Erlang C queueing model.

Little's law, ``L = lambda * W``, holds for any stable system whatever the distributions:
the average number of requests in flight equals the arrival rate times the average time each
spends inside. It turns a latency measurement and a traffic forecast into a concurrency you
must provision (worker slots, GPU batch slots, database connections).

Little's law gives averages. To know how long requests *queue* when servers are busy, model
the service as an M/M/c queue (Poisson arrivals, exponential service times, ``c`` identical
servers, one shared FIFO queue). Erlang's C formula gives the probability that an arriving
request has to wait, and from it the mean wait. Real services are not exactly M/M/c, but the
model shows the one thing intuition gets wrong: waiting explodes as utilisation approaches
100 %, and it explodes later for larger pools of servers. That is why capacity targets are
written as a utilisation ceiling (run at 60-70 %, not 95 %).

Everything here is checkpoint 0.3, except :func:`simulate_mmc`, the discrete-event simulation
the lab notebook uses to check the formulas against "reality".
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from sysdesign._checks import (
    ceil_tolerant,
    require_fraction,
    require_non_negative,
    require_positive,
    require_positive_int,
)


def concurrency(arrival_rate: float, latency_s: float) -> float:
    """Little's law: mean requests in flight = arrival rate (req/s) x mean latency (s).

    200 req/s at 250 ms each keeps 50 requests in flight on average, so a pool of 8 workers
    per replica needs at least 7 replicas before any headroom. Use the *mean* latency (time in
    the system, queueing included), not a percentile: the law is about averages.
    """
    arrival_rate = require_non_negative("arrival_rate", arrival_rate)
    latency_s = require_non_negative("latency_s", latency_s)
    # BEGIN SOLUTION 0.3: Little's law, L = lambda * W
    return arrival_rate * latency_s
    # END SOLUTION


def throughput(in_flight: float, latency_s: float) -> float:
    """Little's law solved for the rate: the req/s that ``in_flight`` concurrent slots sustain.

    A model server with 4 batch slots and 80 ms per request tops out at 50 req/s; adding
    clients will only lengthen the queue. Raises ``ValueError`` for a latency of 0.
    """
    in_flight = require_non_negative("in_flight", in_flight)
    latency_s = require_positive("latency_s", latency_s)
    # BEGIN SOLUTION 0.3: Little's law solved for the rate, lambda = L / W
    return in_flight / latency_s
    # END SOLUTION


def replicas_needed(
    arrival_rate: float,
    service_time_s: float,
    per_replica_concurrency: int,
    target_utilization: float = 0.7,
    *,
    min_replicas: int = 1,
) -> int:
    """The number of replicas that serves ``arrival_rate`` without exceeding the utilisation.

    Each replica processes ``per_replica_concurrency`` requests at once (worker processes,
    threads, or batch slots), each taking ``service_time_s``. By Little's law the load keeps
    ``arrival_rate * service_time_s`` slots busy on average; dividing by the slots you allow
    to be busy per replica (``per_replica_concurrency * target_utilization``) and rounding up
    gives the replica count. Exact multiples do not round up (see
    :func:`sysdesign._checks.ceil_tolerant`).

    Why a target below 1: at 100 % busy there is no slack for bursts, so queues (and the p99)
    grow without bound; see :func:`erlang_c_mean_wait`. Why ``min_replicas`` (default 1): an
    idle service still needs a replica to answer the first request; pass 2 or 3 for
    redundancy across failure domains, or 0 for scale-to-zero.
    """
    arrival_rate = require_non_negative("arrival_rate", arrival_rate)
    service_time_s = require_positive("service_time_s", service_time_s)
    per_replica_concurrency = require_positive_int(
        "per_replica_concurrency", per_replica_concurrency
    )
    target_utilization = require_fraction("target_utilization", target_utilization)
    if min_replicas < 0:
        raise ValueError(f"min_replicas must be >= 0, got {min_replicas}")
    # BEGIN SOLUTION 0.3: busy slots (Little's law) over usable slots per replica, rounded up
    busy_slots = arrival_rate * service_time_s
    usable_slots = per_replica_concurrency * target_utilization
    return max(min_replicas, ceil_tolerant(busy_slots / usable_slots))
    # END SOLUTION


def _check_mmc(arrival_rate: float, service_rate: float, servers: int) -> tuple[float, float, int]:
    return (
        require_non_negative("arrival_rate", arrival_rate),
        require_positive("service_rate", service_rate),
        require_positive_int("servers", servers),
    )


def erlang_b(offered_load: float, servers: int) -> float:
    """Erlang B: the probability that all ``servers`` are busy in a loss system (no queue).

    ``offered_load`` is ``a = arrival_rate / service_rate`` in Erlangs (the mean number of
    busy servers if there were infinitely many). Computed with the recursion
    ``B(0) = 1``, ``B(k) = a * B(k-1) / (k + a * B(k-1))``, which stays between 0 and 1 at
    every step. The textbook formula with ``a**c / c!`` overflows a float past ``c`` of about
    170, and large GPU fleets or connection pools are bigger than that.
    """
    offered_load = require_non_negative("offered_load", offered_load)
    servers = require_positive_int("servers", servers)
    # BEGIN SOLUTION 0.3: the Erlang B recursion, B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b
    # END SOLUTION


def erlang_c_wait_probability(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Erlang C: the probability that a request must queue in an M/M/c system.

    ``arrival_rate`` (req/s) arrives as a Poisson process; each of ``servers`` identical servers
    completes requests at ``service_rate`` (req/s, i.e. 1 / mean service time). With offered
    load ``a = arrival_rate / service_rate`` and ``B`` from :func:`erlang_b`,
    ``C = c * B / (c - a * (1 - B))``.

    When ``a >= c`` the queue is unstable (utilisation >= 100 %): every request eventually waits,
    so this returns 1.0 rather than raising, which keeps sweeps over server counts simple.
    """
    arrival_rate, service_rate, servers = _check_mmc(arrival_rate, service_rate, servers)
    # BEGIN SOLUTION 0.3: Erlang C from Erlang B; 1.0 when the queue is unstable (a >= c)
    a = arrival_rate / service_rate
    if a >= servers:
        return 1.0
    b = erlang_b(a, servers)
    return servers * b / (servers - a * (1.0 - b))
    # END SOLUTION


def erlang_c_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time (s) a request spends queueing in an M/M/c system, before service starts.

    ``Wq = C / (c * service_rate - arrival_rate)``, with ``C`` from
    :func:`erlang_c_wait_probability`. Add ``1 / service_rate`` for the mean response time.
    Returns ``math.inf`` for an unstable queue (``arrival_rate >= servers * service_rate``).
    """
    arrival_rate, service_rate, servers = _check_mmc(arrival_rate, service_rate, servers)
    # BEGIN SOLUTION 0.3: Wq = C / (c mu - lambda), infinite when unstable
    spare_rate = servers * service_rate - arrival_rate
    if spare_rate <= 0:
        return math.inf
    return erlang_c_wait_probability(arrival_rate, service_rate, servers) / spare_rate
    # END SOLUTION


def servers_for_wait_probability(
    arrival_rate: float, service_rate: float, max_wait_probability: float
) -> int:
    """The fewest M/M/c servers for which at most ``max_wait_probability`` of requests queue.

    A staffing rule in the call-centre tradition: "no more than 20 % of requests wait". The
    answer still grows about linearly with the load; only the spare servers above the offered
    load ``a`` grow like ``sqrt(a)`` (square-root staffing, ``c ~ a + beta * sqrt(a)``; Halfin
    and Whitt, 1981), so a bigger pool meets the same target at a higher utilisation.
    """
    arrival_rate = require_non_negative("arrival_rate", arrival_rate)
    service_rate = require_positive("service_rate", service_rate)
    max_wait_probability = require_fraction("max_wait_probability", max_wait_probability)
    # BEGIN SOLUTION 0.3: smallest c with Erlang C <= the target, starting at the first stable c
    c = max(1, math.floor(arrival_rate / service_rate) + 1)
    while erlang_c_wait_probability(arrival_rate, service_rate, c) > max_wait_probability:
        c += 1
    return c
    # END SOLUTION


@dataclass(frozen=True)
class MMCSimulation:
    """What :func:`simulate_mmc` measured, to compare with the Erlang C formulas."""

    customers: int
    wait_probability: float
    mean_wait_s: float
    mean_response_s: float
    utilization: float
    p99_response_s: float


def simulate_mmc(
    arrival_rate: float,
    service_rate: float,
    servers: int,
    *,
    customers: int = 50_000,
    warmup: int = 1_000,
    service_sigma: float | None = None,
    seed: int | None = 0,
) -> MMCSimulation:
    """Discrete-event simulation of an M/M/c FIFO queue, to check Erlang C against reality.

    Requests arrive with exponential inter-arrival times, take exponential service times, and
    each goes to the server that frees up first (a min-heap of "free at" times). The first
    ``warmup`` requests are discarded: the system starts empty, which would bias waits down.

    Why simulate when a formula exists: the formula holds only for its assumptions. Pass
    ``service_sigma`` to draw lognormal service times with the same mean (``1 / service_rate``)
    but a heavier tail - an M/G/c queue - and the Erlang C answer is visibly off, which is
    the honest situation for most ML services.
    """
    arrival_rate = require_positive("arrival_rate", arrival_rate)
    service_rate = require_positive("service_rate", service_rate)
    servers = require_positive_int("servers", servers)
    if customers <= warmup:
        raise ValueError(f"customers ({customers}) must exceed warmup ({warmup})")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / arrival_rate, customers))
    if service_sigma is None:
        services = rng.exponential(1.0 / service_rate, customers)
    else:
        sigma = require_positive("service_sigma", service_sigma)
        mu = -math.log(service_rate) - sigma**2 / 2  # keeps the mean at 1 / service_rate
        services = rng.lognormal(mu, sigma, customers)
    free_at = [0.0] * servers  # a heap: when each server next becomes free
    waits = np.empty(customers)
    for i, (t, s) in enumerate(zip(arrivals.tolist(), services.tolist(), strict=True)):
        earliest = heapq.heappop(free_at)
        start = earliest if earliest > t else t
        waits[i] = start - t
        heapq.heappush(free_at, start + s)
    w = waits[warmup:]
    responses = w + services[warmup:]
    span = arrivals[-1] - arrivals[warmup]
    return MMCSimulation(
        customers=int(w.size),
        wait_probability=float(np.mean(w > 0)),
        mean_wait_s=float(w.mean()),
        mean_response_s=float(responses.mean()),
        utilization=float(services[warmup:].sum() / (servers * span)) if span > 0 else math.nan,
        p99_response_s=float(np.percentile(responses, 99)),
    )
