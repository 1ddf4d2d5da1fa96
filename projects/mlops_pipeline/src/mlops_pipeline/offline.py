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
