"""Replay a load trace through the HPA's control loop, with the delays a real cluster has.

Every sync period (15 s) the simulated cluster serves that bucket's load with its ready pods,
then the controller reconciles on what its metrics pipeline shows: per-pod values averaged over
`metric_window_s` (Prometheus' rate[1m]) and `scrape_lag_s` old (scrape interval + recording
rule + adapter). A new pod answers only after `pod_startup_s` (scheduling, the image, loading
the model and the feature store until /readyz says 200). Until then it is set aside as Pending;
once ready, its CPU sample is set aside and its request-rate series counts as missing until the
lagged metric window lies wholly after its ready time - the treatments
`hpa.replicas_for_metric` applies. All pods with a sample report the same per-pod average
(load spreads evenly), and both metrics share one pipeline delay (a simplification: in a
cluster CPU comes from metrics-server, the request rate from Prometheus and an adapter). A
scale-down removes starting pods first, then the newest ready ones (the ReplicaSet's order).

Load spreads evenly over ready pods; what exceeds their capacity is overload (requests that
queue past the latency SLO or fail). Both metrics see only what pods answer, so under overload
they understate demand - as in production. The frame has one row per tick; `replay_summary`
condenses it to cost (pod-hours) and harm (overload seconds and requests), scale events and
flaps. `policy_comparison` replays variants of one HPA - normally the deployed manifest, read
with `HPASpec.from_manifest` - that differ only in their metrics and scale-down window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from mlops_pipeline.autoscaling.hpa import (
    DEFAULT_DOWNSCALE_STABILIZATION_S,
    HorizontalPodAutoscaler,
    HPABehavior,
    HPAScalingRules,
    HPASpec,
    MetricSpec,
    PodMetric,
)
from mlops_pipeline.autoscaling.trace import (
    ASSUMED_CAPACITY,
    REQUESTS_METRIC,
    LoadTrace,
    ServiceCapacity,
)

__all__ = [
    "ReplayConfig",
    "design_spec",
    "metric_label",
    "policy_comparison",
    "policy_variants",
    "replay",
    "replay_static",
    "replay_summary",
    "with_metrics",
    "with_scale_down_window",
]


@dataclass(frozen=True)
class ReplayConfig:
    """The cluster around the controller; times in seconds."""

    sync_period_s: float = 15.0
    scrape_lag_s: float = 30.0
    metric_window_s: float = 60.0
    pod_startup_s: float = 60.0
    initial_replicas: int | None = None
    flap_window_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.sync_period_s > 0:
            raise ValueError("ReplayConfig.sync_period_s must be > 0")
        for name in ("scrape_lag_s", "metric_window_s", "pod_startup_s", "flap_window_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"ReplayConfig.{name} must be >= 0")
        if self.initial_replicas is not None and self.initial_replicas < 0:
            raise ValueError("ReplayConfig.initial_replicas must be >= 0")


def design_spec(
    min_replicas: int = 2,
    max_replicas: int = 10,
    cpu_target: int | None = 70,
    rps_target: float | None = 40.0,
    scale_down_window_s: int = 300,
) -> HPASpec:
    """The design's HPA (CPU 70 %, 40 requests/s per pod, 2-10 pods, 300 s scale-down window)
    with the API's default scaling policies; leave a target None to drop that metric.

    Not the deployed HPA, whose `behavior` sets scaling policies of its own
    (deploy/k8s/base/hpa.yaml): replay that one with `HPASpec.from_manifest` of the rendered
    overlay (`kubectl kustomize deploy/k8s/overlays/prod`, for its min and max).
    """
    metrics = []
    if cpu_target is not None:
        metrics.append(MetricSpec("Resource", "cpu", cpu_target))
    if rps_target is not None:
        metrics.append(MetricSpec("Pods", REQUESTS_METRIC, rps_target))
    behavior = HPABehavior(
        scale_down=HPAScalingRules(stabilization_window_seconds=scale_down_window_s)
    )
    return HPASpec(
        max_replicas=max_replicas, min_replicas=min_replicas, metrics=metrics, behavior=behavior
    )


def replay(
    trace: LoadTrace,
    spec: HPASpec,
    capacity: ServiceCapacity = ASSUMED_CAPACITY,
    config: ReplayConfig | None = None,
) -> pd.DataFrame:
    """One row per sync period: the load, the pods, what the controller saw and decided.

    Columns: `t` (s), `time`, `load_rps`, `replicas` (pods existing, starting ones included),
    `ready`, `rps_per_pod` and `cpu_pct` (what each ready pod answers and uses), `overload_rps`
    (load beyond the ready pods' capacity), `saturation` (load / capacity), `seen_rps_per_pod`
    and `seen_cpu_pct` (the lagged metrics; NaN before any), `proposed` (the metrics' replica
    count, -1 when none), `desired` (what the HPA set for the next tick), `reason`, and
    `metric` (the MetricSpec.name whose proposal was the largest - the first listed on a tie -
    or "" when none was usable).
    """
    return _simulate(trace, capacity, config or ReplayConfig(), HorizontalPodAutoscaler(spec))


def replay_static(
    trace: LoadTrace,
    replicas: int,
    capacity: ServiceCapacity = ASSUMED_CAPACITY,
    config: ReplayConfig | None = None,
) -> pd.DataFrame:
    """The same frame for a fixed number of pods, all ready from the start (the baseline)."""
    if replicas < 1:
        raise ValueError(f"replay_static: replicas must be >= 1, got {replicas}")
    config = config or ReplayConfig()
    fixed = ReplayConfig(
        sync_period_s=config.sync_period_s,
        scrape_lag_s=config.scrape_lag_s,
        metric_window_s=config.metric_window_s,
        pod_startup_s=config.pod_startup_s,
        initial_replicas=replicas,
        flap_window_s=config.flap_window_s,
    )
    return _simulate(trace, capacity, fixed, None)


def _simulate(
    trace: LoadTrace,
    capacity: ServiceCapacity,
    config: ReplayConfig,
    hpa: HorizontalPodAutoscaler | None,
) -> pd.DataFrame:
    trace = trace.resample(config.sync_period_s)
    step = trace.step_s
    n = len(trace.rps)
    lag = int(round(config.scrape_lag_s / step))
    window = max(1, int(round(config.metric_window_s / step)))
    startup = config.pod_startup_s
    start_count = config.initial_replicas
    if start_count is None:
        start_count = hpa.spec.min_replicas if hpa else 1
    pods: list[float] = [-startup] * start_count  # creation times; these are ready at t = 0
    cap = capacity.capacity_rps
    metrics = hpa.spec.metrics if hpa else ()

    columns: dict[str, np.ndarray] = {
        name: np.full(n, np.nan)
        for name in (
            "replicas", "ready", "rps_per_pod", "cpu_pct", "overload_rps", "saturation",
            "seen_rps_per_pod", "seen_cpu_pct", "proposed", "desired",
        )
    }  # fmt: skip
    reasons: list[str] = []
    deciding: list[str] = []
    for i in range(n):
        t = i * step
        load = float(trace.rps[i])
        ready = sum(1 for created in pods if t >= created + startup)
        offered = load / ready if ready else np.inf
        columns["replicas"][i] = len(pods)
        columns["ready"][i] = ready
        if ready:
            columns["rps_per_pod"][i] = capacity.served_rps(offered)
            columns["cpu_pct"][i] = capacity.cpu_utilisation(offered)
        columns["overload_rps"][i] = max(0.0, load - ready * cap)
        columns["saturation"][i] = load / (ready * cap) if ready else (np.inf if load else 0.0)
        if hpa is None:
            columns["desired"][i] = len(pods)
            reasons.append("Static")
            deciding.append("")
            continue

        seen_at = i - lag
        seen_rps = seen_cpu = np.nan
        if seen_at >= 0:
            span = slice(max(0, seen_at - window + 1), seen_at + 1)
            if np.isfinite(columns["rps_per_pod"][span]).any():
                seen_rps = float(np.nanmean(columns["rps_per_pod"][span]))
                seen_cpu = float(np.nanmean(columns["cpu_pct"][span]))
        columns["seen_rps_per_pod"][i] = seen_rps
        columns["seen_cpu_pct"][i] = seen_cpu
        window_start = (seen_at - window + 1) * step
        samples = _samples(metrics, pods, t, window_start, startup, seen_rps, seen_cpu)
        decision = hpa.reconcile(t, len(pods), samples)
        columns["proposed"][i] = -1 if decision.proposed is None else decision.proposed
        columns["desired"][i] = decision.desired
        reasons.append(decision.reason)
        deciding.append(decision.metric or "")
        pods = _rescale(pods, decision.desired, t, startup)

    frame = pd.DataFrame(columns)
    for name in ("replicas", "ready", "desired"):
        frame[name] = frame[name].astype(np.int64)
    frame["proposed"] = frame["proposed"].fillna(-1).astype(np.int64)
    frame.insert(0, "load_rps", trace.rps)
    frame.insert(0, "time", trace.start + pd.to_timedelta(np.arange(n) * step, unit="s"))
    frame.insert(0, "t", np.arange(n) * step)
    frame["reason"] = reasons
    frame["metric"] = deciding
    frame.attrs.update(step_s=step, flap_window_s=config.flap_window_s, source=trace.source)
    return frame


def _samples(
    metrics: tuple[MetricSpec, ...],
    pods: list[float],
    now: float,
    window_start: float,
    startup: float,
    seen_rps: float,
    seen_cpu: float,
) -> Mapping[str, list[PodMetric]]:
    """Each metric's pod samples as the metrics APIs would return them at `now`.

    A pod still starting is Pending (set aside). A ready pod whose metric window began before
    it was ready has no trustworthy sample yet: for CPU the controller sets it aside (its
    sample predates readiness + the metric window), for the request rate the adapter has no
    complete series (missing). Every other pod reports the window's per-pod average.
    """
    out: dict[str, list[PodMetric]] = {}
    have = np.isfinite(seen_rps)
    for metric in metrics:
        is_cpu = metric.kind == "Resource"
        value = seen_cpu if is_cpu else seen_rps
        samples = []
        for created in pods:
            ready_at = created + startup
            if now < ready_at:
                samples.append(PodMetric(None, ready=False))
            elif not have or window_start < ready_at:
                samples.append(PodMetric(0.0, ready=False) if is_cpu else PodMetric(None))
            else:
                samples.append(PodMetric(value))
        out[metric.name] = samples
    return out


def _rescale(pods: list[float], desired: int, now: float, startup: float) -> list[float]:
    """Add pods created now, or remove starting pods first, then the newest ready ones."""
    if desired > len(pods):
        return pods + [now] * (desired - len(pods))
    if desired < len(pods):
        # Unready before ready, then the most recently created first.
        order = sorted(pods, key=lambda created: (now >= created + startup, -created))
        removed = len(pods) - desired
        return sorted(order[removed:])
    return pods


def replay_summary(frame: pd.DataFrame, flap_window_s: float | None = None) -> dict[str, float]:
    """Cost and harm of one replay.

    pod_hours (pods existing, starting ones included - they are billed), overload_seconds (ticks
    with load beyond the ready pods' capacity x the tick), overload_requests and overload_share
    (of all requests), scale_events / scale_ups / scale_downs (ticks where the controller
    changed the count), flaps (scale events reversing the previous event's direction within
    `flap_window_s`, default the replay's 600 s), max/mean replicas, peak load and the mean
    CPU of ready pods.
    """
    step = float(frame.attrs.get("step_s", np.diff(frame["t"].to_numpy()[:2])[0]))
    window = flap_window_s if flap_window_s is not None else frame.attrs.get("flap_window_s", 600)
    change = frame["desired"].to_numpy() - frame["replicas"].to_numpy()
    event_times = frame["t"].to_numpy()[change != 0]
    directions = np.sign(change[change != 0])
    reversals = (directions[1:] != directions[:-1]) & (np.diff(event_times) <= window)
    requests = float(frame["load_rps"].sum() * step)
    overload = float(frame["overload_rps"].sum() * step)
    ready_cpu = frame["cpu_pct"].to_numpy()
    weights = frame["ready"].to_numpy()
    return {
        "duration_h": len(frame) * step / 3600,
        "requests": requests,
        "peak_rps": float(frame["load_rps"].max()),
        "pod_hours": float(frame["replicas"].sum() * step / 3600),
        "overload_seconds": float((frame["overload_rps"] > 0).sum() * step),
        "overload_requests": overload,
        "overload_share": overload / requests if requests else 0.0,
        "scale_events": int((change != 0).sum()),
        "scale_ups": int((change > 0).sum()),
        "scale_downs": int((change < 0).sum()),
        "flaps": int(reversals.sum()),
        "max_replicas": int(frame["replicas"].max()),
        "mean_replicas": float(frame["replicas"].mean()),
        "mean_cpu_pct": float(np.nansum(ready_cpu * weights) / max(weights.sum(), 1)),
    }


def metric_label(metric: MetricSpec) -> str:
    """A short name for a table row: the resource ("cpu"), "rps" for the request rate, else the
    metric's name."""
    if metric.kind == "Resource":
        return metric.name
    return "rps" if metric.name == REQUESTS_METRIC else metric.name


def with_scale_down_window(spec: HPASpec, seconds: int) -> HPASpec:
    """`spec` with another scaleDown.stabilizationWindowSeconds; its scale-down policies,
    selectPolicy and tolerance, and everything else, unchanged."""
    down = spec.behavior.scale_down or HPAScalingRules()
    behavior = replace(
        spec.behavior, scale_down=replace(down, stabilization_window_seconds=seconds)
    )
    return replace(spec, behavior=behavior)


def with_metrics(spec: HPASpec, names: Sequence[str]) -> HPASpec:
    """`spec` scaling on the named metrics only (MetricSpec.name), in its own order."""
    unknown = set(names) - {m.name for m in spec.metrics}
    if unknown:
        raise ValueError(f"with_metrics: {sorted(unknown)} not among the spec's metrics")
    return replace(spec, metrics=tuple(m for m in spec.metrics if m.name in names))


def policy_variants(base: HPASpec) -> dict[str, HPASpec]:
    """The policies worth comparing, all derived from `base` (its bounds, tolerance and
    scaling policies kept): each metric alone without a scale-down window and with the base's
    window (300 s when the base has none), then - for several metrics - all of them with that
    window, which is `base` itself when it has one. Keys name the variant, e.g.
    "cpu, no window", "cpu+rps, 300 s window"."""
    _, down = base.behavior.resolved(base.downscale_stabilization_s, base.tolerance)
    window = down.stabilization_window_seconds or DEFAULT_DOWNSCALE_STABILIZATION_S
    variants: dict[str, HPASpec] = {}
    for metric in base.metrics:
        alone = with_metrics(base, [metric.name])
        variants[f"{metric_label(metric)}, no window"] = with_scale_down_window(alone, 0)
        variants[f"{metric_label(metric)}, {window} s window"] = with_scale_down_window(
            alone, window
        )
    if len(base.metrics) > 1:
        everything = "+".join(metric_label(m) for m in base.metrics)
        variants[f"{everything}, {window} s window"] = with_scale_down_window(base, window)
    return variants


def policy_comparison(
    trace: LoadTrace,
    capacity: ServiceCapacity = ASSUMED_CAPACITY,
    config: ReplayConfig | None = None,
    base: HPASpec | None = None,
) -> pd.DataFrame:
    """replay_summary for each of `policy_variants(base)`, one row each (index: the variant),
    and a last row for `base.max_replicas` static pods.

    `base` defaults to `design_spec()`, which has the API's default scaling policies; pass the
    deployed HPA (`HPASpec.from_manifest`) to compare variants of what would really run.
    """
    config = config or ReplayConfig()
    base = base if base is not None else design_spec()
    rows = {
        name: replay_summary(replay(trace, spec, capacity, config))
        for name, spec in policy_variants(base).items()
    }
    rows[f"static {base.max_replicas}"] = replay_summary(
        replay_static(trace, base.max_replicas, capacity, config)
    )
    return pd.DataFrame.from_dict(rows, orient="index")
