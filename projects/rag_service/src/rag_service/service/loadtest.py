"""Closed-loop load on a running service: N users, each asking its next question as soon as
the last answer arrived, the way a team of people with a chat window behaves.

Each level uses questions no earlier level asked, so the caches cannot flatter it; the cache
measurement asks one question many times, one request at a time, so it times the hit path
itself rather than a queue. Latency is from sending the request to the last byte of the JSON
answer, measured by the client over real HTTP on loopback (httpx for the load levels; for cache
hits also the standard library's keep-alive client, whose own cost is negligible).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np


@dataclass(frozen=True)
class LevelResult:
    users: int
    requests: int
    errors: int
    status: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    answers_per_s: float
    by_variant_p50_ms: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 2) if values else float("nan")


async def _user(
    client: httpx.AsyncClient,
    user: str,
    questions: Sequence[str],
    max_tokens: int,
    out: list[tuple[float, dict[str, Any] | None]],
) -> None:
    for question in questions:
        started = time.perf_counter()
        response = await client.post(
            "/v1/ask", json={"question": question, "user_id": user, "max_tokens": max_tokens}
        )
        elapsed = (time.perf_counter() - started) * 1000
        out.append((elapsed, response.json() if response.status_code == 200 else None))


async def run_level(
    url: str, questions: Sequence[str], users: int, max_tokens: int = 64
) -> LevelResult:
    """`users` concurrent users sharing `questions` (each gets a disjoint slice)."""
    if users < 1 or len(questions) < users:
        raise ValueError(f"need at least one question per user: {len(questions)} for {users}")
    per_user = len(questions) // users
    out: list[tuple[float, dict[str, Any] | None]] = []
    limits = httpx.Limits(max_connections=users + 4)
    async with httpx.AsyncClient(
        base_url=url, timeout=600, limits=limits, trust_env=False
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _user(
                    client,
                    f"load-{users}-{u}",
                    questions[u * per_user : (u + 1) * per_user],
                    max_tokens,
                    out,
                )  # fmt: skip
                for u in range(users)
            )
        )
        wall = time.perf_counter() - started
    ok = [(ms, body) for ms, body in out if body is not None]
    latencies = [ms for ms, _ in ok]
    variants: dict[str, list[float]] = {}
    for ms, body in ok:
        variants.setdefault(body["variant"], []).append(ms)  # type: ignore[index]
    return LevelResult(
        users=users,
        requests=len(out),
        errors=len(out) - len(ok),
        status=dict(Counter(body["status"] for _, body in ok)),  # type: ignore[index]
        p50_ms=_pct(latencies, 50),
        p95_ms=_pct(latencies, 95),
        p99_ms=_pct(latencies, 99),
        answers_per_s=round(len(ok) / wall, 3),
        by_variant_p50_ms={v: _pct(ms, 50) for v, ms in sorted(variants.items())},
    )


def _keep_alive_latencies(url: str, body: dict[str, Any], repeats: int) -> list[float]:
    """Milliseconds per request over one keep-alive connection with the standard library's
    client: next to no client-side cost, so the number is the service's."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    payload = json.dumps(body)
    headers = {"Content-Type": "application/json"}
    latencies = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            connection.request("POST", "/v1/ask", payload, headers)
            response = connection.getresponse()
            data = response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or json.loads(data).get("cache", "none") == "none":
                raise RuntimeError(f"not a cache hit: {response.status} {data[:200]!r}")
    finally:
        connection.close()
    return latencies


async def cache_hit_latency(url: str, question: str, repeats: int = 200) -> dict[str, Any]:
    """Ask once (a miss that fills the cache), then `repeats` times; latency of the hits, from
    a keep-alive standard-library client (the service's time) and from httpx (what a Python
    client using httpx sees: about a millisecond more per request on this machine)."""
    body = {"question": question, "user_id": "cache-probe"}
    async with httpx.AsyncClient(base_url=url, timeout=600, trust_env=False) as client:
        started = time.perf_counter()
        first = await client.post("/v1/ask", json=body)
        miss_ms = round((time.perf_counter() - started) * 1000, 2)
        via_httpx: list[float] = []
        kinds: Counter[str] = Counter()
        for _ in range(repeats):
            started = time.perf_counter()
            response = await client.post("/v1/ask", json=body)
            via_httpx.append((time.perf_counter() - started) * 1000)
            kinds[response.json().get("cache", "error")] += 1
    hits = await asyncio.to_thread(_keep_alive_latencies, url, body, repeats)
    return {
        "repeats": repeats,
        "served_from": dict(kinds),
        "p50_ms": _pct(hits, 50),
        "p95_ms": _pct(hits, 95),
        "p99_ms": _pct(hits, 99),
        "httpx_p50_ms": _pct(via_httpx, 50),
        "httpx_p99_ms": _pct(via_httpx, 99),
        "miss_ms": miss_ms,
        "miss_status": first.json().get("status") if first.status_code == 200 else first.text,
        "hit_speedup": round(miss_ms / _pct(hits, 50), 1) if hits else None,
    }
