"""Shared test set-up: every tool offline, nothing written outside pytest's temporary folders."""

from __future__ import annotations

import os

from mlops_pipeline import offline

# Before anything imports MLflow, Prefect or Feast: no telemetry, no analytics, no hub.
offline.apply()
# Prefect's temporary API logs its shutdown at interpreter exit, after pytest closed the stream.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
