"""The Grafana dashboard as code, and its panels drawn from a real Prometheus."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from observability_support import DEPLOY, DESIGN_METRICS, check_exprs_parse

from mlops_pipeline.observability import dashboards, plots, rules
from mlops_pipeline.observability.promql import metric_names, substitute

DASHBOARD = DEPLOY / "grafana" / dashboards.FILE_NAME
VARIABLES = {"role": ".+", "__rate_interval": "1m"}


def _exprs() -> dict[str, str]:
    """{panel title/refId: expr} of the committed dashboard."""
    board = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']}/{target['refId']}": target["expr"]
        for panel in board["panels"]
        for target in panel["targets"]
    }


def test_committed_dashboard_equals_the_generator():
    """deploy/grafana/flight-delay.json is exactly what `make rules` writes."""
    assert DASHBOARD.read_text() == dashboards.render_dashboard(), "run `make rules`"


def test_dashboard_model_is_provisioning_ready():
    """Schema 39, a Prometheus datasource variable used by every panel, a multi-value role."""
    board = json.loads(DASHBOARD.read_text())
    assert board["schemaVersion"] == 39 and board["uid"] == "flight-delay"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    role = variables["role"]
    assert role["type"] == "query" and role["multi"] and role["includeAll"]
    assert role["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert role["definition"] == "label_values(mlops_http_requests_total, role)"
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
        assert panel["type"] in ("timeseries", "heatmap", "stat", "table"), panel["title"]


def test_panel_ids_are_unique_and_the_grid_does_not_overlap():
    """Unique ids and refIds; panels inside 24 columns, no two covering the same cell."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        covered = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered


def test_dashboard_has_the_panels_the_runbooks_refer_to():
    """Request rate, errors, latency, burn rates, budget, scores, features, model version."""
    panels = {p["title"]: p for p in json.loads(DASHBOARD.read_text())["panels"]}
    wanted = {
        "Request rate by role": "timeseries",
        "Error ratio of /v1/predict (5m)": "timeseries",
        "Latency of /v1/predict, p50 and p99 (5m)": "timeseries",
        "Availability SLO burn rate": "timeseries",
        "Latency SLO burn rate": "timeseries",
        "Error budget remaining (30 days)": "stat",
        "Prediction score distribution": "heatmap",
        "Mean prediction score by role": "timeseries",
        "Missing or stale features per prediction, by view": "timeseries",
        "Feature staleness p95 by view": "timeseries",
        "Model being served": "table",
    }
    assert {title: panels[title]["type"] for title in wanted} == wanted
    heatmap = panels["Prediction score distribution"]
    assert heatmap["targets"][0]["format"] == "heatmap"
    assert heatmap["options"]["calculate"] is False  # Prometheus buckets, not Grafana's
    table = panels["Model being served"]["targets"][0]
    assert table["instant"] and table["format"] == "table"
    burn = [t["expr"] for t in panels["Availability SLO burn rate"]["targets"]]
    assert burn == [
        f"mlops:predict_requests:error_ratio_rate{w} / 0.005" for w in ("1h", "6h", "3d")
    ]


def test_budget_panel_reads_the_recorded_period_ratios():
    """The 30-day budget panel reads the slow group's recorded ratios, no raw 30d range."""
    panels = {p["title"]: p for p in json.loads(DASHBOARD.read_text())["panels"]}
    exprs = [t["expr"] for t in panels["Error budget remaining (30 days)"]["targets"]]
    assert exprs == [
        "1 - mlops:predict_requests:error_ratio_rate30d / 0.005",
        "1 - mlops:predict_requests:slow_ratio_rate30d / 0.01",
    ]
    [period] = [g for g in rules.recording_rules()["groups"] if g["name"] == rules.PERIOD_GROUP]
    in_period_group = {r["record"] for r in period["rules"]}
    assert set().union(*map(metric_names, exprs)) == in_period_group
    assert not any("[" in e for e in _exprs().values() if "30d" in e)


def test_every_expr_reads_known_series_and_fills_its_variables():
    """Each query reads design metrics or recorded series, and only $role/$__rate_interval."""
    known = DESIGN_METRICS | set(rules.recorded_names())
    for name, expr in _exprs().items():
        concrete = substitute(expr, VARIABLES)  # KeyError on any other variable
        unknown = metric_names(concrete) - known
        assert not unknown, f"{name} reads unknown series {unknown}"
    per_role = [e for e in _exprs().values() if "role:" in e or "score_bucket" in e]
    assert per_role and all('role=~"$role"' in e for e in per_role)


@pytest.mark.slow
def test_every_expr_parses(tmp_path):
    """Each query, variables filled in, loads as a recording rule in promtool."""
    check_exprs_parse({k: substitute(e, VARIABLES) for k, e in _exprs().items()}, tmp_path)


def test_panel_queries_are_the_dashboard_panels():
    """panel_queries() returns the same titles and exprs the JSON holds, in order."""
    from_json = list(_exprs().values())
    from_code = [t.expr for panel in dashboards.panel_queries() for t in panel.targets]
    assert from_code == from_json


def test_plot_helpers():
    """Grafana's legend format, $__rate_interval, and clear errors for bad input."""
    assert plots.legend("p99 {{role}}", {"role": "canary"}) == "p99 canary"
    assert plots.legend("", {"b": "2", "a": "1"}) == "a=1, b=2"
    assert plots.rate_interval(step=15, scrape_interval=15) == "60s"
    assert plots.rate_interval(step=120, scrape_interval=15) == "135s"
    with pytest.raises(ValueError, match="after start"):
        plots.fetch_panels("http://127.0.0.1:9", 100.0, 50.0, 1)
    with pytest.raises(ValueError, match="time zone"):
        from datetime import datetime

        plots.fetch_panels("http://127.0.0.1:9", datetime(2026, 1, 1), 50.0, 1)


def test_unreachable_prometheus_is_a_clear_error(tmp_path):
    """No server on the port: PrometheusQueryError naming the URL; nothing is drawn."""
    port = _free_port()
    with pytest.raises(plots.PrometheusQueryError, match=f"127.0.0.1:{port} unreachable"):
        plots.render_panels(f"http://127.0.0.1:{port}", 0.0, 60.0, 15, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- a real Prometheus scraping a real metrics registry ---------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(url: str, expr: str) -> list[dict]:
    with urllib.request.urlopen(
        f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    ) as r:
        return json.load(r)["data"]["result"]


class _Traffic(threading.Thread):
    """Feeds the service's own Metrics: every 20 ms, 9 answers of 4 ms and one 500, and one
    flight scored 0.3 with weather 20 min old, origin rates 25 min old, planes missing."""

    def __init__(self, metrics) -> None:
        super().__init__(daemon=True)
        self.metrics = metrics
        self.stop = threading.Event()

    def run(self) -> None:
        views = {"weather": "ok", "origin_delay_rates": "ok", "planes": "missing"}
        ages = {"weather": 1200.0, "origin_delay_rates": 1500.0}
        while not self.stop.is_set():
            for status in (200,) * 9 + (500,):
                self.metrics.observe_request("/v1/predict", "POST", status, 0.004)
            self.metrics.observe_prediction(0.3, ages, views)
            self.stop.wait(0.02)


@pytest.fixture
def prometheus(tmp_path):
    """Prometheus on loopback scraping the service's metrics registry every second, with the
    committed recording rules; yields its URL. Everything is stopped afterwards.

    The rules are the committed ones with every group's interval set to 1 s
    (`rules.recording_rules_every`): Prometheus delays a group's first evaluation by up to its
    interval, so the slow 30-day group (2m30s) could otherwise say nothing for minutes."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found on PATH (Debian: apt-get install prometheus)")
    from prometheus_client import start_http_server

    from mlops_pipeline.serving.observability import Metrics

    metrics = Metrics()
    metrics.set_model("flight-delay", "3", "champion")
    exporter, _ = start_http_server(0, "127.0.0.1", registry=metrics.registry)
    traffic = _Traffic(metrics)
    traffic.start()
    port = _free_port()
    committed = yaml.safe_load((DEPLOY / "prometheus" / "recording.yml").read_text())
    fast = rules.recording_rules_every("1s")
    assert [g["rules"] for g in fast["groups"]] == [g["rules"] for g in committed["groups"]]
    (tmp_path / "recording.yml").write_text(rules.to_yaml(fast))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "recording.yml")],
        "scrape_configs": [
            {
                "job_name": "flight-delay",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{exporter.server_port}"], "labels": {"role": "stable"}}
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        traffic.stop.set()
        traffic.join(timeout=5)
        exporter.shutdown()
        exporter.server_close()


def _wait_for_data(url: str, timeout: float = 60.0) -> None:
    """The first scrape lands several seconds after start; rates need two, rules one more."""
    deadline = time.monotonic() + timeout
    wanted = (
        "role:mlops_prediction_score:mean_rate5m",
        "view:mlops_feature_staleness_seconds:p95_5m",
        "mlops:predict_requests:error_ratio_rate30d",
    )
    while time.monotonic() < deadline:
        try:
            if all(_query(url, expr) for expr in wanted):
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    pytest.fail(f"no recorded series from Prometheus at {url} within {timeout} s")


def _last(series: list[plots.Series], **labels: str) -> float:
    match = [s for s in series if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(match) == 1, (labels, [s.labels for s in series])
    return match[0].values[-1]


@pytest.mark.slow
def test_render_panels_from_a_live_prometheus(prometheus, tmp_path):
    """Every panel is queried from a real Prometheus fed by the service's Metrics, shows the
    numbers the traffic implies, and is drawn as a PNG."""
    start = time.time()
    _wait_for_data(prometheus)
    time.sleep(1.5)  # one more scrape and evaluation for every rule
    end = time.time()
    data = plots.fetch_panels(prometheus, start - 5, end, 1, scrape_interval=1)

    # rate() divides by the whole 1m window, of which only seconds hold data yet: just > 0.
    assert _last(data["Request rate by role"], role="stable") > 0
    assert _last(data["Error ratio of /v1/predict (5m)"], role="stable") == pytest.approx(
        0.1, abs=0.01
    )
    latency = data["Latency of /v1/predict, p50 and p99 (5m)"]
    p50 = next(s for s in latency if s.legend == "p50 stable")
    assert p50.values[-1] == pytest.approx(0.00375)  # 4 ms: halfway up the (2.5, 5] ms bucket
    burn = {s.legend: s.values[-1] for s in data["Availability SLO burn rate"]}
    assert burn["1h window"] == pytest.approx(20, abs=2)  # 10 % errors / 0.5 % budget
    budget = {s.legend: s.values[-1] for s in data["Error budget remaining (30 days)"]}
    assert budget["availability"] == pytest.approx(1 - 20, abs=2) and budget["latency"] == 1
    assert _last(data["Mean prediction score by role"], role="stable") == pytest.approx(0.3)
    buckets = {s.labels["le"]: s.values[-1] for s in data["Prediction score distribution"]}
    assert buckets["0.25"] == 0 and buckets["0.3"] > 0 and buckets["0.3"] == buckets["1.0"]
    missing = data["Missing or stale features per prediction, by view"]
    assert _last(missing, view="planes", reason="missing") == pytest.approx(1.0, abs=0.05)
    staleness = data["Feature staleness p95 by view"]
    assert _last(staleness, view="weather") == pytest.approx(900 + 900 * 0.95)
    assert {s.labels["view"] for s in staleness} == {"weather", "origin_delay_rates"}
    model = data["Model being served"]
    assert [(s.labels["role"], s.labels["version"], s.labels["alias"]) for s in model] == [
        ("stable", "3", "champion")
    ]

    paths = plots.render_panels(prometheus, start - 5, end, 1, tmp_path / "png", scrape_interval=1)
    assert [p.stem for p in paths] == [plots._slug(p.title) for p in dashboards.panel_queries()]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert Path(paths[0]).parent == tmp_path / "png"
