"""A real Prometheus for the local canary: its config, the server process and an API client.

The controller judges a canary on what Prometheus scraped, not on numbers it computed itself,
so the local rollout asks the same questions, with the same staleness and extrapolation, as
Argo Rollouts' analysis does in Kubernetes. Targets carry the label `role` = stable|canary (the
services never label themselves: the label belongs to where they run, not to the code).

Everything binds to loopback; the TSDB lives in a folder the caller owns and removes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops_pipeline.observability import rules
from mlops_pipeline.rollout.processes import ManagedProcess, free_port

__all__ = [
    "PROMETHEUS_BIN",
    "PrometheusClient",
    "PrometheusServer",
    "PrometheusUnavailable",
    "render_config",
]

PROMETHEUS_BIN = os.environ.get("MLOPS_PROMETHEUS_BIN", "/usr/bin/prometheus")


class PrometheusUnavailable(RuntimeError):
    """Prometheus did not answer (refused, timed out, not ready) or answered with an error."""


def render_config(
    targets: Mapping[str, str],
    *,
    scrape_interval: str = "1s",
    job: str = "flight-delay",
    rule_files: Sequence[str] = (),
) -> str:
    """prometheus.yml scraping each `role -> host:port` target with the label `role`.

    The router is not a target: nginx has no Prometheus endpoint without an exporter, and its
    JSON access log already says who answered each request. The scrape timeout equals the
    interval (Prometheus refuses a longer one). `rule_files` are paths as Prometheus reads
    them (relative ones from the config file's folder).
    """
    if not targets:
        raise ValueError("render_config: no targets to scrape")
    for role, address in targets.items():
        if role not in ("stable", "canary"):
            raise ValueError(f"render_config: role must be stable or canary, got {role!r}")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"render_config: target {address!r} is not host:port")
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        **({"rule_files": list(rule_files)} if rule_files else {}),
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [address], "labels": {"role": role}}
                    for role, address in sorted(targets.items())
                ],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


class PrometheusClient:
    """The HTTP API's instant queries, with timeouts and one clear error type."""

    def __init__(self, base_url: str, timeout_s: float = 2.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            raise PrometheusUnavailable(
                f"Prometheus at {self.base_url} answered {error.code} for {path}: {detail}"
            ) from error
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise PrometheusUnavailable(
                f"Prometheus at {self.base_url} unreachable ({path}): {error}"
            ) from error
        return body

    def ready(self) -> bool:
        """True once /-/ready answers 200 (False while it starts or when it is gone)."""
        try:
            self._get("/-/ready")
        except PrometheusUnavailable:
            return False
        return True

    def query_vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's result as (labels, value) pairs; a scalar becomes one pair.

        Values are floats, NaN included (PromQL's 0/0): the caller decides what NaN means.
        """
        body = self._get("/api/v1/query", {"query": promql})
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as error:
            raise PrometheusUnavailable(f"Prometheus sent non-JSON for {promql!r}") from error
        if payload.get("status") != "success":
            raise PrometheusUnavailable(
                f"Prometheus query failed: {payload.get('errorType')}: {payload.get('error')} "
                f"({promql!r})"
            )
        data = payload["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise ValueError(f"expected an instant vector for {promql!r}, got {data['resultType']}")
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def query(self, promql: str) -> float | None:
        """A query expected to give at most one number: None when the result is empty.

        More than one series is a mistake in the query (a missing `sum`), so it raises.
        """
        result = self.query_vector(promql)
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"{promql!r} returned {len(result)} series, expected one")
        return result[0][1]

    def wait_for(self, promql: str, timeout_s: float, poll_s: float = 0.25) -> float:
        """Poll until `promql` gives a real number (e.g. the first scrape landed), else raise."""
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = self.query(promql)
                if value is not None and not math.isnan(value):
                    return value
            except PrometheusUnavailable as error:
                last = error
            time.sleep(poll_s)
        raise PrometheusUnavailable(
            f"no value for {promql!r} from {self.base_url} within {timeout_s:.0f} s"
            + (f" (last error: {last})" if last else "")
        )


class PrometheusServer:
    """The Prometheus binary on a loopback port with its own config and TSDB under `state_dir`.

    Use as a context manager (or call `stop()` in a finally): the process is stopped and the
    TSDB removed also when the block fails. With `recording_rules` (the default) it evaluates
    the deployed recording rules (`observability.rules`) every scrape interval, so the
    dashboard's panels that read recorded series have data within seconds, as in a cluster.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        targets: Mapping[str, str],
        *,
        port: int | None = None,
        scrape_interval: str = "1s",
        binary: str = PROMETHEUS_BIN,
        recording_rules: bool = True,
    ):
        self.state_dir = Path(state_dir) / "prometheus"
        self.targets = dict(targets)
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.recording_rules = recording_rules
        self.process: ManagedProcess | None = None
        self.client = PrometheusClient(self.url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.state_dir / "prometheus.yml"

    @property
    def rules_path(self) -> Path:
        return self.state_dir / "recording.yml"

    def _write_config(self) -> None:
        """prometheus.yml, and the recording rules at the scrape interval when asked for."""
        rule_files: list[str] = []
        if self.recording_rules:
            self.rules_path.write_text(
                rules.to_yaml(rules.recording_rules_every(self.scrape_interval))
            )
            rule_files.append(self.rules_path.name)
        self.config_path.write_text(
            render_config(self.targets, scrape_interval=self.scrape_interval, rule_files=rule_files)
        )

    def start(self, ready_timeout_s: float = 30.0) -> PrometheusServer:
        """Write the config (and rules), check them with promtool when present, start and wait
        for /-/ready."""
        if not Path(self.binary).exists():
            raise FileNotFoundError(
                f"Prometheus binary {self.binary} not found (apt-get install prometheus, "
                "or set MLOPS_PROMETHEUS_BIN)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        promtool = Path(self.binary).with_name("promtool")
        if promtool.exists():
            check = subprocess.run(
                [str(promtool), "check", "config", str(self.config_path)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if check.returncode != 0:
                raise ValueError(
                    f"promtool rejected {self.config_path}: {check.stdout}{check.stderr}"
                )
        self.process = ManagedProcess.start(
            [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.state_dir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            name="prometheus",
            log_path=self.state_dir / "prometheus.log",
        )
        try:
            self.wait_ready(ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Block until /-/ready answers; raise with the log's tail if the process died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and not self.process.alive():
                raise PrometheusUnavailable(
                    f"Prometheus exited with {self.process.returncode()}: {self.process.log_tail()}"
                )
            if self.client.ready():
                return
            time.sleep(0.1)
        raise PrometheusUnavailable(f"Prometheus at {self.url} not ready within {timeout_s:.0f} s")

    def wait_for_targets(self, timeout_s: float = 20.0) -> None:
        """Block until every target has been scraped successfully once (first scrape ~7 s)."""
        for role in self.targets:
            self.client.wait_for(f'max(up{{role="{role}"}}) == 1', timeout_s)

    def stop(self, remove_tsdb: bool = True) -> None:
        if self.process is not None:
            self.process.stop()
        if remove_tsdb:
            shutil.rmtree(self.state_dir / "tsdb", ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
