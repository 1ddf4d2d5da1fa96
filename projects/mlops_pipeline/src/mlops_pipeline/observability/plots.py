"""The dashboard's panels drawn with matplotlib from a live Prometheus, for the book.

Same queries as the Grafana dashboard (`dashboards.panel_queries()`), run through Prometheus'
HTTP API (`/api/v1/query_range`) with the dashboard variables filled in the way Grafana would:
`$role` matches every role, `$__rate_interval` is max(4 x scrape interval, step + scrape
interval). One PNG per panel. Only the standard library talks to Prometheus; matplotlib is
imported when drawing (Agg backend: no display needed).
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops_pipeline.observability.dashboards import Panel, panel_queries
from mlops_pipeline.observability.promql import substitute

_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_SLUG = re.compile(r"[^a-z0-9]+")


class PrometheusQueryError(RuntimeError):
    """Prometheus answered with an error (a bad query) or could not be reached."""


@dataclass(frozen=True)
class Series:
    """One result series of one target: its label set, legend, and samples."""

    labels: dict[str, str]
    legend: str
    times: list[datetime]
    values: list[float]


def _epoch(moment: datetime | float) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError(f"times must carry a time zone, got {moment!r}")
        return moment.timestamp()
    return float(moment)


def _seconds(step: timedelta | float) -> float:
    seconds = step.total_seconds() if isinstance(step, timedelta) else float(step)
    if seconds <= 0:
        raise ValueError(f"step must be positive, got {step!r}")
    return seconds


def query_range(
    prometheus_url: str, expr: str, start: float, end: float, step: float, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """`/api/v1/query_range` results: [{"metric": {...}, "values": [[t, "v"], ...]}, ...]."""
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    url = f"{prometheus_url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:  # 400/422: Prometheus explains in the body
        try:
            detail = json.load(exc).get("error", exc.reason)
        except (ValueError, AttributeError):
            detail = exc.reason
        raise PrometheusQueryError(f"query rejected ({exc.code}): {detail}: {expr}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PrometheusQueryError(f"Prometheus at {prometheus_url} unreachable: {exc}") from None
    if body.get("status") != "success":
        raise PrometheusQueryError(f"query failed: {body.get('error')}: {expr}")
    return body["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: {{name}} becomes the label's value."""
    if not template:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), template)


def rate_interval(step: float, scrape_interval: float) -> str:
    """Grafana's $__rate_interval: at least four scrapes, and one scrape more than a step."""
    return f"{math.ceil(max(4 * scrape_interval, step + scrape_interval))}s"


def fetch_panels(
    prometheus_url: str,
    start: datetime | float,
    end: datetime | float,
    step: timedelta | float,
    *,
    role: str = ".+",
    scrape_interval: float = 15.0,
) -> dict[str, list[Series]]:
    """Every panel's series over [start, end], keyed by panel title."""
    t0, t1, dt = _epoch(start), _epoch(end), _seconds(step)
    if t1 <= t0:
        raise ValueError(f"end must be after start ({start} .. {end})")
    variables = {"role": role, "__rate_interval": rate_interval(dt, scrape_interval)}
    out: dict[str, list[Series]] = {}
    for panel in panel_queries():
        series = []
        for target in panel.targets:
            for result in query_range(
                prometheus_url, substitute(target.expr, variables), t0, t1, dt
            ):
                labels = {k: v for k, v in result["metric"].items() if k != "__name__"}
                series.append(
                    Series(
                        labels=labels,
                        legend=legend(target.legend, labels),
                        times=[datetime.fromtimestamp(float(t), UTC) for t, _ in result["values"]],
                        values=[float(v) for _, v in result["values"]],
                    )
                )
        out[panel.title] = series
    return out


def _slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")


def _draw_lines(ax: Any, panel: Panel, series: list[Series]) -> None:
    for s in series:
        ax.plot(s.times, s.values, label=s.legend, linewidth=1.2)
    for value in panel.thresholds:
        ax.axhline(value, color="red", linestyle="--", linewidth=0.8)
    low, high = panel.y_range
    if low is not None or high is not None:
        ax.set_ylim(low, high)
    if panel.unit == "percentunit":
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.1%}")
    elif panel.unit:
        ax.set_ylabel({"reqps": "requests / s", "s": "seconds"}.get(panel.unit, ""))
    if series:
        ax.legend(fontsize=7, loc="upper left")


def _draw_heatmap(ax: Any, series: list[Series], step: float) -> None:
    """Cumulative `le` buckets -> predictions per bucket, one column per time step."""
    import numpy as np

    buckets = sorted((float(s.labels["le"]), s) for s in series if s.labels.get("le") != "+Inf")
    if not buckets:
        return
    times = sorted({t for _, s in buckets for t in s.times})
    column = {t: i for i, t in enumerate(times)}
    cumulative = np.zeros((len(buckets), len(times)))
    for row, (_, s) in enumerate(buckets):
        for t, v in zip(s.times, s.values, strict=True):
            cumulative[row, column[t]] = v
    counts = np.diff(cumulative, axis=0, prepend=0.0)
    x_edges = [*times, times[-1] + timedelta(seconds=step)]
    y_edges = [0.0] + [le for le, _ in buckets]
    mesh = ax.pcolormesh(x_edges, y_edges, counts, shading="flat", cmap="Oranges")
    ax.figure.colorbar(mesh, ax=ax, label="predictions per interval")
    ax.set_ylabel("delay probability")


def _draw_table(ax: Any, series: list[Series]) -> None:
    """Label sets seen in the window with when each was first and last seen (a version change
    during a rollout shows as two rows)."""
    ax.axis("off")
    rows = []
    for s in series:
        if s.times:
            first, last = min(s.times), max(s.times)
            rows.append(
                [*(s.labels.get(k, "") for k in ("role", "name", "version", "alias"))]
                + [f"{first:%H:%M:%S}", f"{last:%H:%M:%S}"]
            )
    if rows:
        columns = ["role", "name", "version", "alias", "first seen", "last seen"]
        ax.table(cellText=sorted(rows), colLabels=columns, loc="center")


def render_panels(
    prometheus_url: str,
    start: datetime | float,
    end: datetime | float,
    step: timedelta | float,
    out_dir: Path,
    *,
    role: str = ".+",
    scrape_interval: float = 15.0,
) -> list[Path]:
    """Draw every dashboard panel over [start, end] as `<out_dir>/<panel-title>.png`.

    A panel without data is drawn with a "no data" note rather than skipped, so the set of
    files is always the dashboard's. Returns the paths in dashboard order.
    """
    data = fetch_panels(
        prometheus_url, start, end, step, role=role, scrape_interval=scrape_interval
    )
    # Figures made directly, not through pyplot: no global backend switch (a notebook's
    # inline figures keep working) and nothing to close.
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for panel in panel_queries():
        series = data[panel.title]
        fig = Figure(figsize=(8, 3.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        if panel.kind == "heatmap":
            _draw_heatmap(ax, series, _seconds(step))
        elif panel.kind == "table":
            _draw_table(ax, series)
        else:  # timeseries and stat: a stat panel's number is the line's last point
            _draw_lines(ax, panel, series)
        if panel.kind != "table":
            locator = mdates.AutoDateLocator()
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        if not series:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(panel.title, fontsize=10)
        path = out_dir / f"{_slug(panel.title)}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths
