"""A pipeline home the prediction service can serve from, built quickly from real 2013 data.

Feature tables for [FEATURES_FROM, ONLINE_END) from the source's timeline, a Feast repository
applied and materialised online for [ONLINE_START, ONLINE_END), and `flight-delay` models
trained on February and registered: hist_gb as `champion` (and, when asked, the logistic
regression as `challenger`). Requests for flights around ONLINE_END find fresh features with
the fixed clock at AS_OF; flights after it, with the schedule clock, find stale ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from training_fixtures import build_training_set

from mlops_pipeline.features import feast_repo
from mlops_pipeline.features import tables as feature_tables
from mlops_pipeline.paths import Paths
from mlops_pipeline.rollout.traffic import flight_requests
from mlops_pipeline.source import timeline
from mlops_pipeline.training.models import default_specs
from mlops_pipeline.training.registry import CHALLENGER, CHAMPION, MODEL_NAME
from mlops_pipeline.training.splits import TimeSplit
from mlops_pipeline.training.tracking import store_uri, tracking
from mlops_pipeline.training.train import train_candidates

ONLINE_START = pd.Timestamp("2013-03-12", tz="UTC")
ONLINE_END = pd.Timestamp("2013-03-15", tz="UTC")
FEATURES_FROM = ONLINE_START - pd.Timedelta(days=8)
AS_OF = ONLINE_END
"""The fixed clock at which every materialised view is fresh (weather published 23:00+)."""
TRAIN = ("2013-02-01", "2013-03-01")
SPLIT = TimeSplit("2013-02-17", "2013-02-23", start="2013-02-01", end="2013-03-01")


def build_serving_home(root: Path, *, challenger: bool = False) -> Paths:
    """Feature tables, an applied and materialised Feast repo, and registered models."""
    paths = Paths.at(root)
    events = timeline.build_timeline(None, ONLINE_END)
    flights, weather, planes = (timeline.rows(events, t) for t in ("flights", "weather", "planes"))
    built = feature_tables.build_feature_tables(flights, weather, planes, FEATURES_FROM, ONLINE_END)
    feature_tables.write_feature_tables(paths, built, FEATURES_FROM, ONLINE_END)
    repo = feast_repo.write_repo(paths)
    feast_repo.apply(repo, paths.features)
    feast_repo.materialize(repo, ONLINE_START, ONLINE_END)
    register_models(paths, challenger=challenger)
    return paths


def register_models(paths: Paths, *, challenger: bool = False) -> dict[str, str]:
    """Train on February; hist_gb -> champion, logistic -> challenger (if asked)."""
    import mlflow

    uri = store_uri(paths.mlruns)
    logistic, hist_gb = default_specs()
    specs = [hist_gb, logistic] if challenger else [hist_gb]
    candidates = train_candidates(build_training_set(*TRAIN), SPLIT, uri, specs=specs)
    versions: dict[str, str] = {}
    with tracking(uri) as client:
        for alias, candidate in zip((CHAMPION, CHALLENGER), candidates, strict=False):
            version = str(mlflow.register_model(candidate.model_uri, MODEL_NAME).version)
            client.set_registered_model_alias(MODEL_NAME, alias, version)
            versions[alias] = version
    return versions


def sample_requests(n: int = 200) -> list[dict[str, Any]]:
    """`n` real flights scheduled on the last materialised day (fresh at AS_OF)."""
    day = ONLINE_END - pd.Timedelta(days=1)
    requests = flight_requests(day.strftime("%Y-%m-%d"))
    if len(requests) < n:
        raise ValueError(f"only {len(requests)} flights on the day, asked for {n}")
    step = len(requests) / n
    return [requests[int(i * step)] for i in range(n)]
