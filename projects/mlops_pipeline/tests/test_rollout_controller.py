"""The canary controller end to end against stand-in services: real nginx, real Prometheus.

Stand-ins let each test choose the canary's behaviour (score, latency, errors) precisely; the
real prediction service is exercised in test_rollout_integration.py.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from rollout_standin import StandInStack

from mlops_pipeline.rollout.analysis import Thresholds
from mlops_pipeline.rollout.controller import CanaryController, smoke_metrics
from mlops_pipeline.rollout.processes import free_port
from mlops_pipeline.rollout.prometheus import PrometheusClient
from mlops_pipeline.rollout.traffic import LoadGenerator

pytestmark = pytest.mark.slow

RATE = 60.0
FAST = dict(steps=(20, 50, 100), step_seconds=2.0, window="10s", interval_s=0.5, max_holds=40)
LOOSE_LATENCY = Thresholds(min_requests=20, max_p99_seconds=0.8, p99_slack_seconds=0.3)
"""Design values except: 20 requests are enough (short test) and latency is judged at 800 ms:
two Python stand-ins, nginx, Prometheus and the load share 2 cores with whatever else runs,
and the p99 of a few dozen requests is in effect their maximum. The slow canary below takes
1 s per request."""
REQUESTS = [{"flight_id": i} for i in range(50)]


def _prometheus(stack) -> PrometheusClient:
    """The stack's Prometheus, or (without one) an address where nothing listens."""
    if stack.prometheus is not None:
        return stack.prometheus.client
    return PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)


def _controller(stack, **options) -> CanaryController:
    settings = {**FAST, "thresholds": LOOSE_LATENCY, "canary_alive": stack.canary.alive, **options}
    return CanaryController(
        router=stack.router,
        prometheus=_prometheus(stack),
        state_dir=stack.tmp_path / "controller",
        **settings,
    )


def _run_with_load(stack, controller, rate: float = RATE):
    with LoadGenerator(stack.router.url, REQUESTS, rate=rate, workers=8) as load:
        result = controller.run()
        time.sleep(1.0)  # traffic after the end: who answers it?
    return result, load.report


def _weights(result) -> list[float]:
    return [e["weight"] for e in result.timeline if e["event"] == "set_weight"]


def test_healthy_canary_walks_every_step_and_is_promoted(tmp_path):
    """Same scores, no errors: 20 -> 50 -> 100 %, outcome promoted, timeline on disk."""
    with StandInStack(tmp_path) as stack:
        result, report = _run_with_load(stack, _controller(stack))
    assert result.outcome == "promoted", result.reasons
    assert _weights(result) == [20, 50, 100] and result.final_weight == 100
    saved = json.loads(result.timeline_path.read_text())
    analyses = [e for e in saved if e["event"] == "analysis"]
    assert analyses[-1]["decision"] == "promote"
    assert analyses[-1]["metrics"]["canary"]["requests"] >= 20
    assert report.counts().get("canary", 0) > 0 and report.errors() == 0


@pytest.mark.parametrize(
    ("canary", "check"),
    [
        ({"score": 0.5}, "score_shift"),
        ({"error_rate": 0.3}, "error_rate"),
        ({"latency_ms": 1000}, "p99_latency"),
    ],
    ids=["shifted-scores", "errors", "slow"],
)
def test_a_breach_rolls_back_at_the_first_step(tmp_path, canary, check):
    """The breach is named, weight 0 is in force, and no later request reaches the canary."""
    with StandInStack(tmp_path, canary=canary) as stack:
        result, report = _run_with_load(stack, _controller(stack))
        assert stack.router.weight == 0
    assert result.outcome == "rolled_back"
    assert any(r.startswith(check) for r in result.reasons), result.reasons
    assert _weights(result) == [20, 0]
    after = report.between(result.weight_zero_at, None)
    assert after and all(a.role == "stable" for a in after)


def test_killed_canary_fails_the_rollout_and_traffic_returns_to_stable(tmp_path):
    """SIGKILL mid-step: outcome failed, weight 0, and no request failed meanwhile."""
    with StandInStack(tmp_path) as stack:
        controller = _controller(stack, step_seconds=30.0)

        def kill_when_canary_serves():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and stack.canary.predictions_served() < 20:
                time.sleep(0.1)
            stack.canary.process.kill()

        killer = threading.Thread(target=kill_when_canary_serves, daemon=True)
        killer.start()
        result, report = _run_with_load(stack, controller)
        killer.join(5)
    assert result.outcome == "failed"
    assert result.reasons and result.reasons[0].startswith("canary_down")
    assert result.final_weight == 0 and _weights(result) == [20, 0]
    assert report.errors() == 0, report.statuses()
    assert all(a.role == "stable" for a in report.between(result.weight_zero_at, None))


def test_prometheus_down_holds_and_never_promotes(tmp_path):
    """Prometheus unreachable (nothing listens at its address): every evaluation holds, the
    first step is never left, and after `max_holds` the rollout gives up ("inconclusive")."""
    with StandInStack(tmp_path, prometheus=False) as stack:
        result, _ = _run_with_load(stack, _controller(stack, max_holds=3))
    decisions = [e["decision"] for e in result.timeline if e["event"] == "analysis"]
    assert decisions and set(decisions) == {"hold"}
    notes = [r for e in result.timeline if e["event"] == "analysis" for r in e["reasons"]]
    assert any(r.startswith("prometheus_unavailable") for r in notes)
    assert result.outcome == "rolled_back"
    assert result.reasons[0].startswith("analysis inconclusive")
    assert max(_weights(result)) == 20 and result.final_weight == 0


def test_shadow_mode_judges_the_canary_without_serving_from_it(tmp_path):
    """Shifted canary in shadow: rolled back on the score shift; users never saw its answers
    while it still received the mirrored copies."""
    with StandInStack(tmp_path, canary={"score": 0.6}) as stack:
        controller = _controller(stack, steps=(), shadow_seconds=15.0)
        result, report = _run_with_load(stack, controller)
        mirrored = stack.canary.predictions_served()
    assert result.outcome == "rolled_back"
    assert any(r.startswith("score_shift") for r in result.reasons)
    assert report.counts() == {"stable": len(report.answers)}
    assert mirrored >= 20


@pytest.mark.parametrize(("score", "outcome"), [(0.2, "promoted"), (0.6, "rolled_back")])
def test_blue_green_switches_only_after_a_healthy_smoke_test(tmp_path, score, outcome):
    """Blue-green: one switch to 100 % after the smoke test; a bad smoke test never switches."""
    # A failing smoke test ends the rollout before any analysis: no Prometheus needed.
    with StandInStack(tmp_path, canary={"score": score}, prometheus=outcome == "promoted") as stack:
        controller = CanaryController.blue_green(
            router=stack.router,
            prometheus=_prometheus(stack),
            state_dir=tmp_path / "controller",
            smoke=lambda: smoke_metrics(stack.stable.url, stack.canary.url, REQUESTS),
            thresholds=LOOSE_LATENCY,
            **{k: v for k, v in FAST.items() if k != "steps"},
        )
        result, report = _run_with_load(stack, controller)
    assert result.outcome == outcome, result.reasons
    smoke = [e for e in result.timeline if e["event"] == "smoke"]
    assert len(smoke) == 1 and smoke[0]["metrics"]["canary"]["requests"] == len(REQUESTS)
    if outcome == "promoted":
        assert _weights(result) == [100]
    else:
        assert _weights(result) == [] and report.counts().get("canary", 0) == 0
        assert any(r.startswith("score_shift") for r in result.reasons)
