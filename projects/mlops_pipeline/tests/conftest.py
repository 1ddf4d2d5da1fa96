"""Shared test set-up: every tool offline, nothing written outside pytest's temporary folders."""

from __future__ import annotations

import os

# Before anything imports MLflow, Prefect or Feast: no telemetry, no analytics, no hub.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("FEAST_USAGE", "False")
# Prefect's temporary API logs its shutdown at interpreter exit, after pytest closed the stream.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
