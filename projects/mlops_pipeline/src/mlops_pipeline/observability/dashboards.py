"""The service's Grafana dashboard, as code: `deploy/grafana/flight-delay.json`.

The panels are data (`PANELS`): a title, a kind, a unit and PromQL targets, mostly over the
recording rules of `rules.py`, so the dashboard and the alerts read the same numbers. `dashboard()`
turns them into Grafana's JSON model (schemaVersion 39, provisioning-ready: a `${datasource}`
variable instead of a fixed data source uid, and a multi-value `role` variable, stable/canary);
`panel_queries()` hands the same panels to `plots.render_panels`, which draws them with
matplotlib from a live Prometheus (the book has no Grafana).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from mlops_pipeline.observability.rules import FEED_VIEWS, PERIOD_INTERVAL, promql_number
from mlops_pipeline.observability.slo import AVAILABILITY, LATENCY, LATENCY_THRESHOLD_SECONDS, SLO

UID = "flight-delay"
TITLE = "Flight delay prediction service"
SCHEMA_VERSION = 39
FILE_NAME = "flight-delay.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ROLE = 'role=~"$role"'
"""Every per-role query filters on the dashboard's role variable."""

PanelKind = Literal["timeseries", "heatmap", "stat", "table"]


@dataclass(frozen=True)
class Target:
    """One query of a panel; `legend` uses Grafana's {{label}} syntax."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel: what it shows (`description` is the tooltip) and how to draw it."""

    title: str
    kind: PanelKind
    targets: tuple[Target, ...]
    unit: str
    description: str
    thresholds: tuple[float, ...] = ()
    """Reference lines (the SLO, the burn-rate factors): red from each value upwards."""
    width: int = 12
    height: int = 8
    y_range: tuple[float | None, float | None] = (None, None)
    options: dict[str, Any] = field(default_factory=dict)


def _burn_targets(slo: SLO) -> tuple[Target, ...]:
    budget = promql_number(slo.budget)
    return tuple(
        Target(f"{slo.ratio(window)} / {budget}", f"{window} window")
        for window in ("1h", "6h", "3d")
    )


def _budget_remaining(slo: SLO, name: str) -> Target:
    """Over the recorded period ratio (rules.PERIOD_GROUP): a 30-day rate over the raw
    counters, per viewer and refresh, would read a month of samples of every series each time."""
    return Target(f"1 - {slo.ratio(slo.period)} / {promql_number(slo.budget)}", name)


_FEED_VIEWS = "|".join(FEED_VIEWS)

PANELS: tuple[Panel, ...] = (
    Panel(
        "Request rate by role",
        "timeseries",
        (Target(f"role:mlops_http_requests:rate1m{{{ROLE}}}", "{{role}}"),),
        "reqps",
        "Requests per second over 1 minute, all routes, per rollout role.",
    ),
    Panel(
        "Error ratio of /v1/predict (5m)",
        "timeseries",
        (Target(f"role:mlops_predict_requests:error_ratio_rate5m{{{ROLE}}}", "{{role}}"),),
        "percentunit",
        "Share of valid POST /v1/predict requests (4xx left out) answered with a 5xx; the line "
        "is the SLO's budget.",
        thresholds=(AVAILABILITY.budget,),
    ),
    Panel(
        "Latency of /v1/predict, p50 and p99 (5m)",
        "timeseries",
        (
            Target(f"role:mlops_predict_request_duration_seconds:p50_5m{{{ROLE}}}", "p50 {{role}}"),
            Target(f"role:mlops_predict_request_duration_seconds:p99_5m{{{ROLE}}}", "p99 {{role}}"),
        ),
        "s",
        "Quantiles estimated from the request-duration histogram; the line is the 25 ms target.",
        thresholds=(LATENCY_THRESHOLD_SECONDS,),
    ),
    Panel(
        "Availability SLO burn rate",
        "timeseries",
        _burn_targets(AVAILABILITY),
        "none",
        "Error ratio / error budget over each alert window: 1 spends the 30-day budget exactly "
        "in 30 days; pages at 14.4 (1h) and 6 (6h), a ticket at 1 (3d).",
        thresholds=(1.0, 6.0, 14.4),
    ),
    Panel(
        "Latency SLO burn rate",
        "timeseries",
        _burn_targets(LATENCY),
        "none",
        "Share of requests slower than 25 ms / its 1 % budget, over each alert window.",
        thresholds=(1.0, 6.0, 14.4),
    ),
    Panel(
        "Error budget remaining (30 days)",
        "stat",
        (
            _budget_remaining(AVAILABILITY, "availability"),
            _budget_remaining(LATENCY, "latency"),
        ),
        "percentunit",
        "1 - (bad-event ratio over 30 days) / budget; below 0 the SLO is missed. Read from the "
        f"30-day ratios Prometheus records every {PERIOD_INTERVAL}.",
    ),
    Panel(
        "Prediction score distribution",
        "heatmap",
        (
            Target(
                "sum by (le) (increase(mlops_prediction_score_bucket"
                f"{{{ROLE}}}[$__rate_interval]))",
                "{{le}}",
            ),
        ),
        "none",
        "Predicted delay probabilities per bucket of 0.05 over time; a change of shape here is "
        "a change of inputs or of model.",
        options={"calculate": False},
    ),
    Panel(
        "Mean prediction score by role",
        "timeseries",
        (Target(f"role:mlops_prediction_score:mean_rate5m{{{ROLE}}}", "{{role}}"),),
        "none",
        "Mean predicted delay probability over 5 minutes; the canary analysis compares these.",
        y_range=(0.0, 1.0),
    ),
    Panel(
        "Missing or stale features per prediction, by view",
        "timeseries",
        (
            Target("view_reason:mlops_features_missing:ratio_rate5m", "{{view}} ({{reason}})"),
            Target("mlops:predictions:degraded_ratio_rate5m", "degraded predictions (any view)"),
        ),
        "percentunit",
        "Share of predictions whose view had no row (missing) or one past its TTL (stale); the "
        "line is the FeaturesMissing alert's 5 %.",
        thresholds=(0.05,),
    ),
    Panel(
        "Feature staleness p95 by view",
        "timeseries",
        (
            Target(
                f'view:mlops_feature_staleness_seconds:p95_5m{{view=~"{_FEED_VIEWS}"}}',
                "{{view}}",
            ),
        ),
        "s",
        "95th percentile age of the online rows used (views with a TTL: weather 3 h, rates 2 h).",
    ),
    Panel(
        "Model being served",
        "table",
        (
            Target(
                f"max by (role, name, version, alias) (mlops_model_info{{{ROLE}}})",
                "",
            ),
        ),
        "none",
        "Registered model name, version and alias per role, from mlops_model_info.",
        width=24,
        height=5,
    ),
)


def panel_queries() -> list[Panel]:
    """The dashboard's panels with their queries, for drawing them without Grafana."""
    return list(PANELS)


def _thresholds(values: tuple[float, ...]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": "red", "value": v} for v in values]
    return {"mode": "absolute", "steps": steps}


def _target(target: Target, ref: str, kind: PanelKind) -> dict[str, Any]:
    out: dict[str, Any] = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": target.expr,
        "legendFormat": target.legend or "__auto",
        "range": kind != "table",
        "instant": kind == "table",
        "refId": ref,
    }
    if kind == "heatmap":
        out["format"] = "heatmap"
    if kind == "table":
        out["format"] = "table"
    return out


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel.thresholds)}
    low, high = panel.y_range
    if low is not None:
        defaults["min"] = low
    if high is not None:
        defaults["max"] = high
    options: dict[str, Any] = {}
    transformations: list[dict[str, Any]] = []
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 0,
            "showPoints": "never",
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        }
    elif panel.kind == "heatmap":
        options = {
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "rowsFrame": {"layout": "auto"},
            "yAxis": {"axisPlacement": "left", "unit": panel.unit},
            "tooltip": {"mode": "single", "yHistogram": True},
            "legend": {"show": True},
        }
    elif panel.kind == "stat":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "value_and_name",
            "justifyMode": "auto",
            "orientation": "auto",
        }
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [
                {"color": "red", "value": None},
                {"color": "orange", "value": 0},
                {"color": "green", "value": 0.25},
            ],
        }
    elif panel.kind == "table":
        options = {"showHeader": True, "cellHeight": "sm"}
        transformations = [
            {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}
        ]
    options.update(panel.options)
    refs = "ABCDEFGHIJ"
    out: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [_target(t, refs[i], panel.kind) for i, t in enumerate(panel.targets)],
    }
    if transformations:
        out["transformations"] = transformations
    return out


def _templating() -> dict[str, Any]:
    role_query = "label_values(mlops_http_requests_total, role)"
    return {
        "list": [
            {
                "name": "datasource",
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "includeAll": False,
                "multi": False,
                "options": [],
                "refresh": 1,
                "regex": "",
            },
            {
                "name": "role",
                "label": "Role",
                "type": "query",
                "datasource": DATASOURCE,
                "definition": role_query,
                "query": {
                    "qryType": 1,
                    "query": role_query,
                    "refId": "PrometheusVariableQueryEditor-VariableQuery",
                },
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "hide": 0,
                "includeAll": True,
                "allValue": ".+",
                "multi": True,
                "options": [],
                "refresh": 2,
                "regex": "",
                "sort": 1,
            },
        ]
    }


def dashboard() -> dict[str, Any]:
    """Grafana's JSON model of the dashboard; panels flow left to right in rows of 24 columns."""
    panels, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(PANELS, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(panel, panel_id, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": UID,
        "title": TITLE,
        "description": (
            "RED metrics, SLO burn rates and the model's inputs and outputs. Generated by "
            "`make rules` from mlops_pipeline.observability.dashboards: edit the code."
        ),
        "tags": ["mlops", "flight-delay", "slo"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": _templating(),
        "panels": panels,
    }


def render_dashboard() -> str:
    """The dashboard file's text (stable key order, two-space indent, trailing newline)."""
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"
