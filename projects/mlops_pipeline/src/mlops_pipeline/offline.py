"""The switches that keep MLflow, Prefect and Feast from reaching the network, in one place.

Each tool reads its settings when it is imported, so `apply()` must run before the first import
of any of them: the flow module, the CLI, the benchmark and the tests call it first.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "FEAST_USAGE": "False",
    # Prefect's temporary local API can take a while to start on a busy 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def apply() -> None:
    """Set each switch unless the user set it already."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


FEAST_METRICS_ENV = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")


def forget_feast_metrics_dir() -> None:
    """Undo the prometheus_client multiprocess switch that importing Feast turns on.

    `feast.metrics` (imported with `feast`) points PROMETHEUS_MULTIPROC_DIR at a temporary
    folder of its own for its gunicorn feature server. Left set, every process started from
    ours would keep its Prometheus metrics in files under a folder Feast deletes at exit, and
    `Gauge.clear()` warns. We never run Feast's server, so the variables are removed again
    (only when Feast created them, never a user's own setting), and prometheus_client, which
    Feast imported while they were set, is switched back to in-memory values for every metric
    created from now on (Feast's own metrics keep their files).
    """
    import sys

    metrics = sys.modules.get("feast.metrics")
    if metrics is None or not getattr(metrics, "_owns_mp_dir", False):
        return
    for name in FEAST_METRICS_ENV:
        if os.environ.get(name) == getattr(metrics, "_prometheus_mp_dir", None):
            os.environ.pop(name, None)
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not any(name in os.environ for name in FEAST_METRICS_ENV):
        values.ValueClass = values.MutexValue
