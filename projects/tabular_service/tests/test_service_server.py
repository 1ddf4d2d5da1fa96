"""The service as it really runs: `python -m tabular_service.service` under uvicorn on a port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from helpers import free_port, wait_for_http

from tabular_service.schema import EXAMPLE_APPLICATION

SRC = Path(__file__).resolve().parents[1] / "src"
pytestmark = pytest.mark.slow


@contextmanager
def serve(log: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen, float]]:
    """Run the service with TABULAR_* `env`; yield (base url, process, seconds to ready)."""
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        "TABULAR_PORT": str(port),
        **env,
    }
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    with log.open("w") as out:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(
            [sys.executable, "-m", "tabular_service.service"],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(f"{base}/readyz", timeout=90, proc=proc)
            yield base, proc, time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post_json(url: str, body: object, request_id: str | None = None) -> tuple[dict, dict]:
    headers = {"Content-Type": "application/json"}
    if request_id:
        headers["X-Request-ID"] = request_id
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()), dict(response.headers)


def log_lines(log: Path) -> list[dict]:
    lines = []
    for line in log.read_text().splitlines():
        with suppress(json.JSONDecodeError):
            lines.append(json.loads(line))
    return lines


def test_serves_a_model_path(predictor_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serve(log, TABULAR_MODEL_PATH=str(predictor_dir), TABULAR_HOME=str(tmp_path)) as (
        base,
        proc,
        seconds,
    ):
        print(f"\nstart-to-ready (model path): {seconds:.2f} s")
        assert get_json(f"{base}/healthz") == {"status": "ok"}
        ready = get_json(f"{base}/readyz")
        assert ready["status"] == "ready" and ready["model"]["source"] == "path"
        body, headers = post_json(f"{base}/v1/predict", EXAMPLE_APPLICATION, "srv-1")
        assert 0 <= body["probability_of_default"] <= 1
        assert body["request_id"] == "srv-1" and headers["x-request-id"] == "srv-1"
        batch, _ = post_json(
            f"{base}/v1/predict/batch", {"applications": [EXAMPLE_APPLICATION] * 3}
        )
        assert len(batch["predictions"]) == 3
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            assert b"tabular_decisions_total" in response.read()
    # A clean shutdown; uvicorn then re-raises SIGTERM so supervisors see why it exited.
    assert proc.returncode in (0, -signal.SIGTERM)
    lines = log_lines(log)
    assert any(line.get("msg") == "Application shutdown complete." for line in lines)
    access = [line for line in lines if line.get("logger") == "tabular_service.access"]
    assert any(line["request_id"] == "srv-1" and line["status"] == 200 for line in access)
    assert not any(line.get("logger") == "uvicorn.access" for line in lines)


def test_registry_model_then_cache(registry_home: Path, tmp_path: Path) -> None:
    env = {"TABULAR_HOME": str(registry_home), "TABULAR_CACHE_DIR": str(tmp_path / "cache")}
    with serve(tmp_path / "first.log", **env) as (base, _, first):
        model = get_json(f"{base}/readyz")["model"]
        assert (model["name"], model["version"], model["source"]) == (
            "credit-default",
            "1",
            "registry",
        )
        body, _ = post_json(f"{base}/v1/predict", EXAMPLE_APPLICATION)
        assert body["model"] == {"name": "credit-default", "version": "1", "kind": "logistic"}
    assert (tmp_path / "cache" / "credit-default" / "1").is_dir()

    with serve(tmp_path / "second.log", **env) as (base, _, second):
        model = get_json(f"{base}/readyz")["model"]
        assert model["source"] == "cache" and model["version"] == "1"
        post_json(f"{base}/v1/predict", EXAMPLE_APPLICATION)
    print(f"\nstart-to-ready: registry {first:.2f} s, cached {second:.2f} s")


def test_bad_settings_exit_with_one_line(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(SRC), "TABULAR_PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "-m", "tabular_service.service"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "TABULAR_PORT" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
