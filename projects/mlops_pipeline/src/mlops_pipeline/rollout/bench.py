"""A rollout rehearsal on one machine, and the benchmark that measures it.

`rollout_stack` starts what a canary needs around a pipeline home: the stable (champion) and
canary (challenger) services as processes, Prometheus scraping both with `role` labels, and the
nginx router in front; it stops all of them when the block ends, also on failure.
`measure_canary` runs two rollouts through it with real flight requests at a steady rate:
a challenger with a feature bug (how long until weight 0, what share of requests it answered)
and a healthy retrained challenger (how long until 100 % and the alias moves).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_pipeline.paths import Paths
from mlops_pipeline.rollout.analysis import Thresholds
from mlops_pipeline.rollout.controller import (
    CanaryController,
    CanaryRegistry,
    RolloutResult,
    smoke_metrics,
)
from mlops_pipeline.rollout.processes import ServiceProcess, launch_service, wait_ready
from mlops_pipeline.rollout.prometheus import PrometheusServer
from mlops_pipeline.rollout.router import Router
from mlops_pipeline.rollout.traffic import LoadGenerator, TrafficReport, flight_requests
from mlops_pipeline.training.tracking import store_uri

__all__ = [
    "LOCAL_THRESHOLDS",
    "RolloutStack",
    "measure_canary",
    "rollout_stack",
    "summarise",
]

WARMUP = 20
"""Requests each fresh service answers before Prometheus starts (see `rollout_stack`)."""
LOCAL_STEPS = (3, 10, 25, 50, 100)
"""A 3 % first step: the analysis needs 50 canary requests before it judges anything, so the
first step's weight is about the share of requests a bad challenger answers (a 5 % step
measured 4.8-6.9 % over five runs, against a target of at most 5 %). At the rehearsal's 60
requests/s the 3 % step collects its 50 requests in ~30 s (a 2 % step took 77 s on a loaded
machine, the window barely holding 50); a cluster with real traffic gets them at 5 % in
seconds, which is why the Argo Rollout keeps 5/25/50/100."""
LOCAL_THRESHOLDS = Thresholds(max_p99_seconds=0.25, p99_slack_seconds=0.05)
"""The design's thresholds with latency relaxed to 250 ms (+50 ms slack on the relative check).

The production SLO (p99 <= 25 ms) is for a replica with its own cores. Here two Python services,
nginx, Prometheus and the load generator share 2 cores: a service that answers sequential
requests in 13-19 ms showed a p99 of 40-190 ms at 20-40 requests/s (measured), which would roll
back a healthy challenger for the machine's sake. Error rate and score shift keep their
production values. The latency rules are graded with the design's numbers by checkpoint 2.6's
tests and exercised end to end against a slow stand-in in tests/test_rollout_controller.py.
"""


@dataclass
class RolloutStack:
    """The running pieces of one rehearsal."""

    paths: Paths
    state_dir: Path
    stable: ServiceProcess
    canary: ServiceProcess
    prometheus: PrometheusServer
    router: Router
    registry: CanaryRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = CanaryRegistry(store_uri(self.paths.mlruns))

    def controller(self, **options: Any) -> CanaryController:
        """A controller wired to this stack (registry and canary liveness included)."""
        options.setdefault("registry", self.registry)
        options.setdefault("canary_alive", self.canary.alive)
        return CanaryController(
            router=self.router,
            prometheus=self.prometheus.client,
            state_dir=self.state_dir,
            **options,
        )

    def traffic(self, requests: Sequence[dict], rate: float, workers: int = 4) -> LoadGenerator:
        return LoadGenerator(self.router.url, requests, rate=rate, workers=workers)


@contextlib.contextmanager
def rollout_stack(
    paths: Paths,
    state_dir: str | Path,
    *,
    stable: ServiceProcess | None = None,
    canary_alias: str = "challenger",
    clock: str | None = "schedule",
    as_of: str | None = None,
    warmup: Sequence[dict] = (),
    ready_timeout_s: float = 180.0,
) -> Iterator[RolloutStack]:
    """Start (or reuse `stable`) services, Prometheus and the router; stop what was started.

    The services load in parallel. Each new one then answers the `warmup` requests directly,
    BEFORE Prometheus starts: a fresh process's first predictions are slow (lazy imports, the
    first online-store read; 0.4-0.5 s measured), and with only ~50 canary requests in the first
    step's window those few would be its p99. Counters that exist before Prometheus' first
    scrape never show up in a `rate()`/`increase()`, so the warm-up is invisible to the analysis.
    """
    state_dir = Path(state_dir)
    logs = state_dir / "logs"
    started: list[Any] = []
    try:
        fresh: list[ServiceProcess] = []
        if stable is None:
            stable = launch_service(
                paths.home, "champion", role="stable", log_dir=logs, clock=clock, as_of=as_of
            )
            started.append(stable)
            fresh.append(stable)
        canary = launch_service(
            paths.home, canary_alias, role="canary", log_dir=logs, clock=clock, as_of=as_of
        )
        started.append(canary)
        fresh.append(canary)
        wait_ready(fresh, ready_timeout_s)
        if warmup:
            _warm(fresh, warmup)
        prometheus = PrometheusServer(
            state_dir, {"stable": stable.address, "canary": canary.address}
        ).start()
        started.append(prometheus)
        router = Router(state_dir, stable=stable.address, canary=canary.address).start()
        started.append(router)
        prometheus.wait_for_targets()
        yield RolloutStack(paths, state_dir, stable, canary, prometheus, router)
    finally:
        for thing in reversed(started):
            with contextlib.suppress(Exception):
                thing.stop()


def _warm(services: Sequence[ServiceProcess], requests: Sequence[dict]) -> None:
    """Each request once to each service, straight to its port (not through the router)."""
    import httpx

    with httpx.Client(timeout=30) as client:
        for service in services:
            for body in requests:
                client.post(f"{service.url}/v1/predict", json=body)


def summarise(result: RolloutResult, report: TrafficReport) -> dict[str, Any]:
    """The numbers a rollout is judged by, from the controller's and the client's clocks.

    `canary_share` is over the requests sent while the canary had traffic (first weight > 0
    until weight 0 or the end); `first_canary_to_zero_s` runs from the first request the canary
    answered to the moment weight 0 was in force.
    """
    first = report.first("canary")
    until = result.weight_zero_at if result.weight_zero_at is not None else result.ended_at
    since = result.first_traffic_at
    exposed = report.between(since, until) if since is not None else []
    canary = sum(a.role == "canary" for a in exposed)
    return {
        "outcome": result.outcome,
        "reasons": result.reasons,
        "challenger_version": result.challenger_version,
        "duration_s": round(result.ended_at - result.started_at, 2),
        "first_canary_to_zero_s": (
            round(result.weight_zero_at - first.sent_at, 2)
            if first is not None and result.weight_zero_at is not None
            else None
        ),
        "requests_while_exposed": len(exposed),
        "canary_answers": canary,
        "canary_share": round(canary / len(exposed), 4) if exposed else None,
        "canary_answers_after_zero": sum(a.role == "canary" for a in report.between(until, None))
        if result.weight_zero_at is not None
        else None,
        "errors": report.errors(),
        "client": report.summary(),
        "mean_score": {
            "stable": report.mean_score("stable"),
            "canary": report.mean_score("canary"),
        },
    }


def rehearse(
    paths: Paths,
    state_dir: Path,
    requests: Sequence[dict],
    rate: float,
    *,
    stable: ServiceProcess | None = None,
    clock: str | None = "schedule",
    as_of: str | None = None,
    blue_green: bool = False,
    **controller_options: Any,
) -> tuple[RolloutResult, TrafficReport, float]:
    """One rollout of the `challenger` alias against `champion` under replayed traffic.

    Starts what is missing (services, Prometheus, nginx), sends `requests` round-robin at `rate`
    through the router while the controller runs, stops everything it started, and returns the
    result, the client's view of the traffic and the seconds the set-up took. `blue_green`
    replaces the steps by one switch after a smoke test of both services on 60 requests (the
    analysis judges nothing below its minimum of 50).
    """
    started = time.perf_counter()
    with rollout_stack(
        paths, state_dir, stable=stable, clock=clock, as_of=as_of, warmup=requests[:WARMUP]
    ) as stack:
        setup_s = time.perf_counter() - started
        if blue_green:
            sample = list(requests[WARMUP : WARMUP + 60])
            controller_options |= {
                "steps": (100,),
                "smoke": lambda: smoke_metrics(stack.stable.url, stack.canary.url, sample),
            }
        load = stack.traffic(requests, rate).start()
        try:
            result = stack.controller(**controller_options).run()
        finally:
            report = load.stop()
    return result, report, setup_s


def latest_feature_day(paths: Paths) -> str:
    days = sorted(p.name.removeprefix("date=") for p in paths.features.glob("*/date=*"))
    if not days:
        raise FileNotFoundError(f"no feature tables under {paths.features}: build the home first")
    return days[-1]


def measure_canary(
    home: str | Path,
    requests: Sequence[dict] | None = None,
    *,
    as_of: str | None = None,
    rate: float = 60.0,
    steps: Sequence[float] = LOCAL_STEPS,
    step_seconds: float = 8.0,
    window: str = "60s",
    max_holds: int = 70,
    thresholds: Thresholds = LOCAL_THRESHOLDS,
    bug: str = "delay_rates_percent",
    good: str = "retrained",
    training_set: Any = None,
    split: Any = None,
    restore_aliases: bool = True,
    state_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Rehearse a bad and a good rollout on `home`; return the measured numbers as a dict.

    Defaults fit the serving fixture's home: requests are the flights of the last feature day,
    scored with the clock frozen at the end of that day (every view fresh). `good` is
    "retrained" (a hist_gb variant trained on `training_set`/`split`, required then) or "copy"
    (the champion's model registered again). `max_holds` (one evaluation a second) lets the
    3 % step wait for its first 50 canary requests (about 30 s at 60 requests/s). With
    `restore_aliases` the champion and challenger aliases are put back afterwards, so the
    benchmark can run again on the same home.
    """
    import pandas as pd

    from mlops_pipeline.rollout import faulty
    from mlops_pipeline.training.registry import CHALLENGER, CHAMPION, MODEL_NAME, alias_version
    from mlops_pipeline.training.tracking import tracking

    paths = Paths.at(home)
    if requests is None:
        day = latest_feature_day(paths)
        requests = flight_requests(day)
        as_of = as_of or (pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)).isoformat()
    clock = "fixed" if as_of else "schedule"
    if good == "retrained" and (training_set is None or split is None):
        raise ValueError("good='retrained' needs training_set and split (or use good='copy')")
    uri = store_uri(paths.mlruns)
    with tracking(uri) as client:
        before = {a: alias_version(client, MODEL_NAME, a) for a in (CHAMPION, CHALLENGER)}
    scratch = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="mlops-canary-"))
    out: dict[str, Any] = {
        "rate_rps": rate,
        "steps": list(steps),
        "step_seconds": step_seconds,
        "window": window,
        "max_holds": max_holds,
        "thresholds": thresholds.__dict__,
        "requests_pool": len(requests),
        "clock": clock,
        "as_of": as_of,
    }
    stable = None
    try:
        stable = launch_service(
            paths.home, "champion", role="stable", log_dir=scratch / "logs", clock=clock,
            as_of=as_of,
        )  # fmt: skip
        wait_ready([stable], 180)
        _warm([stable], requests[:WARMUP])
        runs = {
            "bad": lambda: faulty.register_faulty_challenger(paths, bug),
            "good": lambda: (
                faulty.register_retrained_challenger(paths, training_set, split)
                if good == "retrained"
                else faulty.register_champion_copy(paths)
            ),
        }
        for scenario, register in runs.items():
            started = time.perf_counter()
            register()
            registered_s = time.perf_counter() - started
            result, report, setup_s = rehearse(
                paths, scratch / scenario, requests, rate, stable=stable, clock=clock,
                as_of=as_of, steps=steps, step_seconds=step_seconds, window=window,
                thresholds=thresholds, max_holds=max_holds,
            )  # fmt: skip
            setup_s += registered_s  # from registering the challenger to traffic
            out[scenario] = summarise(result, report) | {
                "register_s": round(registered_s, 2),
                "setup_s": round(setup_s, 2),
                "time_to_100_s": (
                    round(result.ended_at - result.first_traffic_at, 2)
                    if result.outcome == "promoted" and result.first_traffic_at
                    else None
                ),
                "timeline": str(result.timeline_path),
            }
        out["bad"]["target_rollback_s"] = 60
        out["bad"]["target_share"] = 0.05
    finally:
        if stable is not None:
            stable.stop()
        if restore_aliases:
            with tracking(uri) as client:
                for alias, version in before.items():
                    if version is not None:
                        client.set_registered_model_alias(MODEL_NAME, alias, version)
                    elif alias_version(client, MODEL_NAME, alias) is not None:
                        client.delete_registered_model_alias(MODEL_NAME, alias)
        if state_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return out
