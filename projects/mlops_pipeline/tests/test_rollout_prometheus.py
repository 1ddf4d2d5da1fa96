"""Prometheus for the canary: the rendered config (checked by promtool) and the real server
scraping stand-in services, queried through the API client, and its failures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from rollout_standin import StandIn

from mlops_pipeline.rollout.analysis import QUERIES, render
from mlops_pipeline.rollout.processes import free_port
from mlops_pipeline.rollout.prometheus import (
    PROMETHEUS_BIN,
    PrometheusClient,
    PrometheusServer,
    PrometheusUnavailable,
    render_config,
)

needs_prometheus = pytest.mark.skipif(
    not Path(PROMETHEUS_BIN).exists(), reason=f"prometheus not installed at {PROMETHEUS_BIN}"
)
TARGETS = {"stable": "127.0.0.1:9101", "canary": "127.0.0.1:9102"}


def test_config_labels_each_target_with_its_role():
    """One static config per target, label role=stable|canary, scraped every second."""
    config = yaml.safe_load(render_config(TARGETS))
    assert config["global"]["scrape_interval"] == "1s"
    (job,) = config["scrape_configs"]
    labelled = {c["labels"]["role"]: c["targets"] for c in job["static_configs"]}
    assert labelled == {"stable": ["127.0.0.1:9101"], "canary": ["127.0.0.1:9102"]}


@pytest.mark.parametrize(
    "targets", [{}, {"prod": "127.0.0.1:1"}, {"canary": "localhost"}, {"canary": ":80"}]
)
def test_config_refuses_bad_targets(targets):
    """No targets, an unknown role or an address without host:port."""
    with pytest.raises(ValueError, match="render_config"):
        render_config(targets)


@needs_prometheus
def test_promtool_accepts_the_config(tmp_path):
    """Prometheus' own checker passes the rendered file."""
    path = tmp_path / "prometheus.yml"
    path.write_text(render_config(TARGETS))
    promtool = Path(PROMETHEUS_BIN).with_name("promtool")
    check = subprocess.run(
        [str(promtool), "check", "config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


@needs_prometheus
def test_promtool_accepts_the_config_with_the_recording_rules(tmp_path):
    """The server's own files: promtool follows `rule_files` and checks every rule in them."""
    server = PrometheusServer(tmp_path, TARGETS)
    server.state_dir.mkdir(parents=True)
    server._write_config()
    config = yaml.safe_load(server.config_path.read_text())
    assert config["rule_files"] == ["recording.yml"]
    promtool = Path(PROMETHEUS_BIN).with_name("promtool")
    check = subprocess.run(
        [str(promtool), "check", "config", str(server.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr and "rules found" in check.stdout


def test_recording_rules_can_be_left_out(tmp_path):
    """`recording_rules=False`: scrape targets only, no rule file written."""
    server = PrometheusServer(tmp_path, TARGETS, recording_rules=False)
    server.state_dir.mkdir(parents=True)
    server._write_config()
    assert "rule_files" not in yaml.safe_load(server.config_path.read_text())
    assert not server.rules_path.exists()


def test_client_reports_an_unreachable_server():
    """Nothing listening: PrometheusUnavailable naming the address, within the timeout."""
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    with pytest.raises(PrometheusUnavailable, match="unreachable"):
        client.query("up")
    assert client.ready() is False


@pytest.mark.slow
@needs_prometheus
def test_scrapes_stand_ins_and_answers_the_canary_queries(tmp_path):
    """Real scrape of two stand-ins: role labels, the mean-score query, errors, shutdown."""
    stable = StandIn(tmp_path, "stable", score=0.2, score_sd=0.0)
    canary = StandIn(tmp_path, "canary", score=0.6, score_sd=0.0)
    server = PrometheusServer(tmp_path, {"stable": stable.address, "canary": canary.address})
    try:
        with server:
            server.wait_for_targets()
            with httpx.Client() as http:
                for service in (stable, canary):
                    for i in range(20):
                        http.post(f"{service.url}/v1/predict", json={"flight_id": i})
            client = server.client
            mean = render(QUERIES["mean_score"], "canary", "30s")
            assert client.wait_for(mean, timeout_s=45) == pytest.approx(0.6)
            stable_mean = client.wait_for(render(QUERIES["mean_score"], "stable", "30s"), 45)
            assert stable_mean == pytest.approx(0.2)
            recorded = 'role:mlops_prediction_score:mean_rate5m{role="canary"}'
            assert client.wait_for(recorded, timeout_s=30) == pytest.approx(0.6)
            roles = {labels["role"] for labels, _ in client.query_vector("up")}
            assert roles == {"stable", "canary"}
            with pytest.raises(ValueError, match="series"):
                client.query("up")  # two series where one number was expected
            with pytest.raises(PrometheusUnavailable, match="bad_data"):
                client.query("sum(rate(")
            assert client.query('up{role="nobody"}') is None
            tsdb = server.state_dir / "tsdb"
            assert tsdb.is_dir()
        assert not server.process.alive()
        assert not tsdb.exists()
        with pytest.raises(PrometheusUnavailable):
            server.client.query("up")
    finally:
        server.stop()
        stable.stop()
        canary.stop()


@pytest.mark.slow
@needs_prometheus
def test_a_config_prometheus_cannot_start_with_fails_clearly(tmp_path):
    """A port already taken: the start raises with Prometheus' own log, nothing left running."""
    blocker = StandIn(tmp_path, "stable")
    server = PrometheusServer(tmp_path, {"stable": blocker.address}, port=blocker.port)
    try:
        with pytest.raises(PrometheusUnavailable, match="exited|not ready"):
            server.start(ready_timeout_s=10)
        assert server.process is not None and not server.process.alive()
    finally:
        server.stop()
        blocker.stop()
