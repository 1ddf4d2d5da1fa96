"""An open-loop HTTP/1.1 load generator: requests leave on a schedule, not when the last returns.

Closed-loop tools (wrk, ab, a loop of `httpx.post`) send the next request only after a response;
when the server stalls they stall with it, send fewer requests and so never record the latency a
real client would have seen ("coordinated omission"). Here request i is *scheduled* at
`start + i / rate` and its latency is measured from that scheduled time, so a server that falls
behind shows up as growing latency and, eventually, as timeouts and a lower achieved rate.

To offer several thousand requests/s from one Python process the request bytes are encoded once,
sent over keep-alive connections with raw asyncio streams, and the response is parsed only as far
as the status line and the body length. Each scheduled request goes to an idle connection; when
none is idle a new one is opened, up to `max_connections`; beyond that it waits in a queue (its
clock is already running).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import numpy as np

# Outcome codes for requests that got no HTTP status.
TIMEOUT = -1  # no full response before the deadline (scheduled time + timeout)
CONNECT_ERROR = -2  # could not open a connection (refused, unreachable)
IO_ERROR = -3  # the connection broke mid-request (reset, EOF, garbled response)
_UNSET = 0
_OUTCOME_NAMES = {TIMEOUT: "timeout", CONNECT_ERROR: "connect_error", IO_ERROR: "io_error"}


@dataclass(frozen=True)
class Endpoint:
    """Where the requests go: host, port and path of a plain-http URL."""

    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need a plain http://host:port/path URL, got {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(parts.hostname, parts.port or 80, path)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def encode_request(
    endpoint: Endpoint,
    body: bytes | None = None,
    *,
    method: str = "POST",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> bytes:
    """The complete HTTP/1.1 request as bytes, encoded once and written as-is for every request."""
    lines = [f"{method} {endpoint.path} HTTP/1.1", f"Host: {endpoint.host}:{endpoint.port}"]
    if body is not None:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def json_body(payload: object) -> bytes:
    """Compact JSON, as a client library would send it."""
    return json.dumps(payload, separators=(",", ":")).encode()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return (status, connection still usable). Parses only what it must."""
    head = await reader.readuntil(b"\r\n\r\n")
    first = head[: head.find(b"\r\n")].split(b" ", 2)
    if len(first) < 2 or not first[0].startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x response: {bytes(head[:40])!r}")
    status = int(first[1])
    lower = head.lower()
    keep = b"\r\nconnection: close" not in lower and first[0] != b"HTTP/1.0"
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.find(b"\r\n", at + 2)
        length = int(lower[at + 17 : end])
        if length:
            await reader.readexactly(length)
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # chunk + CRLF (the last one: just CRLF)
            if size == 0:
                break
    elif status >= 200 and status not in (204, 304):
        await reader.read()  # body delimited by connection close
        keep = False
    return status, keep


@dataclass(frozen=True)
class LoadResult:
    """One constant-rate step. Latencies (ms) cover every request that got an HTTP response."""

    url: str
    offered_rps: float
    achieved_rps: float  # 2xx responses per second of the measured window (incl. the drain)
    duration_s: float  # first scheduled send to last response of the measured requests
    count: int  # requests scheduled in the measured window
    ok: int  # 2xx responses
    errors: int  # non-2xx + connection errors + timeouts
    error_rate: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    outcomes: dict[str, int] = field(default_factory=dict)  # "200": n, "timeout": n, ...
    connections: int = 0  # connections opened (warm-up and reconnects after errors included)
    send_lag_p99_ms: float = 0.0  # scheduled -> written: queueing for a connection, or a busy CPU
    generator_cpu: float = 0.0  # CPU seconds of this process / wall seconds (1.0 = one core)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe: infinities (no responses at all) become None."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LoadResult:
        return cls(**{k: (math.inf if v is None else v) for k, v in data.items()})


class _Run:
    """State of one run: a scheduler feeding a queue and one worker task per connection."""

    def __init__(
        self,
        endpoint: Endpoint,
        request: bytes,
        rate: float,
        n_warm: int,
        n_total: int,
        timeout: float,
        max_connections: int,
    ) -> None:
        self.endpoint, self.request, self.rate = endpoint, request, rate
        self.n_warm, self.n_total = n_warm, n_total
        self.timeout, self.max_connections = timeout, max_connections
        self.status = [_UNSET] * n_total
        self.sched = [0.0] * n_total
        self.done_at = [math.nan] * n_total
        self.sent_at = [math.nan] * n_total
        self.queue: deque[int] = deque()
        self.waiters: deque[asyncio.Future[None]] = deque()  # idle workers
        self.workers: list[asyncio.Task[None]] = []
        self.connections = 0
        self.outstanding = 0
        self.finished = asyncio.Event()  # set once everything is scheduled and answered
        self.scheduled_all = False
        self.closing = False

    def _submit(self, i: int) -> None:
        self.queue.append(i)
        self.outstanding += 1
        if self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        elif len(self.workers) < self.max_connections:
            self.workers.append(asyncio.create_task(self._worker()))

    async def schedule(self) -> None:
        clock = time.perf_counter
        interval = 1.0 / self.rate
        start = clock() + 0.005
        i = 0
        while i < self.n_total:
            due = start + i * interval
            now = clock()
            if due > now:
                await asyncio.sleep(due - now)
                now = clock()
            # Release everything that is due: the event loop wakes about once per millisecond.
            while i < self.n_total and start + i * interval <= now:
                self.sched[i] = start + i * interval
                self._submit(i)
                i += 1
        self.scheduled_all = True
        if self.outstanding == 0:
            self.finished.set()

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        clock = time.perf_counter
        try:
            while not self.closing:
                if not self.queue:
                    waiter = loop.create_future()
                    self.waiters.append(waiter)
                    await waiter
                    continue
                i = self.queue.popleft()
                outcome = IO_ERROR
                keep = False
                try:
                    remaining = self.sched[i] + self.timeout - clock()
                    async with asyncio.timeout(max(remaining, 0.0)):
                        if writer is None:
                            outcome = CONNECT_ERROR
                            reader, writer = await asyncio.open_connection(
                                self.endpoint.host, self.endpoint.port
                            )
                            self.connections += 1
                            outcome = IO_ERROR
                        self.sent_at[i] = clock()
                        writer.write(self.request)
                        outcome, keep = await _read_response(reader)
                except TimeoutError:
                    outcome = TIMEOUT
                except Exception:  # any other failure of this request is an error outcome
                    keep = False
                self.done_at[i] = clock()
                self.status[i] = outcome
                if not keep and writer is not None:
                    writer.close()
                    reader = writer = None
                self.outstanding -= 1
                if self.outstanding == 0 and self.scheduled_all:
                    self.finished.set()
        finally:
            if writer is not None:
                writer.close()

    async def shutdown(self) -> None:
        self.closing = True
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)


def _summarise(run: _Run, url: str, cpu_s: float, wall_s: float) -> LoadResult:
    lo = run.n_warm
    status = np.asarray(run.status[lo:], dtype=np.int64)
    status[status == _UNSET] = TIMEOUT  # never completed: the run ended first
    sched = np.asarray(run.sched[lo:])
    done = np.asarray(run.done_at[lo:])
    sent = np.asarray(run.sent_at[lo:])
    count = len(status)
    responded = status > 0
    ok_mask = (status >= 200) & (status < 300)
    ok = int(ok_mask.sum())
    lat = (done[responded] - sched[responded]) * 1000.0
    if lat.size:
        p50, p90, p95, p99 = np.percentile(lat, [50, 90, 95, 99]).tolist()
        mx, mean = float(lat.max()), float(lat.mean())
    else:
        p50 = p90 = p95 = p99 = mx = mean = math.inf
    finished = done[np.isfinite(done)]
    nominal = count / run.rate
    duration = float(finished.max() - sched[0]) if finished.size and count else nominal
    duration = max(duration, nominal)
    lag = (sent - sched)[np.isfinite(sent)] * 1000.0
    outcomes = Counter(_OUTCOME_NAMES.get(int(s), str(int(s))) for s in status)
    return LoadResult(
        url=url,
        offered_rps=run.rate,
        achieved_rps=ok / duration if duration > 0 else 0.0,
        duration_s=duration,
        count=count,
        ok=ok,
        errors=count - ok,
        error_rate=(count - ok) / count if count else 0.0,
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=mx,
        mean_ms=mean,
        outcomes=dict(sorted(outcomes.items())),
        connections=run.connections,
        send_lag_p99_ms=float(np.percentile(lag, 99)) if lag.size else 0.0,
        generator_cpu=cpu_s / wall_s if wall_s > 0 else 0.0,
    )


async def open_loop(
    url: str,
    request: bytes,
    rate: float,
    duration: float,
    *,
    warmup: float = 0.0,
    timeout: float = 2.0,
    max_connections: int = 256,
) -> LoadResult:
    """Offer `rate` requests/s for `warmup` + `duration` seconds; report the last `duration`.

    The warm-up runs at the same rate on the same connections (so they are open and the server's
    caches are hot) and is left out of every number. Every request ends within `timeout` seconds of
    its scheduled time, so a dead or hung server costs at most `timeout` after the schedule ends.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    n_warm = int(round(rate * warmup))
    n_total = n_warm + max(1, int(round(rate * duration)))
    run = _Run(Endpoint.parse(url), request, rate, n_warm, n_total, timeout, max_connections)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        await run.schedule()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.finished.wait(), timeout + 1.0)
    finally:
        await run.shutdown()
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    return _summarise(run, url, cpu_s, wall_s)


def _loop_factory():  # pragma: no cover - trivial
    """uvloop when installed (it ships with uvicorn[standard]): roughly twice the request rate."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run_open_loop(
    url: str,
    request: bytes,
    rate: float,
    duration: float,
    *,
    warmup: float = 0.0,
    timeout: float = 2.0,
    max_connections: int = 256,
) -> LoadResult:
    """Blocking wrapper around `open_loop` on a fresh event loop."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(
            open_loop(
                url,
                request,
                rate,
                duration,
                warmup=warmup,
                timeout=timeout,
                max_connections=max_connections,
            )
        )
