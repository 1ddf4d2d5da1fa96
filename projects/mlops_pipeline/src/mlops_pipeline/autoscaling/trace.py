"""Load traces for the autoscaler: one built from the 2013 schedule, one measured from the service.

**Schedule trace.** A prediction is requested when a flight is scored, first at
`sched_dep - PREDICTION_LEAD` (2 h before departure, as the model is trained). One request per
flight would be under 1 request/s for New York's ~1,000 daily departures, so the trace has a
fan-out (`FanOut`): `clients` independent consumers (departure boards, the airline's operations
desk, passengers' apps, ...) each re-score every flight every `rescore_every_s` seconds from
`sched_dep - lead` until departure, their phases spread evenly over the period. A flight thus
sends `clients x ceil(lead / rescore_every_s)` requests, `rescore_every_s / clients` seconds
apart, and the load at any moment is (flights in their scoring window) x clients /
rescore_every_s. The defaults (100 clients, every 60 s) give ~260 requests/s at the busiest
morning of 2013 (158 flights in their window on 2013-11-27 at 07:25 New York time). Cancelled
flights are scored too: nobody knew. Requests are counted exactly per bucket (default 15 s,
the HPA's sync period) and reported as requests/s.

**Measured trace.** The benchmark (`make bench-mlops`) drives the real service and records, per
interval, the requests it answered and the CPU its process used, as the `serving` ->
`load_trace` entry of its report. `MeasuredTrace.from_json` reads that report, or a file holding
the trace document alone (format in its docstring); `MeasuredTrace.from_dict` takes the
document already parsed. `MeasuredTrace.capacity` fits CPU seconds per request, and
`ServiceCapacity` turns requests/s per pod into the two metrics the HPA sees: CPU utilisation
(% of the pod's CPU request) and the per-pod request rate (`mlops_http_requests_per_second`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_pipeline import data
from mlops_pipeline.features.schema import PREDICTION_LEAD

__all__ = [
    "ASSUMED_CAPACITY",
    "FanOut",
    "LoadTrace",
    "MeasuredTrace",
    "REQUESTS_METRIC",
    "ServiceCapacity",
    "TRACE_FORMAT",
    "busiest_day",
    "day_bounds",
    "schedule_trace",
]

REQUESTS_METRIC = "mlops_http_requests_per_second"
"""The per-pod custom metric of the design's HPA (a Prometheus recording rule)."""
TRACE_FORMAT = "mlops-load-trace/1"
SYNC_PERIOD_S = 15.0


@dataclass(frozen=True)
class LoadTrace:
    """Offered load in equal buckets: `rps[i]` requests/s during [start + i*step, + step)."""

    start: pd.Timestamp
    step_s: float
    rps: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        rps = np.asarray(self.rps, dtype=np.float64)
        if rps.ndim != 1 or rps.size == 0:
            raise ValueError("LoadTrace.rps must be a non-empty 1-d array")
        if not np.isfinite(rps).all() or (rps < 0).any():
            raise ValueError("LoadTrace.rps must be finite and >= 0")
        if not self.step_s > 0:
            raise ValueError(f"LoadTrace.step_s must be > 0, got {self.step_s}")
        object.__setattr__(self, "rps", rps)
        object.__setattr__(self, "start", data.utc(self.start))

    @property
    def duration_s(self) -> float:
        return self.step_s * len(self.rps)

    @property
    def requests(self) -> float:
        """Total requests in the trace."""
        return float(self.rps.sum() * self.step_s)

    def frame(self) -> pd.DataFrame:
        """One row per bucket: `time` (UTC bucket start), `t` (seconds from start), `rps`."""
        t = np.arange(len(self.rps)) * self.step_s
        return pd.DataFrame(
            {"time": self.start + pd.to_timedelta(t, unit="s"), "t": t, "rps": self.rps}
        )

    def resample(self, step_s: float) -> LoadTrace:
        """The same requests in buckets of `step_s`, spread evenly within each old bucket; a
        last bucket the duration does not fill is dropped."""
        if step_s == self.step_s:
            return self
        return LoadTrace(
            self.start,
            step_s,
            _rebucket(np.arange(len(self.rps) + 1) * self.step_s, self.rps * self.step_s, step_s),
            self.source,
        )


def _optional_number(doc: Mapping[str, Any], key: str) -> float | None:
    """An optional numeric field of a trace document (None when absent or null)."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key!r} must be a number, got {value!r}")
    return float(value)


def _rebucket(edges: np.ndarray, counts: np.ndarray, step_s: float) -> np.ndarray:
    """Requests/s in full `step_s` buckets from counts over [edges[i], edges[i+1])."""
    if not step_s > 0:
        raise ValueError(f"step_s must be > 0, got {step_s}")
    n = int((edges[-1] - edges[0]) // step_s + 1e-9)
    if n < 1:
        raise ValueError(f"the trace is shorter than one {step_s:g} s bucket")
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    new_edges = edges[0] + np.arange(n + 1) * step_s
    return np.diff(np.interp(new_edges, edges, cumulative)) / step_s


@dataclass(frozen=True)
class FanOut:
    """How many requests each scheduled flight causes (see the module docstring)."""

    clients: int = 100
    rescore_every_s: float = 60.0
    lead: pd.Timedelta = PREDICTION_LEAD

    def __post_init__(self) -> None:
        if not isinstance(self.clients, int) or self.clients < 1:
            raise ValueError(f"FanOut.clients must be an int >= 1, got {self.clients!r}")
        lead = pd.Timedelta(self.lead)
        object.__setattr__(self, "lead", lead)
        if lead <= pd.Timedelta(0):
            raise ValueError(f"FanOut.lead must be positive, got {lead}")
        every_ms = self.rescore_every_s * 1000
        if not self.rescore_every_s > 0 or abs(every_ms - round(every_ms)) > 1e-6:
            raise ValueError(
                f"FanOut.rescore_every_s must be > 0 in whole milliseconds, "
                f"got {self.rescore_every_s!r}"
            )

    @property
    def every_ms(self) -> int:
        return round(self.rescore_every_s * 1000)

    @property
    def lead_ms(self) -> int:
        return int(self.lead / pd.Timedelta(milliseconds=1))

    @property
    def requests_per_flight(self) -> int:
        return self.clients * math.ceil(self.lead_ms / self.every_ms)

    @property
    def rate_per_flight(self) -> float:
        """Requests/s one flight sends while in its scoring window."""
        return self.clients / self.rescore_every_s


def schedule_trace(
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    fan_out: FanOut | None = None,
    step_s: float = SYNC_PERIOD_S,
    flights: pd.DataFrame | None = None,
) -> LoadTrace:
    """Requests/s in [start, end) caused by scoring the scheduled flights (module docstring).

    `flights` (a frame with `sched_dep`, UTC) defaults to the real 2013 schedule of every flight
    whose scoring window overlaps [start, end). Request j of a flight is sent at
    sched_dep - lead + j x rescore_every_s / clients (j = 0 .. requests_per_flight - 1); counts
    per bucket are exact (integer milliseconds), not sampled.
    """
    fan_out = fan_out or FanOut()
    start, end = data.utc(start), data.utc(end)
    if end <= start:
        raise ValueError(f"schedule_trace: end {end} must be after start {start}")
    step_ms = round(step_s * 1000)
    if step_ms <= 0 or abs(step_s * 1000 - step_ms) > 1e-6:
        raise ValueError(f"schedule_trace: step_s must be > 0 in whole milliseconds: {step_s}")
    if flights is None:
        flights = data.flights(start, end + fan_out.lead)
    if "sched_dep" not in flights.columns:
        raise ValueError("schedule_trace: flights need a sched_dep column")
    sched = pd.to_datetime(flights["sched_dep"], utc=True)
    total_ms = int((end - start) / pd.Timedelta(milliseconds=1))
    if total_ms % step_ms:
        raise ValueError(f"schedule_trace: [start, end) is not a whole number of {step_s:g} s")
    n_buckets = total_ms // step_ms
    counts = np.zeros(n_buckets, dtype=np.int64)

    # First request of each flight, in ms from start.
    first_ms = ((sched - fan_out.lead - start) / pd.Timedelta(milliseconds=1)).to_numpy()
    first_ms = first_ms.astype(np.int64)
    n_per_flight = fan_out.requests_per_flight
    span = -(-fan_out.lead_ms // step_ms) + 2  # buckets a flight's window can touch
    offsets = np.arange(span + 1, dtype=np.int64)
    for chunk in np.array_split(first_ms, max(1, len(first_ms) // 2000)):
        if chunk.size == 0:
            continue
        first_bucket = np.floor_divide(chunk, step_ms)
        edge_index = first_bucket[:, None] + offsets[None, :]
        since_first = edge_index * step_ms - chunk[:, None]
        # requests sent before each edge: #{j : j x every / clients < since_first}
        sent = -np.floor_divide(-since_first * fan_out.clients, fan_out.every_ms)
        sent = np.clip(sent, 0, n_per_flight)
        per_bucket = np.diff(sent, axis=1)
        buckets = edge_index[:, :-1]
        inside = (buckets >= 0) & (buckets < n_buckets) & (per_bucket > 0)
        np.add.at(counts, buckets[inside], per_bucket[inside])
    label = (
        f"schedule {start:%Y-%m-%d %H:%M}Z+{(end - start) / pd.Timedelta(hours=1):g}h, "
        f"{fan_out.clients} clients every {fan_out.rescore_every_s:g}s"
    )
    return LoadTrace(start, step_ms / 1000, counts / (step_ms / 1000), label)


def busiest_day(tz: str = data.LOCAL_TZ) -> pd.Timestamp:
    """The local calendar day of 2013 with the most scheduled departures (2013-11-27)."""
    local = data.flights()["sched_dep"].dt.tz_convert(tz)
    counts = local.dt.normalize().value_counts()
    return counts.index[counts.argmax()]


def day_bounds(
    day: str | pd.Timestamp, tz: str = data.LOCAL_TZ
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) in UTC of the local calendar day `day` (23 or 25 h across a DST change)."""
    stamp = pd.Timestamp(day)
    local = stamp.tz_convert(tz) if stamp.tzinfo else stamp.tz_localize(tz)
    midnight = local.normalize()
    following = (midnight + pd.Timedelta(days=1, hours=2)).normalize()
    return midnight.tz_convert("UTC"), following.tz_convert("UTC")


# --- capacity and the measured trace ----------------------------------------------------------


@dataclass(frozen=True)
class ServiceCapacity:
    """What one pod of the service can do, from a measured CPU cost per request.

    `cpu_seconds_per_request`: CPU (user + system) the service process spends per answered
    request; `idle_cores`: what it burns with no traffic; `cpu_request_cores`: the pod's CPU
    request (the denominator of the HPA's utilisation); `cpu_limit_cores`: the most CPU a pod
    can use (its limit, or 1 core for a single-worker Python process). `max_rps_per_pod`, when
    measured (the rate a pod sustains within the latency SLO), overrides the CPU bound.
    """

    cpu_seconds_per_request: float
    cpu_request_cores: float = 0.5
    cpu_limit_cores: float = 1.0
    idle_cores: float = 0.0
    max_rps_per_pod: float | None = None

    def __post_init__(self) -> None:
        if not self.cpu_seconds_per_request > 0:
            raise ValueError("ServiceCapacity.cpu_seconds_per_request must be > 0")
        if not 0 < self.cpu_request_cores <= self.cpu_limit_cores:
            raise ValueError("ServiceCapacity: need 0 < cpu_request_cores <= cpu_limit_cores")
        if not 0 <= self.idle_cores < self.cpu_limit_cores:
            raise ValueError("ServiceCapacity: need 0 <= idle_cores < cpu_limit_cores")
        if self.max_rps_per_pod is not None and not self.max_rps_per_pod > 0:
            raise ValueError("ServiceCapacity.max_rps_per_pod must be > 0")

    @property
    def capacity_rps(self) -> float:
        """Requests/s one ready pod can answer."""
        by_cpu = (self.cpu_limit_cores - self.idle_cores) / self.cpu_seconds_per_request
        return by_cpu if self.max_rps_per_pod is None else min(by_cpu, self.max_rps_per_pod)

    def served_rps(self, offered_rps_per_pod: np.ndarray | float) -> np.ndarray | float:
        """The custom metric: requests/s a pod answers (it cannot answer more than capacity)."""
        return np.minimum(offered_rps_per_pod, self.capacity_rps)

    def cpu_utilisation(self, offered_rps_per_pod: np.ndarray | float) -> np.ndarray | float:
        """The resource metric: CPU used as % of the pod's request (saturates at the limit)."""
        cores = (
            self.idle_cores + self.served_rps(offered_rps_per_pod) * self.cpu_seconds_per_request
        )
        return np.minimum(cores, self.cpu_limit_cores) / self.cpu_request_cores * 100.0

    def rps_at_utilisation(self, percent: float) -> float:
        """Requests/s per pod at which CPU utilisation reaches `percent` of the request."""
        return max(0.0, (percent / 100 * self.cpu_request_cores - self.idle_cores)) / (
            self.cpu_seconds_per_request
        )


ASSUMED_CAPACITY = ServiceCapacity(cpu_seconds_per_request=0.010)
"""A placeholder until the benchmark measures it: 10 ms of CPU per prediction (HTTP, a Feast
online lookup of ~2 ms, the model); a 0.5-core request, the prod overlay's (500m in
deploy/k8s/overlays/prod); a 1-core limit: the overlay allows 2 cores, but the service is one
uvicorn worker process, which uses about one core at most. So 100 requests/s per pod, and 70 %
CPU at 35 requests/s: below the HPA's 40 requests/s target, so with this capacity CPU asks for at
least as many pods as the request rate and the request rate decides no scale event (it would
if a request cost under 0.7 x 0.5 cores / 40 requests/s = 8.75 ms of CPU)."""


@dataclass(frozen=True)
class MeasuredTrace:
    """Requests and CPU of the real service during a load test, read from the benchmark's JSON.

    The file (UTF-8 JSON, written by the lead's benchmark)::

        {
          "format": "mlops-load-trace/1",
          "cpu_request_cores": 0.5,        # optional: the pod request to assume
          "cpu_limit_cores": 1.0,          # optional: cores the process could use
          "max_rps_at_slo": 180.0,         # optional: highest rate with p99 <= 25 ms
          "meta": {...},                   # optional: machine, command, model version, ...
          "samples": [
            {"t": 1.0, "rps": 52.0, "cpu_seconds": 0.41},
            ...
          ]
        }

    Each sample covers the interval (previous t, t], the first one (0, t]: `t` is seconds since
    the load test started (strictly increasing), `rps` the responses the service completed in
    the interval divided by its length, `cpu_seconds` the CPU time (user + system) the service
    process and its children used in that same interval (a difference of cumulative counters,
    e.g. psutil's `cpu_times()`). Extra keys are kept in `meta`.
    """

    t: np.ndarray
    rps: np.ndarray
    cpu_seconds: np.ndarray
    cpu_request_cores: float | None = None
    cpu_limit_cores: float | None = None
    max_rps_at_slo: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t, rps, cpu = (
            np.asarray(a, dtype=np.float64) for a in (self.t, self.rps, self.cpu_seconds)
        )
        if not (t.ndim == rps.ndim == cpu.ndim == 1) or not (len(t) == len(rps) == len(cpu)):
            raise ValueError(
                "MeasuredTrace: t, rps and cpu_seconds must be equally long 1-d arrays"
            )
        if len(t) < 2:
            raise ValueError("MeasuredTrace: need at least two samples")
        if not (np.isfinite(t).all() and np.isfinite(rps).all() and np.isfinite(cpu).all()):
            raise ValueError("MeasuredTrace: samples must be finite numbers")
        if t[0] <= 0 or (np.diff(t) <= 0).any():
            raise ValueError("MeasuredTrace: t must be > 0 and strictly increasing")
        if (rps < 0).any() or (cpu < 0).any():
            raise ValueError("MeasuredTrace: rps and cpu_seconds must be >= 0")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "rps", rps)
        object.__setattr__(self, "cpu_seconds", cpu)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "load trace") -> MeasuredTrace:
        """Check a parsed trace document (the format above); errors start with `source` (a
        file name, or where in a report the document was) and say what is wrong."""
        if not isinstance(doc, Mapping):
            raise ValueError(f"{source}: a load trace is a JSON object, got {type(doc).__name__}")
        if doc.get("format") != TRACE_FORMAT:
            raise ValueError(
                f"{source}: not a {TRACE_FORMAT!r} document (format={doc.get('format')!r})"
            )
        samples = doc.get("samples")
        if not isinstance(samples, list) or not samples:
            raise ValueError(f"{source}: 'samples' must be a non-empty list")
        try:
            t = [float(s["t"]) for s in samples]
            rps = [float(s["rps"]) for s in samples]
            cpu = [float(s["cpu_seconds"]) for s in samples]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{source}: every sample needs numeric t, rps, cpu_seconds ({exc!r})"
            ) from None
        meta = doc.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise ValueError(f"{source}: 'meta' must be an object, got {type(meta).__name__}")
        try:
            return cls(
                t,
                rps,
                cpu,
                cpu_request_cores=_optional_number(doc, "cpu_request_cores"),
                cpu_limit_cores=_optional_number(doc, "cpu_limit_cores"),
                max_rps_at_slo=_optional_number(doc, "max_rps_at_slo"),
                meta=dict(meta),
            )
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> MeasuredTrace:
        """Read a trace file: the trace document itself, or a benchmark report (bench-results/
        mlops_pipeline.json) that holds it at `serving.load_trace`. Errors name the file, the
        place in it, and what is wrong."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read a load trace: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: a load trace is a JSON object, got {type(doc).__name__}")
        if "format" in doc or "samples" in doc:
            return cls.from_dict(doc, source=str(path))
        serving = doc.get("serving")
        if isinstance(serving, dict) and "load_trace" in serving:
            return cls.from_dict(serving["load_trace"], source=f"{path} (serving.load_trace)")
        found = "a 'serving' entry without 'load_trace'" if serving else f"keys {sorted(doc)}"
        raise ValueError(
            f"{path}: neither a {TRACE_FORMAT!r} document nor a benchmark report with "
            f"serving.load_trace (found {found}); `make bench-mlops` writes one (its serving "
            "benchmark records the trace), or pass the trace document itself"
        )

    def to_dict(self) -> dict[str, Any]:
        """The trace document `from_dict` reads."""
        doc: dict[str, Any] = {"format": TRACE_FORMAT}
        for key in ("cpu_request_cores", "cpu_limit_cores", "max_rps_at_slo"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        doc["meta"] = dict(self.meta)
        doc["samples"] = [
            {"t": float(t), "rps": float(r), "cpu_seconds": float(c)}
            for t, r, c in zip(self.t, self.rps, self.cpu_seconds, strict=True)
        ]
        return doc

    def to_json(self, path: str | Path) -> Path:
        """Write the trace document (`to_dict`) as a file `from_json` reads."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @property
    def durations(self) -> np.ndarray:
        return np.diff(np.concatenate([[0.0], self.t]))

    def fit(self) -> tuple[float, float]:
        """(CPU seconds per request, idle cores) by least squares of CPU cores used on
        requests/s over the intervals, weighted by their length; the load test must hold at
        least two different rates, else idle is taken as 0."""
        dt = self.durations
        cores = self.cpu_seconds / dt
        if np.ptp(self.rps) <= 1e-9:
            requests = float((self.rps * dt).sum())
            if requests <= 0:
                raise ValueError("MeasuredTrace.fit: no requests were answered")
            return float(self.cpu_seconds.sum() / requests), 0.0
        w = np.sqrt(dt)
        design = np.column_stack([self.rps, np.ones_like(self.rps)])
        (per_request, idle), *_ = np.linalg.lstsq(design * w[:, None], cores * w, rcond=None)
        if idle < 0:  # noise: refit through the origin
            per_request = float((cores * self.rps * dt).sum() / (self.rps**2 * dt).sum())
            idle = 0.0
        if not per_request > 0:
            raise ValueError("MeasuredTrace.fit: CPU does not grow with the request rate")
        return float(per_request), float(idle)

    def capacity(
        self, cpu_request_cores: float | None = None, cpu_limit_cores: float | None = None
    ) -> ServiceCapacity:
        """The ServiceCapacity the measurement implies (arguments override the file)."""
        per_request, idle = self.fit()
        request = cpu_request_cores or self.cpu_request_cores or 0.5
        limit = cpu_limit_cores or self.cpu_limit_cores or max(1.0, request)
        return ServiceCapacity(
            cpu_seconds_per_request=per_request,
            cpu_request_cores=request,
            cpu_limit_cores=limit,
            idle_cores=min(idle, limit * 0.99),
            max_rps_per_pod=self.max_rps_at_slo,
        )

    def load_trace(
        self, step_s: float = SYNC_PERIOD_S, start: str | pd.Timestamp = "2013-01-01"
    ) -> LoadTrace:
        """The measured requests as a LoadTrace in `step_s` buckets (for a replay), spread
        evenly within each sample; a last bucket the test does not fill is dropped."""
        edges = np.concatenate([[0.0], self.t])
        return LoadTrace(
            start, step_s, _rebucket(edges, self.rps * self.durations, step_s), "measured"
        )
