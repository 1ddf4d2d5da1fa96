"""Checkpoint 0.3: Little's law, replica counts and Erlang C.

Erlang B and C are graded against the textbook factorial formulas evaluated in exact rational
arithmetic (fractions.Fraction), against a log-space evaluation for server counts where the
factorials overflow a float, and against a small discrete-event simulation written here.
"""

from __future__ import annotations

import heapq
import math
from fractions import Fraction

import numpy as np
import pytest

from learn.testing import import_learner


@pytest.fixture
def cap():
    return import_learner("sysdesign.capacity")


def _erlang_exact(a: Fraction, c: int) -> tuple[Fraction, Fraction]:
    """(Erlang B, Erlang C) from the factorial formulas, exactly. Requires a < c for C."""
    terms = [a**k / math.factorial(k) for k in range(c + 1)]
    b = terms[c] / sum(terms)
    top = terms[c] * Fraction(c) / (c - a)
    return b, top / (sum(terms[:c]) + top)


def _erlang_c_logspace(a: float, c: int) -> float:
    """Erlang C for large c via log-sum-exp over log(a^k / k!)."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    log_top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    m = max(*logs, log_top)
    denom = sum(math.exp(x - m) for x in logs) + math.exp(log_top - m)
    return math.exp(log_top - m) / denom


def _simulate_mmc(lam: float, mu: float, c: int, n: int, seed: int) -> tuple[float, float]:
    """FIFO M/M/c by brute force: returns (fraction of requests that waited, mean wait)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, n)).tolist()
    services = rng.exponential(1 / mu, n).tolist()
    free = [0.0] * c
    waits = []
    for t, s in zip(arrivals, services, strict=True):
        start = max(heapq.heappop(free), t)
        waits.append(start - t)
        heapq.heappush(free, start + s)
    w = np.array(waits[2000:])
    return float(np.mean(w > 0)), float(w.mean())


@pytest.mark.checkpoint("0.3")
def test_littles_law(cap):
    assert cap.concurrency(200, 0.25) == pytest.approx(50.0)
    assert cap.concurrency(0, 3.0) == 0
    assert cap.throughput(4, 0.08) == pytest.approx(50.0)
    rng = np.random.default_rng(3)
    for lam, w in rng.uniform([0.1, 0.001], [5000, 30], size=(50, 2)):
        assert cap.throughput(cap.concurrency(lam, w), w) == pytest.approx(lam)


@pytest.mark.checkpoint("0.3")
def test_littles_law_on_a_simulated_request_log(cap):
    """The time-averaged number of requests in flight equals rate x mean latency."""
    rng = np.random.default_rng(11)
    n, horizon = 4000, 100.0
    starts = np.sort(rng.uniform(0, horizon, n))
    durations = rng.lognormal(np.log(0.2), 0.7, n)
    ends = starts + durations
    grid = np.linspace(0, ends.max(), 400_001)
    in_flight = np.searchsorted(starts, grid, side="right") - np.searchsorted(
        np.sort(ends), grid, side="right"
    )
    time_avg = float(in_flight.mean())  # averaged over [0, last completion]
    predicted = cap.concurrency(n / ends.max(), durations.mean())
    assert predicted == pytest.approx(time_avg, rel=0.01)


@pytest.mark.checkpoint("0.3")
def test_replicas_needed(cap):
    # 101 req/s x 0.2 s = 20.2 busy slots; 4 slots at 50 % = 2 usable per replica -> 10.1 -> 11
    assert cap.replicas_needed(101, 0.2, 4, 0.5) == 11
    assert cap.replicas_needed(99, 0.2, 4, 0.5) == 10
    assert cap.replicas_needed(1000, 0.05, 8, 0.7) == 9  # 50 / 5.6 = 8.93
    assert cap.replicas_needed(0, 0.2, 4, 0.5) == 1, "an idle service still needs one replica"
    assert cap.replicas_needed(0, 0.2, 4, 0.5, min_replicas=0) == 0
    assert cap.replicas_needed(1, 0.2, 4, 0.5, min_replicas=3) == 3


@pytest.mark.checkpoint("0.3")
def test_replicas_needed_exact_multiple_does_not_round_up(cap):
    # 140 req/s x 0.3 s = 42 busy slots; 2 workers at 70 % = 1.4 usable: exactly 30 replicas,
    # but the division gives 30.000000000000004 in floating point
    assert cap.replicas_needed(140, 0.3, 2, 0.7) == 30, "use ceil_tolerant, see the docstring"
    assert cap.replicas_needed(7, 0.3, 1, 0.7) == 3  # 3.0000000000000004
    assert cap.replicas_needed(100, 0.2, 4, 0.5) == 10


@pytest.mark.checkpoint("0.3")
def test_replicas_needed_is_the_smallest_sufficient_count(cap):
    rng = np.random.default_rng(5)
    for _ in range(200):
        lam = float(rng.uniform(0.5, 3000))
        s = float(rng.uniform(0.005, 2.0))
        c = int(rng.integers(1, 33))
        u = float(rng.uniform(0.3, 1.0))
        r = cap.replicas_needed(lam, s, c, u)
        assert lam * s <= r * c * u * (1 + 1e-9), "utilisation above target"
        assert r == 1 or lam * s > (r - 1) * c * u, "one replica fewer would do"


@pytest.mark.checkpoint("0.3")
def test_erlang_b_and_c_match_exact_formulas(cap):
    cases = [
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(16, 5), 4),
        (Fraction(8), 10),
        (Fraction(10), 12),
        (Fraction(39, 4), 11),
        (Fraction(1, 10), 3),
        (Fraction(45), 50),
    ]
    for a, c in cases:
        b_exact, c_exact = _erlang_exact(a, c)
        assert cap.erlang_b(float(a), c) == pytest.approx(float(b_exact), rel=1e-9), (a, c)
        for mu in (1.0, 4.0):  # only the ratio lambda / mu matters
            got = cap.erlang_c_wait_probability(float(a) * mu, mu, c)
            assert got == pytest.approx(float(c_exact), rel=1e-9), (a, c, mu)
            wq = cap.erlang_c_mean_wait(float(a) * mu, mu, c)
            assert wq == pytest.approx(float(c_exact) / (c * mu - float(a) * mu), rel=1e-9)


@pytest.mark.checkpoint("0.3")
def test_erlang_c_mm1_and_edge_cases(cap):
    # M/M/1: P(wait) = rho, Wq = rho / (mu - lambda)
    assert cap.erlang_c_wait_probability(0.5, 1.0, 1) == pytest.approx(0.5)
    assert cap.erlang_c_mean_wait(0.5, 1.0, 1) == pytest.approx(1.0)
    assert cap.erlang_c_wait_probability(0.0, 1.0, 3) == pytest.approx(0.0)
    assert cap.erlang_c_mean_wait(0.0, 1.0, 3) == pytest.approx(0.0)
    # unstable: utilisation >= 100 %
    assert cap.erlang_c_wait_probability(4.0, 1.0, 4) == 1.0
    assert cap.erlang_c_wait_probability(9.0, 2.0, 4) == 1.0
    assert cap.erlang_c_mean_wait(4.0, 1.0, 4) == math.inf


@pytest.mark.checkpoint("0.3")
def test_erlang_c_is_stable_for_large_pools(cap):
    for a, c in [(150.0, 171), (480.0, 500), (950.0, 1000), (1900.0, 2000)]:
        got = cap.erlang_c_wait_probability(a, 1.0, c)
        assert math.isfinite(got), f"c={c}: got {got} (factorials overflow: use the recursion)"
        assert got == pytest.approx(_erlang_c_logspace(a, c), rel=1e-7), (a, c)
        assert 0.0 <= cap.erlang_b(a, c) <= 1.0


@pytest.mark.checkpoint("0.3")
def test_erlang_c_agrees_with_simulation(cap):
    lam, mu, c = 2.4, 1.0, 3
    sim_p, sim_wq = _simulate_mmc(lam, mu, c, n=60_000, seed=8)
    assert cap.erlang_c_wait_probability(lam, mu, c) == pytest.approx(sim_p, abs=0.03)
    assert cap.erlang_c_mean_wait(lam, mu, c) == pytest.approx(sim_wq, rel=0.15)


@pytest.mark.checkpoint("0.3")
def test_servers_for_wait_probability(cap):
    for lam, mu, target in [(8.0, 1.0, 0.2), (2.4, 1.0, 0.5), (45.0, 3.0, 0.05), (0.3, 1.0, 0.9)]:
        got = cap.servers_for_wait_probability(lam, mu, target)
        a = Fraction(lam) / Fraction(mu)
        assert got > a, "an unstable pool never meets a waiting target"
        assert float(_erlang_exact(a, got)[1]) <= target, (lam, mu, target)
        if got - 1 > a:
            assert float(_erlang_exact(a, got - 1)[1]) > target, "one server fewer would do"
