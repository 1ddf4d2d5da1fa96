"""The canary controller: move traffic in steps, judge each step on Prometheus, act on the verdict.

    for each step (default 5 %, 25 %, 50 %, 100 %):
        set the router's weight; every `interval_s`: is the canary process alive? ask Prometheus
        (analysis.QUERIES over `window`), `analysis.decide`:
            rollback -> weight 0 at once, challenger version tagged with the reasons, stop;
            at least `step_seconds` into the step: promote -> next step; hold -> wait, at most
            `max_holds` evaluations, then roll back ("analysis inconclusive").
    all steps passed -> the MLflow alias `champion` moves to the challenger's version.

Rollback acts on the first evaluation that shows a breach, not at the end of the step: a bad
canary's exposure is bounded by how fast Prometheus sees enough of its requests, not by the step
length. Promotion is slower on purpose: a step must last `step_seconds` and end healthy.

Blue-green is `steps=(100,)` with a smoke test first (the same `decide` on requests sent straight
to both services before any user traffic moves); shadow mode mirrors all traffic to the canary
(answers discarded) and judges it before, or instead of, the weighted steps. Every evaluation
is recorded in a timeline (JSON under the state dir, path also tagged on the model version).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlops_pipeline.rollout.analysis import (
    QUERIES,
    SUPPORT_QUERIES,
    Decision,
    RoleMetrics,
    StepMetrics,
    Thresholds,
    decide,
    histogram_psi,
    known,
    render,
)
from mlops_pipeline.rollout.prometheus import PrometheusClient, PrometheusUnavailable
from mlops_pipeline.rollout.router import Router

__all__ = [
    "CanaryController",
    "CanaryRegistry",
    "RolloutResult",
    "collect_metrics",
    "smoke_metrics",
]

Outcome = Literal["promoted", "rolled_back", "failed", "shadow_passed"]


def collect_metrics(client: PrometheusClient, window: str) -> StepMetrics:
    """Both roles' numbers over `window` from Prometheus; raises `PrometheusUnavailable`.

    An empty error-rate answer with requests in the window and no 5xx series at all means no
    request failed (the counter's 5xx series is created on the first failure): that is a
    measured 0, not missing data. Every other empty answer stays None (-> hold).
    """
    roles: dict[str, RoleMetrics] = {}
    buckets: dict[str, dict[float, float]] = {}
    for role in ("canary", "stable"):
        requests = client.query(render(SUPPORT_QUERIES["requests"], role, window))
        error_rate = client.query(render(QUERIES["error_rate"], role, window))
        if error_rate is None and known(requests) and requests > 0:
            errors = client.query(render(SUPPORT_QUERIES["errors"], role, window))
            error_rate = 0.0 if errors is None else errors / requests
        roles[role] = RoleMetrics(
            error_rate=error_rate,
            p99_latency=client.query(render(QUERIES["p99_latency"], role, window)),
            mean_score=client.query(render(QUERIES["mean_score"], role, window)),
            requests=requests,
        )
        buckets[role] = {
            float(labels.get("le", "inf").replace("+Inf", "inf")): value
            for labels, value in client.query_vector(render(QUERIES["score_buckets"], role, window))
        }
    up = client.query(render(SUPPORT_QUERIES["up"], "canary", window))
    return StepMetrics(
        canary=roles["canary"],
        stable=roles["stable"],
        canary_up=None if up is None else up >= 1,
        score_psi=histogram_psi(buckets["canary"], buckets["stable"]),
    )


def smoke_metrics(
    stable_url: str, canary_url: str, requests: Sequence[dict], timeout_s: float = 5.0
) -> StepMetrics:
    """Blue-green's pre-switch check: the same requests straight to both services, measured here.

    Latency is the client's (it includes the loopback hop the services' own histograms do not),
    so compare it with the relative threshold rather than read too much into the absolute one.
    """
    import httpx

    def measure(url: str) -> RoleMetrics:
        latencies, scores, errors = [], [], 0
        with httpx.Client(timeout=timeout_s) as client:
            for body in requests:
                started = time.perf_counter()
                try:
                    response = client.post(f"{url.rstrip('/')}/v1/predict", json=body)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 500:
                    errors += 1
                elif response.status_code == 200:
                    scores.append(float(response.json()["delay_probability"]))
        latencies.sort()
        p99 = latencies[min(int(0.99 * len(latencies)), len(latencies) - 1)] if latencies else None
        return RoleMetrics(
            error_rate=errors / len(requests) if requests else None,
            p99_latency=p99,
            mean_score=sum(scores) / len(scores) if scores else None,
            requests=float(len(requests)),
        )

    return StepMetrics(canary=measure(canary_url), stable=measure(stable_url), canary_up=True)


@dataclass
class CanaryRegistry:
    """The MLflow side of a rollout: which version is on trial, and the verdict on it.

    The challenger's version is pinned when the rollout starts: if someone moves the
    `challenger` alias meanwhile, the version that was actually tested is the one promoted.
    """

    tracking_uri: str
    name: str = "flight-delay"
    version: str | None = None

    def resolve(self) -> str:
        """Pin the version the `challenger` alias points at now."""
        from mlops_pipeline.training.registry import (
            CHALLENGER,
            RegistryUnavailable,
            alias_version,
            check_registry,
        )
        from mlops_pipeline.training.tracking import tracking

        check_registry(self.tracking_uri)
        with tracking(self.tracking_uri) as client:
            version = alias_version(client, self.name, CHALLENGER)
        if version is None:
            raise RegistryUnavailable(f"model {self.name!r} has no 'challenger' alias to roll out")
        self.version = version
        return version

    def record(self, decision: str, reason: str, timeline_path: Path, promote: bool) -> None:
        """Tag the pinned version (canary.decision/.reason/.timeline); move `champion` if asked."""
        from mlops_pipeline.training.registry import CHAMPION, check_registry
        from mlops_pipeline.training.tracking import tracking

        if self.version is None:
            raise RuntimeError("CanaryRegistry.record before resolve(): no version pinned")
        check_registry(self.tracking_uri)
        with tracking(self.tracking_uri) as client:
            client.set_model_version_tag(self.name, self.version, "canary.decision", decision)
            # MLflow caps tag values (5,000 characters); the full story is in the timeline file.
            client.set_model_version_tag(self.name, self.version, "canary.reason", reason[:4000])
            client.set_model_version_tag(
                self.name, self.version, "canary.timeline", str(timeline_path)
            )
            if promote:
                client.set_registered_model_alias(self.name, CHAMPION, self.version)


@dataclass
class RolloutResult:
    """How a rollout ended, and its full timeline."""

    outcome: Outcome
    reasons: list[str]
    final_weight: float
    challenger_version: str | None
    timeline: list[dict[str, Any]]
    timeline_path: Path
    started_at: float
    """time.monotonic() at the start (the timeline's t = 0)."""
    first_traffic_at: float | None = None
    """time.monotonic() when the canary first got a weight above 0 (or mirrored traffic)."""
    weight_zero_at: float | None = None
    """time.monotonic() when a rollback's weight 0 was in force (set_weight returned)."""
    ended_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": self.reasons,
            "final_weight": self.final_weight,
            "challenger_version": self.challenger_version,
            "duration_s": round(self.ended_at - self.started_at, 3),
            "rollback_after_s": (
                round(self.weight_zero_at - self.first_traffic_at, 3)
                if self.weight_zero_at is not None and self.first_traffic_at is not None
                else None
            ),
            "timeline": self.timeline,
        }


class _Stop(Exception):
    """Internal: the rollout ended (rolled back or failed); carries the outcome."""

    def __init__(self, outcome: Outcome, reasons: list[str]):
        super().__init__(outcome)
        self.outcome = outcome
        self.reasons = reasons


@dataclass
class CanaryController:
    """Drives one rollout through `router`, judged on `prometheus`, recorded in `registry`."""

    router: Router
    prometheus: PrometheusClient
    state_dir: Path
    steps: Sequence[float] = (5, 25, 50, 100)
    step_seconds: float = 60.0
    window: str = "30s"
    thresholds: Thresholds = field(default_factory=Thresholds)
    interval_s: float = 1.0
    """Time between evaluations (and liveness checks) within a step."""
    max_holds: int = 10
    """Evaluations past a step's end that may hold before the rollout gives up."""
    canary_alive: Callable[[], bool] | None = None
    registry: CanaryRegistry | None = None
    shadow_seconds: float = 0.0
    """> 0: mirror all traffic to the canary this long (answers discarded) before the steps."""
    smoke: Callable[[], StepMetrics] | None = None
    """Blue-green: a pre-switch check run before the first step (see `smoke_metrics`)."""
    decide_fn: Callable[[StepMetrics, Thresholds], Decision] = decide
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    timeline: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        steps = list(self.steps)
        if not steps and self.shadow_seconds <= 0:
            raise ValueError("a rollout needs steps, shadow_seconds > 0, or both")
        if any(not 0 < w <= 100 for w in steps) or steps != sorted(steps):
            raise ValueError(f"steps must be increasing weights within (0, 100], got {steps}")
        if self.step_seconds <= 0 or self.interval_s <= 0 or self.max_holds < 0:
            raise ValueError("step_seconds and interval_s must be > 0, max_holds >= 0")
        render(QUERIES["error_rate"], "canary", self.window)  # validates the window early

    @classmethod
    def blue_green(
        cls, *args: Any, smoke: Callable[[], StepMetrics], **kwargs: Any
    ) -> CanaryController:
        """One switch to 100 %, after a smoke test on both services, then the usual analysis."""
        return cls(*args, steps=(100,), smoke=smoke, **kwargs)

    @property
    def timeline_path(self) -> Path:
        return self.state_dir / "canary-timeline.json"

    # ------------------------------------------------------------------------------------
    def run(self) -> RolloutResult:
        """Run the rollout to its end; the router is left at weight 0 unless it was promoted.

        An unexpected error (router or registry failure) still sets weight 0 before it
        propagates: a controller that cannot finish must not leave users on the canary.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.timeline = []
        self._t0 = self.clock()
        self._first_traffic: float | None = None
        self._weight_zero: float | None = None
        version = self.registry.resolve() if self.registry is not None else None
        self._event("start", steps=list(self.steps), window=self.window,
                    step_seconds=self.step_seconds, challenger_version=version)  # fmt: skip
        try:
            try:
                outcome, reasons = self._run_phases()
            except _Stop as stop:
                outcome, reasons = stop.outcome, stop.reasons
        except BaseException as error:
            self._to_stable(f"controller error: {error}")
            self._event("error", reasons=[f"{type(error).__name__}: {error}"])
            self._write_timeline()
            raise
        self._event("end", outcome=outcome, reasons=reasons, weight=self.router.weight)
        self._write_timeline()
        if self.registry is not None:
            reason = "; ".join(reasons) or "every step healthy"
            promote = outcome == "promoted"
            self.registry.record(outcome, reason, self.timeline_path, promote=promote)
        return RolloutResult(
            outcome=outcome,
            reasons=reasons,
            final_weight=self.router.weight,
            challenger_version=version,
            timeline=self.timeline,
            timeline_path=self.timeline_path,
            started_at=self._t0,
            first_traffic_at=self._first_traffic,
            weight_zero_at=self._weight_zero,
            ended_at=self.clock(),
        )

    def _run_phases(self) -> tuple[Outcome, list[str]]:
        if self.smoke is not None:
            self._smoke_test()
        if self.shadow_seconds > 0:
            self.router.set_shadow(True)
            self._mark_traffic()
            self._event("shadow", weight=0, shadow=True)
            self._judge_phase("shadow", None, self.shadow_seconds)
            self.router.set_shadow(False)
            if not self.steps:
                return "shadow_passed", ["shadow analysis healthy; no steps requested"]
        for index, weight in enumerate(self.steps):
            self.router.set_weight(weight)
            self._mark_traffic()
            self._event("set_weight", step=index, weight=weight)
            self._judge_phase("canary", index, self.step_seconds)
        return "promoted", []

    def _smoke_test(self) -> None:
        assert self.smoke is not None
        metrics = self.smoke()
        decision = self.decide_fn(metrics, self.thresholds)
        self._event("smoke", metrics=metrics.to_dict(), decision=decision.action,
                    reasons=decision.reasons)  # fmt: skip
        if decision.action != "promote":
            reasons = decision.reasons or ["smoke test inconclusive"]
            if decision.action == "hold":
                reasons = [f"smoke test inconclusive: {'; '.join(reasons)}"]
            raise _Stop("rolled_back", reasons)

    def _judge_phase(self, phase: str, step: int | None, seconds: float) -> None:
        """Evaluate every `interval_s` until the phase ends healthy; raise `_Stop` otherwise."""
        ends_at = self.clock() + seconds
        holds = 0
        while True:
            self.sleep(self.interval_s)
            if self.canary_alive is not None and not self.canary_alive():
                self._to_stable("canary process is not running")
                raise _Stop("failed", ["canary_down: the canary process exited"])
            metrics, note = self._metrics()
            decision = self.decide_fn(metrics, self.thresholds)
            reasons = decision.reasons + ([note] if note else [])
            self._event("analysis", phase=phase, step=step, weight=self.router.weight,
                        metrics=metrics.to_dict(), decision=decision.action,
                        reasons=reasons)  # fmt: skip
            if decision.action == "rollback":
                down = any(r.startswith("canary_down") for r in decision.reasons)
                self._to_stable("; ".join(decision.reasons))
                raise _Stop("failed" if down else "rolled_back", decision.reasons)
            if self.clock() < ends_at:
                continue
            if decision.action == "promote":
                return
            holds += 1
            if holds > self.max_holds:
                self._to_stable("analysis inconclusive")
                raise _Stop(
                    "rolled_back",
                    [f"analysis inconclusive: held {holds} times past the step's end "
                     f"({'; '.join(reasons)})"],
                )  # fmt: skip

    def _metrics(self) -> tuple[StepMetrics, str | None]:
        try:
            return collect_metrics(self.prometheus, self.window), None
        except PrometheusUnavailable as error:
            # Nothing is known: decide() holds on missing data; never promote blind.
            return StepMetrics(), f"prometheus_unavailable: {error}"

    def _to_stable(self, why: str) -> None:
        """Weight 0 now (best effort when the router itself is failing)."""
        if self.router.weight == 0 and not self.router.shadow:
            self._weight_zero = self._weight_zero or self.clock()
            return
        with contextlib.suppress(Exception):
            self.router.set_weight(0)
            self._weight_zero = self.clock()
            self._event("set_weight", weight=0, reasons=[why])

    def _mark_traffic(self) -> None:
        if self._first_traffic is None:
            self._first_traffic = self.clock()

    def _event(self, event: str, **values: Any) -> None:
        self.timeline.append(
            {
                "t": round(self.clock() - self._t0, 3),
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "event": event,
                **values,
            }
        )

    def _write_timeline(self) -> None:
        tmp = self.timeline_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.timeline, indent=1, default=str))
        os.replace(tmp, self.timeline_path)
