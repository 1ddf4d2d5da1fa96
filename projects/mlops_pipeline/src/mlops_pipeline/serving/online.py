"""Online feature lookups through Feast, with each view's event timestamp.

Feast returns the latest materialised row per entity and, on request, when its values became
known. Feast's own max-age check compares with the wall clock, which is meaningless for a
replay of 2013, so the service asks for timestamps and applies its own policy
(`serving.policy`) against its own clock. A batch of flights is one Feast call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_pipeline.features import feast_repo
from mlops_pipeline.features.tables import VIEWS
from mlops_pipeline.serving.policy import ViewReading
from mlops_pipeline.serving.schemas import FlightRequest

TIMESTAMP_SUFFIX = "__ts"
"""Feast's key suffix for a feature's event timestamp (seconds) in `to_dict(True)`."""


class FeatureStoreUnavailable(RuntimeError):
    """The Feast repository is missing or unreadable: the service cannot become ready."""


class OnlineFeatures:
    """Reads the flight's feature views from the Feast online store of a pipeline home."""

    def __init__(self, repo: Path) -> None:
        if not (repo / "feature_store.yaml").exists():
            raise FeatureStoreUnavailable(
                f"no Feast repository at {repo} (feature_store.yaml missing): run the pipeline "
                "(`mlops run`) so features are materialised online first"
            )
        try:
            self.store = feast_repo.store(repo)
            self.refs = feast_repo.feature_refs()
            self.store.list_feature_views()  # fails now, not at the first request
        except Exception as error:  # Feast raises many types for a broken registry
            message = f"Feast repository {repo} is unusable: {error}"
            raise FeatureStoreUnavailable(message) from error

    def read(self, flights: Sequence[FlightRequest]) -> list[dict[str, ViewReading]]:
        """Each flight's readings by view name (event_timestamp None where no row exists)."""
        rows = [
            {
                "origin": f.origin,
                "carrier": f.carrier,
                "route": f.route,
                "tailnum": f.tailnum or "",
            }
            for f in flights
        ]
        response = self.store.get_online_features(features=self.refs, entity_rows=rows)
        columns = response.to_dict(include_event_timestamps=True)
        return [_readings(columns, i) for i in range(len(flights))]


def _readings(columns: dict[str, list[Any]], i: int) -> dict[str, ViewReading]:
    readings: dict[str, ViewReading] = {}
    for name, view in VIEWS.items():
        seconds = columns[view.features[0] + TIMESTAMP_SUFFIX][i]
        values = {f: columns[f][i] for f in view.features}
        # Feast reports "not found" as the zero timestamp with null values.
        found = bool(seconds) and any(v is not None for v in values.values())
        stamp = pd.Timestamp(seconds, unit="s", tz="UTC") if found else None
        readings[name] = ViewReading(values, stamp)
    return readings
