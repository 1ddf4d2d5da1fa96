"""The nginx router: rendered configs, nginx's own check, and a live nginx in front of two
stand-in services (weighted split, header, traceparent, JSON log, shadow, rejected configs)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from rollout_standin import StandInStack

from mlops_pipeline.rollout.router import (
    NGINX_BIN,
    Router,
    RouterConfig,
    RouterConfigError,
    render_config,
)

needs_nginx = pytest.mark.skipif(
    not Path(NGINX_BIN).exists(), reason=f"nginx not installed at {NGINX_BIN}"
)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _config(tmp_path: Path, **changes) -> RouterConfig:
    return RouterConfig(
        prefix=tmp_path / "nginx",
        port=18080,
        stable="127.0.0.1:18001",
        canary="127.0.0.1:18002",
        **changes,
    )


@pytest.mark.parametrize(
    ("weight", "split"),
    [(0, "* stable;"), (100, "* canary;"), (5, "5% canary; * stable;"),
     (12.5, "12.5% canary; * stable;")],
)  # fmt: skip
def test_split_clients_by_weight(tmp_path, weight, split):
    """0 and 100 use a bare default (nginx rejects "0%"); others a percentage of request ids."""
    text = render_config(_config(tmp_path, weight=weight))
    block = re.search(r'split_clients "\$\{request_id\}" \$upstream_role \{\s*(.*?)\s*\}', text)
    assert block is not None and block.group(1) == split


@pytest.mark.parametrize("weight", [-1, 100.5, 3.333])
def test_invalid_weights_are_refused(tmp_path, weight):
    """Outside 0..100, or more decimals than nginx's split_clients takes."""
    with pytest.raises(ValueError, match="weight"):
        _config(tmp_path, weight=weight)


def test_shadow_mirrors_to_canary_and_routes_to_stable(tmp_path):
    """Shadow: proxy to stable, `mirror` to the canary-only upstream; weight must stay 0."""
    text = render_config(_config(tmp_path, shadow=True))
    assert "mirror /_shadow;" in text and "proxy_pass http://stable;" in text
    assert "proxy_pass http://shadow$request_uri;" in text
    assert "proxy_pass http://$upstream_role;" not in text
    with pytest.raises(ValueError, match="shadow"):
        _config(tmp_path, shadow=True, weight=5)


def test_config_forwards_traceparent_and_logs_json(tmp_path):
    """traceparent passed on, X-Upstream-Role added, JSON access log with role, status, time."""
    text = render_config(_config(tmp_path))
    assert "proxy_set_header traceparent $http_traceparent;" in text
    assert "add_header X-Upstream-Role $answered_by always;" in text
    assert "log_format rollout escape=json" in text
    for field in ('"routed_to":"$upstream_role"', '"status":$status', '"request_time":'):
        assert field in text


def test_user_directive_only_as_root(tmp_path):
    """As root the workers run as the current user (not nobody); otherwise no directive."""
    text = render_config(_config(tmp_path))
    assert text.splitlines()[1].startswith("user ") == (os.geteuid() == 0)


@needs_nginx
@pytest.mark.parametrize("changes", [{}, {"weight": 5}, {"weight": 100}, {"shadow": True}])
def test_nginx_accepts_rendered_configs(tmp_path, changes):
    """`nginx -t` passes on every config the router renders."""
    config = _config(tmp_path, **changes)
    for folder in ("conf", "logs", "temp"):
        (config.prefix / folder).mkdir(parents=True, exist_ok=True)
    path = config.prefix / "conf" / "nginx.conf"
    path.write_text(render_config(config))
    check = subprocess.run(
        [NGINX_BIN, "-t", "-p", str(config.prefix), "-e", str(config.prefix / "logs/error.log"),
         "-c", str(path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


# ------------------------------------------------------------------------- live nginx


def _send(router: Router, n: int, **headers) -> list[httpx.Response]:
    with httpx.Client(timeout=5) as client:
        return [
            client.post(f"{router.url}/v1/predict", json={"flight_id": i}, headers=headers)
            for i in range(n)
        ]


def _roles(responses) -> dict[str, int]:
    roles: dict[str, int] = {}
    for response in responses:
        role = response.headers.get("X-Upstream-Role")
        roles[role] = roles.get(role, 0) + 1
    return roles


@pytest.fixture
def stack(tmp_path):
    with StandInStack(tmp_path, prometheus=False) as running:
        yield running


@pytest.mark.slow
@needs_nginx
def test_weights_route_requests_and_header_names_the_answerer(stack):
    """0 -> all stable, 100 -> all canary, 30 -> about 30 %; the header matches the body."""
    router = stack.router
    assert _roles(_send(router, 20)) == {"stable": 20}
    router.set_weight(100)
    assert _roles(_send(router, 20)) == {"canary": 20}
    router.set_weight(30)
    responses = _send(router, 200)
    share = _roles(responses).get("canary", 0) / 200
    assert 0.15 < share < 0.45  # binomial sd 3.2 %: beyond 4.5 sd
    alias = {"stable": "champion", "canary": "challenger"}
    for response in responses:
        assert response.status_code == 200
        assert response.json()["model"]["alias"] == alias[response.headers["X-Upstream-Role"]]


@pytest.mark.slow
@needs_nginx
def test_traceparent_reaches_the_service_unchanged(stack):
    """The W3C header arrives as sent, with nginx's request id beside it."""
    (response,) = _send(stack.router, 1, traceparent=TRACEPARENT)
    seen = response.json()["seen"]
    assert seen["traceparent"] == TRACEPARENT
    assert seen["x_request_id"] == response.headers["X-Request-Id"]


@pytest.mark.slow
@needs_nginx
def test_access_log_is_json_with_role_status_and_time(stack):
    """One JSON line per request: routed and answering role, status, request time, traceparent."""
    stack.router.set_weight(50)
    responses = _send(stack.router, 20, traceparent=TRACEPARENT)
    # nginx writes a request's log line just after the client has its answer: poll briefly.
    deadline = time.monotonic() + 10
    while True:
        entries = [e for e in stack.router.read_access_log() if e["uri"] == "/v1/predict"]
        if len(entries) >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(entries) == 20
    by_id = {e["request_id"]: e for e in entries}
    for response in responses:
        entry = by_id[response.headers["X-Request-Id"]]
        assert entry["status"] == 200 and entry["method"] == "POST"
        assert entry["answered_by"] == entry["routed_to"] == response.headers["X-Upstream-Role"]
        assert isinstance(entry["request_time"], float) and entry["request_time"] >= 0
        assert entry["traceparent"] == TRACEPARENT


@pytest.mark.slow
@needs_nginx
def test_shadow_mode_answers_from_stable_and_copies_to_canary(stack):
    """Shadow: every answer from stable, and the canary still receives every request."""
    stack.router.set_shadow(True)
    before = stack.canary.predictions_served()
    assert _roles(_send(stack.router, 40)) == {"stable": 40}
    deadline = time.monotonic() + 5
    while stack.canary.predictions_served() - before < 40:
        assert time.monotonic() < deadline, "mirrored requests did not arrive"
        time.sleep(0.05)
    stack.router.set_shadow(False)
    assert not stack.router.shadow and stack.router.weight == 0


@pytest.mark.slow
@needs_nginx
def test_rejected_config_leaves_the_live_one_serving(stack):
    """A config nginx rejects raises with nginx's message; the old split keeps serving."""
    router = stack.router
    router.set_weight(100)
    live = router.conf_path.read_text()
    with pytest.raises(RouterConfigError, match='unknown directive "proxy_passs"'):
        router.apply_text(live.replace("proxy_pass http://$upstream_role;", "proxy_passs x;"))
    with pytest.raises(RouterConfigError, match="invalid port|host not found|no port"):
        router.set_canary("127.0.0.1:notaport")
    assert router.conf_path.read_text() == live
    assert router.config.canary == stack.canary.address
    assert _roles(_send(router, 20)) == {"canary": 20}


@pytest.mark.slow
@needs_nginx
def test_dead_canary_falls_back_to_stable(stack):
    """The canary upstream's stable backup: a crashed canary costs no failed request."""
    stack.router.set_weight(100)
    stack.canary.process.kill()
    responses = _send(stack.router, 30)
    assert all(r.status_code == 200 for r in responses)
    assert _roles(responses) == {"stable": 30}
    assert {e["routed_to"] for e in stack.router.read_access_log()[-30:]} == {"canary"}


@pytest.mark.slow
@needs_nginx
def test_stop_ends_nginx_and_its_workers(tmp_path):
    """After the block (left by an exception) no process of the router's group remains."""
    with StandInStack(tmp_path, prometheus=False) as running:
        router = running.router
        workers = router._workers()
        assert workers, "nginx should have a worker"
        with pytest.raises(RuntimeError, match="boom"), router:
            raise RuntimeError("boom")
        assert not router.alive()
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
