"""Smoke test of the load-test CLI against the real service, started by the CLI itself.

A couple of seconds at low rates: this checks the wiring (start, wait for /readyz, sweep the real
endpoint, judge, stop), not the service's speed, so the SLO here is deliberately lenient.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import free_port

from tabular_service.loadtest import cli
from tabular_service.loadtest.server import probe


@pytest.mark.slow
def test_cli_starts_the_service_sweeps_it_and_stops_it(
    predictor_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    port = free_port()
    lenient = tmp_path / "slo.json"
    lenient.write_text(json.dumps({"target_rps": 50, "latency_ms": 1000}))
    out = tmp_path / "loadtest.json"
    monkeypatch.setenv("TABULAR_MODEL_PATH", str(predictor_dir))
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path))
    monkeypatch.setenv("TABULAR_LOG_LEVEL", "warning")
    code = cli.main(
        [
            "--start-service",
            "--url",
            f"http://127.0.0.1:{port}/v1/predict",
            "--rates",
            "20,50",
            "--duration",
            "1.5",
            "--warmup",
            "0.5",
            "--pause",
            "0.2",
            "--settle",
            "0.5",
            "--slo",
            str(lenient),
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    text = captured.out
    assert code == 0, text + captured.err
    assert "service ready in" in text and "PASS" in text
    report = json.loads(out.read_text())
    assert report["service"]["started_by_loadtest"] is True
    assert 0 < report["service"]["start_to_ready_s"] < 120
    steps = report["steps"]
    assert [s["offered_rps"] for s in steps] == [20, 50]
    assert all(s["errors"] == 0 and s["outcomes"] == {"200": s["count"]} for s in steps)
    assert steps[-1]["count"] == 75
    assert probe(f"http://127.0.0.1:{port}/healthz") is None  # the CLI stopped the service


@pytest.mark.slow
def test_cli_reports_a_service_that_cannot_start(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TABULAR_MODEL_PATH", str(tmp_path / "no-such-model"))
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path))
    code = cli.main(
        ["--start-service", "--url", f"http://127.0.0.1:{free_port()}/v1/predict", "--rates", "10"]
        + ["--startup-timeout", "60"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "the service did not start" in err
    assert "no-such-model" in err  # the reason, from /readyz, without waiting for the timeout
