"""Three point-in-time joins of the same training set, timed and compared row for row.

`asof_join` (ours), pandas `merge_asof` (the library baseline) and Feast's
`get_historical_features` must produce identical training sets; how long each takes is the
cost of the choice. Feast's file offline store cross-joins entities with feature rows per key,
so it runs on a slice whose feature tables cover only that slice (a month, not a year).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_pipeline.data import utc
from mlops_pipeline.features import tables as feature_tables
from mlops_pipeline.features.tables import VIEWS
from mlops_pipeline.features.training_set import (
    build_training_set,
    entity_frame,
    select_training_columns,
)

__all__ = ["compare_point_in_time", "merge_asof_training_set", "online_latency"]

LOOKBACK = pd.Timedelta(days=8)
"""History needed before a slice: the longest rate window (7 days) plus a margin."""


def merge_asof_training_set(
    entities: pd.DataFrame, tables: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """The same training set with `pandas.merge_asof` (backward, by key, tolerance = TTL).

    merge_asof keeps the last right row among equal timestamps, so each table is sorted by
    event_timestamp (stable) first, which is also the order our tables are written in.
    """
    out = entities.assign(_row=np.arange(len(entities))).sort_values(
        "event_timestamp", kind="stable"
    )
    for view in VIEWS.values():
        table = tables[view.name][[view.key, "event_timestamp", *view.features]]
        table = table.sort_values("event_timestamp", kind="stable")
        out = pd.merge_asof(
            out,
            table,
            on="event_timestamp",
            by=view.key,
            direction="backward",
            allow_exact_matches=True,
            tolerance=view.ttl,
        )
    return select_training_columns(out.sort_values("_row").drop(columns="_row"))


def compare_point_in_time(
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    feast: bool = True,
    online: bool = True,
    postgres: bool = True,
    feast_chunk: pd.Timedelta | None = None,
    home: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Build the [start, end) training set three ways; wall times (s) and identical-rows checks.

    Feature tables are built for [start - LOOKBACK, end) and, for Feast, written under `home`
    (a temporary folder by default). Returns "rows", "asof_s", "merge_asof_s",
    "merge_asof_identical"; with `feast` also "feast_apply_s", "feast_s", "feast_identical";
    with `online` the SQLite online store's "materialize_s" and "online_sqlite_p50_ms"/"_p99_ms",
    and with `postgres` the same lookups against a pgserver PostgreSQL started (and stopped) here.
    """
    from mlops_pipeline.source import timeline

    lo, hi = utc(start), utc(end)
    events = timeline.build_timeline(None, hi)
    flights, weather, planes = (timeline.rows(events, t) for t in ("flights", "weather", "planes"))
    tables = feature_tables.build_feature_tables(flights, weather, planes, lo - LOOKBACK, hi)
    entities = entity_frame(flights, lo, hi)
    result: dict[str, Any] = {"start": str(lo), "end": str(hi), "rows": len(entities)}

    t0 = time.perf_counter()
    ours = build_training_set(entities, tables)
    result["asof_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    baseline = merge_asof_training_set(entities, tables)
    result["merge_asof_s"] = time.perf_counter() - t0
    result["merge_asof_identical"] = bool(ours.equals(baseline))
    if not feast:
        return result

    from mlops_pipeline.features import feast_repo
    from mlops_pipeline.paths import Paths

    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as scratch:
        paths = Paths.at(home if home is not None else scratch)
        feature_tables.write_feature_tables(paths, tables, lo - LOOKBACK, hi)
        repo = feast_repo.write_repo(paths)
        t0 = time.perf_counter()
        store = feast_repo.apply(repo, paths.features)
        result["feast_apply_s"] = time.perf_counter() - t0
        chunk = feast_chunk if feast_chunk is not None else feast_repo.CHUNK
        t0 = time.perf_counter()
        theirs = select_training_columns(feast_repo.historical_features(store, entities, chunk))
        result["feast_s"] = time.perf_counter() - t0
        result["feast_chunk"] = str(chunk)
        result["feast_identical"] = bool(ours.equals(theirs))
        if online:
            t0 = time.perf_counter()
            feast_repo.materialize(store, lo - LOOKBACK, hi)
            result["materialize_s"] = time.perf_counter() - t0
            latency = online_latency(store, entities)
            result |= {f"online_sqlite_{k}": v for k, v in latency.items()}
        if online and postgres:
            result |= _postgres_latency(Path(scratch), paths, lo - LOOKBACK, hi, entities)
    return result


def _postgres_latency(
    scratch: Path, paths: Any, start: pd.Timestamp, end: pd.Timestamp, entities: pd.DataFrame
) -> dict[str, float]:
    """Online lookups against Feast's PostgreSQL store on a pgserver started and stopped here."""
    from urllib.parse import parse_qs, urlparse

    import pgserver

    from mlops_pipeline.features import feast_repo
    from mlops_pipeline.paths import Paths

    server = pgserver.get_server(scratch / "pg", cleanup_mode="stop")
    try:
        socket_dir = parse_qs(urlparse(server.get_uri()).query)["host"][0]
        pg_paths = Paths.at(scratch / "pg_home")
        pg_paths.home.mkdir(parents=True, exist_ok=True)
        repo = feast_repo.write_repo(pg_paths, online="postgres", pg_host=socket_dir)
        store = feast_repo.apply(repo, paths.features)
        feast_repo.materialize(store, start, end)
        latency = online_latency(store, entities)
        return {f"online_postgres_{k}": v for k, v in latency.items()}
    finally:
        server.cleanup()


def online_latency(
    repo: Path | str | Any, flights: pd.DataFrame, n: int = 200, seed: int = 0
) -> dict[str, float]:
    """p50/p99 (milliseconds) of `online_features` for `n` flights drawn from `flights`."""
    from mlops_pipeline.features import feast_repo

    fs = repo if hasattr(repo, "get_online_features") else feast_repo.store(repo)
    sample = flights.sample(n=min(n, len(flights)), random_state=seed, replace=len(flights) < n)
    rows = sample.to_dict("records")
    feast_repo.online_features(fs, rows[0])  # warm up connections and the registry cache
    times = []
    for row in rows:
        t0 = time.perf_counter()
        feast_repo.online_features(fs, row)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}
