"""A stand-in prediction service for the router and controller tests: real HTTP, real metrics.

It speaks the service contract's HTTP surface (POST /v1/predict, /healthz, /readyz, /metrics with
the design's metric names) but its scores come from a configurable distribution, with a
configurable latency and 5xx rate, so tests can build a healthy, a slow, a failing or a shifted
canary without training anything. Run as a separate process (Prometheus scrapes it, tests kill
it): `python tests/rollout_standin.py --port P --score 0.2 --latency-ms 2 --error-rate 0`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.075, 0.1,
                   0.25, 0.5, 1, 2.5)  # fmt: skip
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))


def build_handler(args: argparse.Namespace) -> type[BaseHTTPRequestHandler]:
    registry = CollectorRegistry()
    requests = Counter(
        "mlops_http_requests_total", "HTTP requests", ["route", "method", "status"],
        registry=registry,
    )  # fmt: skip
    duration = Histogram(
        "mlops_http_request_duration_seconds", "Request duration", ["route"],
        buckets=LATENCY_BUCKETS, registry=registry,
    )  # fmt: skip
    score = Histogram(
        "mlops_prediction_score", "Predicted delay probability", buckets=SCORE_BUCKETS,
        registry=registry,
    )  # fmt: skip
    Gauge(
        "mlops_model_info", "Model served", ["name", "version", "alias"], registry=registry
    ).labels("flight-delay", args.version, args.alias).set(1)
    rng = random.Random(args.seed)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:  # quiet: tests read metrics, not logs
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                self._send(200, b'{"status":"ok"}')
            else:
                self._send(404, b'{"detail":"not found"}')

        def do_POST(self) -> None:
            started = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            if self.path != "/v1/predict":
                self._send(404, b'{"detail":"not found"}')
                return
            with lock:
                fail = rng.random() < args.error_rate
                value = min(max(rng.gauss(args.score, args.score_sd), 0.0), 1.0)
            if args.latency_ms:
                time.sleep(args.latency_ms / 1000)
            if fail:
                status, body = 500, b'{"detail":"internal error"}'
            else:
                flight = json.loads(raw or b"{}")
                score.observe(value)
                status = 200
                body = json.dumps(
                    {
                        "flight_id": flight.get("flight_id"),
                        "delay_probability": value,
                        "model": {"name": "flight-delay", "version": args.version,
                                  "alias": args.alias},
                        "features": {"missing": [], "stale": []},
                        "degraded": False,
                        "seen": {
                            "traceparent": self.headers.get("traceparent"),
                            "x_request_id": self.headers.get("X-Request-Id"),
                            "shadow": self.headers.get("X-Shadow"),
                        },
                    }
                ).encode()  # fmt: skip
            self._send(status, body)
            requests.labels("/v1/predict", "POST", str(status)).inc()
            duration.labels("/v1/predict").observe(time.perf_counter() - started)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--score", type=float, default=0.2, help="mean delay probability")
    parser.add_argument("--score-sd", type=float, default=0.05)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--version", default="1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), build_handler(args))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------------------------- for tests


class StandIn:
    """A running stand-in process and its address."""

    def __init__(self, log_dir, role: str, **options: object) -> None:
        import sys
        from pathlib import Path

        from mlops_pipeline.rollout.processes import ManagedProcess, free_port, wait_http

        self.role = role
        self.port = free_port()
        argv = [sys.executable, str(Path(__file__)), "--port", str(self.port)]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        self.process = ManagedProcess.start(
            argv, name=f"stand-in {role}", log_path=Path(log_dir) / f"standin-{role}.log"
        )
        try:
            wait_http(f"{self.url}/readyz", 15, process=self.process)
        except BaseException:
            self.process.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.alive()

    def stop(self) -> None:
        self.process.stop()

    def predictions_served(self) -> float:
        """mlops_http_requests_total for /v1/predict, summed over statuses, from /metrics."""
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("mlops_http_requests_total{") and 'route="/v1/predict"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total


class StandInStack:
    """Two stand-ins, optionally Prometheus scraping them, and the router in front.

    A context manager: everything it started is stopped when the block ends, also on failure.
    """

    def __init__(self, tmp_path, stable=None, canary=None, prometheus: bool = True) -> None:
        self.tmp_path = tmp_path
        self.options = {
            "stable": {"alias": "champion", "score": 0.2, "seed": 1, **(stable or {})},
            "canary": {"alias": "challenger", "score": 0.2, "seed": 2, **(canary or {})},
        }
        self.with_prometheus = prometheus
        self._started: list = []

    def __enter__(self) -> StandInStack:
        from mlops_pipeline.rollout.prometheus import PrometheusServer
        from mlops_pipeline.rollout.router import Router

        try:
            self.stable = StandIn(self.tmp_path, "stable", **self.options["stable"])
            self._started.append(self.stable)
            self.canary = StandIn(self.tmp_path, "canary", **self.options["canary"])
            self._started.append(self.canary)
            self.prometheus = None
            if self.with_prometheus:
                self.prometheus = PrometheusServer(
                    self.tmp_path, {"stable": self.stable.address, "canary": self.canary.address}
                ).start()
                self._started.append(self.prometheus)
            self.router = Router(
                self.tmp_path, stable=self.stable.address, canary=self.canary.address
            ).start()
            self._started.append(self.router)
            if self.prometheus is not None:
                self.prometheus.wait_for_targets()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for thing in reversed(self._started):
            with contextlib.suppress(Exception):  # keep stopping the others
                thing.stop()
        self._started.clear()
