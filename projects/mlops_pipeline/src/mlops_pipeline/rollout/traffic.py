"""Load for a rollout: real flight requests at a steady rate through the router, tallied by role.

The generator is open-loop per worker (each worker keeps its own schedule and does not wait for
slow answers to catch up with it beyond one request), so a slow canary shows up as latency, not
as a silently lower request rate. Each answer is recorded with the `X-Upstream-Role` header
the router adds, which is how the rollout tests measure what share of requests the canary
actually answered and when it answered its first and last.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from mlops_pipeline.rollout.router import ROUTE_HEADER

__all__ = ["Answer", "LoadGenerator", "TrafficReport", "flight_requests"]


def flight_requests(start: str, end: str | None = None, limit: int | None = None) -> list[dict]:
    """Request bodies (the service contract) for the flights scheduled in [start, end) UTC.

    `end` defaults to one day after `start`. Cancelled flights are kept: a prediction is asked
    for before anyone knows a flight will be cancelled.
    """
    import pandas as pd

    from mlops_pipeline import data

    start_ts = data.utc(start)
    end_ts = data.utc(end) if end is not None else start_ts + pd.Timedelta(days=1)
    flights = data.flights(start_ts, end_ts)
    if limit is not None:
        flights = flights.head(limit)
    out = []
    for row in flights.itertuples(index=False):
        out.append(
            {
                "flight_id": int(row.flight_id),
                "carrier": str(row.carrier),
                "flight": int(row.flight),
                "tailnum": None if pd.isna(row.tailnum) else str(row.tailnum),
                "origin": str(row.origin),
                "dest": str(row.dest),
                "sched_dep": row.sched_dep.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "distance": int(row.distance),
            }
        )
    return out


@dataclass(frozen=True)
class Answer:
    """One request's outcome as the client saw it."""

    sent_at: float
    """time.monotonic() when it was sent."""
    wall: float
    """time.time() when it was sent."""
    role: str | None
    """`X-Upstream-Role` of the answer; None when no answer came (connection error)."""
    status: int | None
    latency_s: float
    score: float | None


@dataclass
class TrafficReport:
    """Every answer of a run, and summaries of them."""

    answers: list[Answer] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Answers per role ("none" for requests that got no answer)."""
        return dict(Counter(a.role or "none" for a in self.answers))

    def statuses(self) -> dict[int | None, int]:
        return dict(Counter(a.status for a in self.answers))

    def share(self, role: str, since: float | None = None, until: float | None = None) -> float:
        """Share of answers in [since, until] (monotonic) given by `role`."""
        window = self.between(since, until)
        return sum(a.role == role for a in window) / len(window) if window else 0.0

    def between(self, since: float | None = None, until: float | None = None) -> list[Answer]:
        return [
            a
            for a in self.answers
            if (since is None or a.sent_at >= since) and (until is None or a.sent_at <= until)
        ]

    def first(self, role: str) -> Answer | None:
        hits = [a for a in self.answers if a.role == role]
        return min(hits, key=lambda a: a.sent_at) if hits else None

    def last(self, role: str) -> Answer | None:
        hits = [a for a in self.answers if a.role == role]
        return max(hits, key=lambda a: a.sent_at) if hits else None

    def errors(self) -> int:
        """Requests without a 2xx answer (5xx, 4xx or no answer at all)."""
        return sum(a.status is None or not 200 <= a.status < 300 for a in self.answers)

    def mean_score(self, role: str) -> float | None:
        scores = [a.score for a in self.answers if a.role == role and a.score is not None]
        return sum(scores) / len(scores) if scores else None

    def summary(self) -> dict[str, Any]:
        latencies = sorted(a.latency_s for a in self.answers)

        def ms(q: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000, 2)

        return {
            "requests": len(self.answers),
            "by_role": self.counts(),
            "errors": self.errors(),
            "p50_ms": ms(0.5),
            "p99_ms": ms(0.99),
        }


class LoadGenerator:
    """Send `requests` (cycled) to `url` + `path` at `rate` per second from `workers` threads.

    `start()` returns at once; `stop()` ends the run and returns the report. A context manager
    stops it also when the block fails. Extra `headers` (a `traceparent`, say) go on every request.
    The requests are sent in an order shuffled by `seed`, then cycled.
    """

    def __init__(
        self,
        url: str,
        requests: Sequence[dict],
        *,
        rate: float,
        workers: int = 4,
        path: str = "/v1/predict",
        timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
        seed: int = 0,
    ):
        if rate <= 0 or workers < 1:
            raise ValueError(f"need rate > 0 and workers >= 1, got rate={rate}, workers={workers}")
        if not requests:
            raise ValueError("no requests to send")
        self.url = url.rstrip("/") + path
        self.requests = list(requests)
        self.rate = rate
        self.workers = workers
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})
        self.report = TrafficReport()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # A fixed shuffle, then cycled: requests come sorted by departure, and two roles compared
        # over different windows must not see different hours of the day (a false score shift).
        order = random.Random(seed).sample(self.requests, len(self.requests))
        self._bodies: Iterable[dict] = itertools.cycle(order)

    def _next_body(self) -> dict:
        with self._lock:
            return next(self._bodies)  # type: ignore[call-overload]

    def _worker(self, index: int) -> None:
        interval = self.workers / self.rate
        next_at = time.monotonic() + index * interval / self.workers
        with httpx.Client(timeout=self.timeout_s, headers=self.headers) as client:
            while not self._stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                # Behind schedule by more than one interval: skip ahead rather than burst.
                next_at = max(next_at + interval, time.monotonic())
                self.report.answers.append(self._send(client, self._next_body()))

    def _send(self, client: httpx.Client, body: dict) -> Answer:
        sent, wall = time.monotonic(), time.time()
        try:
            response = client.post(self.url, json=body)
        except httpx.HTTPError:
            return Answer(sent, wall, None, None, time.monotonic() - sent, None)
        latency = time.monotonic() - sent
        score = None
        if response.status_code == 200:
            try:
                score = float(response.json()["delay_probability"])
            except (ValueError, KeyError, TypeError):
                score = None
        return Answer(
            sent, wall, response.headers.get(ROUTE_HEADER), response.status_code, latency, score
        )

    def start(self) -> LoadGenerator:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._worker, args=(i,), name=f"load-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> TrafficReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 2)
        return self.report

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
