"""The pipeline's steps as plain functions, so they run (and are tested) without an orchestrator.

Each step reads what earlier steps wrote under the home, writes its own output for one data
interval by overwriting whole partitions, and returns a small JSON-able summary for the run
report. `flow.py` wraps them in Prefect tasks with retries and caching; nothing here knows
about Prefect.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_pipeline.paths import Paths
from mlops_pipeline.pipeline.history import validated_history
from mlops_pipeline.pipeline.intervals import Interval

TABLES = ("planes", "weather", "flights")
RATE_LOOKBACK = pd.Timedelta(days=7)
"""The longest rate window: features for a day need a week of departures before it."""
TRAINING_SET = "training_set.parquet"
LABEL_MATURITY = pd.Timedelta(days=1)
"""A flight's label is known when it departs, up to 22 hours late in 2013: only flights scheduled
this long before the end of a window have labels for certain. Later ones would be kept only if
they left on time, biasing the newest days (the gates' holdout) towards on-time flights."""


def prepare_source(dsn: str, paths: Paths) -> dict[str, Any]:
    """Create the source tables and publication, load the planes, and start CDC (snapshot).

    The CDC slot must exist before the first replayed write, or the snapshot would fold a
    flight's insert and update into one final row and the history features would lose it.
    """
    from mlops_pipeline.cdc.consumer import Consumer
    from mlops_pipeline.source import replayer, schema

    schema.create_schema(dsn)
    planes = replayer.seed_planes(dsn)
    with Consumer(dsn, paths.landing) as consumer:
        consumer.start()
        snapshot = consumer.summary.as_dict()
    return {"planes_loaded": planes, "cdc": snapshot}


def replay(dsn: str, interval: Interval, seed: int = 0) -> dict[str, Any]:
    """Write the source's events recorded before the interval's end that are not written yet.

    Not only those recorded inside it: a flight departing on the first day was scheduled (and
    inserted) the day before. Planes are loaded by `prepare_source`, before CDC starts.
    """
    from mlops_pipeline.source import replayer, timeline

    events = timeline.build_timeline(None, interval.end, seed)
    events = events.loc[events["table"] != "planes"]
    progress = replayer.replay_new(dsn, events)
    return {
        "events": progress.events_written,
        "skipped_already_written": len(events) - progress.events_written,
        "transactions": progress.transactions,
        "seconds": round(progress.elapsed_s, 3),
    }


def ingest(dsn: str, paths: Paths) -> dict[str, Any]:
    """Drain the replication slot into the landing zone (safe to retry: writes are keyed by LSN)."""
    from mlops_pipeline.cdc.consumer import consume
    from mlops_pipeline.cdc.metrics import LagRecorder

    lag = LagRecorder()
    summary = consume(dsn, paths.landing, until_idle=True, lag=lag).as_dict()
    # A catch-up run drains a backlog, so this lag is mostly how long the changes waited for it;
    # the lag of a following consumer is `cdc.bench.measure_lag`'s number.
    if summary["changes"]:
        summary["lag_seconds"] = {k: round(v, 3) for k, v in lag.percentiles((50, 99)).items()}
    return summary


def days_to_validate(paths: Paths, table: str, interval: Interval) -> list[pd.Timestamp]:
    """The interval's days, plus earlier landing days whose landing files changed since they
    were validated, or were never validated.

    Changes land in the partition of the row's `recorded_at`, so a delete (which carries the old
    row) can land in a day validated by an earlier run, and the day before the first interval
    holds its first flights' schedules and the planes.
    """
    from mlops_pipeline.contracts.partitions import PART_NAME, landing_dates, partition_dir

    days = set(interval.days())
    for iso in landing_dates(paths, table):
        day = pd.Timestamp(iso, tz="UTC")
        if day >= interval.end:
            continue
        validated = partition_dir(paths.validated, table, iso) / PART_NAME
        landed = partition_dir(paths.landing, table, iso).glob("part-*.parquet")
        newest = max(part.stat().st_mtime_ns for part in landed)
        if not validated.exists() or validated.stat().st_mtime_ns < newest:
            days.add(day)
    return sorted(days)


def validate_day(paths: Paths, table: str, day: pd.Timestamp) -> dict[str, Any]:
    """Check one table's landing partition for one day against its contract."""
    from mlops_pipeline.contracts.partitions import landing_dates, validate_partition

    iso = day.date().isoformat()
    if iso not in landing_dates(paths, table):
        return {"table": table, "date": iso, "rows_in": 0, "valid": 0, "quarantined": 0}
    report = validate_partition(paths, table, iso)
    counts = report.counts
    return {
        "table": table,
        "date": iso,
        "rows_in": counts.rows_in,
        "valid": counts.valid,
        "quarantined": counts.quarantined,
        "by_check": dict(counts.by_check),
    }


def materialise_features(paths: Paths, interval: Interval) -> dict[str, Any]:
    """Rebuild the feature tables' rows available in the interval from the validated history."""
    from mlops_pipeline.features import tables

    flights = validated_history(paths, "flights", interval.start - RATE_LOOKBACK, interval.end)
    weather = validated_history(paths, "weather", interval.start, interval.end)
    planes = validated_history(paths, "planes", None, interval.end)
    built = tables.build_feature_tables(flights, weather, planes, interval.start, interval.end)
    written = tables.write_feature_tables(paths, built, interval.start, interval.end)
    return {view: {"rows": len(built[view]), "partitions": len(written[view])} for view in built}


def materialise_online(paths: Paths, interval: Interval) -> dict[str, Any]:
    """Register the feature views with Feast and copy the interval's latest values online."""
    from mlops_pipeline.features import feast_repo

    started = time.perf_counter()
    repo = paths.feature_repo
    if not (repo / "feature_store.yaml").exists():
        feast_repo.write_repo(paths)
    feast_repo.apply(repo, paths.features)
    feast_repo.materialize(repo, interval.start, interval.end)
    return {"repo": str(repo), "seconds": round(time.perf_counter() - started, 3)}


def labelled(window: Interval) -> Interval:
    """The part of a window whose flights all have their labels by the window's end."""
    end = window.end - LABEL_MATURITY
    if end <= window.start:
        raise ValueError(f"window {window} is shorter than the label maturity ({LABEL_MATURITY})")
    return Interval(window.start, end)


def build_training_set(paths: Paths, window: Interval) -> dict[str, Any]:
    """The point-in-time training set of the flights scheduled in the window's labelled part."""
    from mlops_pipeline.features import tables, training_set

    flights = validated_history(paths, "flights", None, window.end)
    scheduled = labelled(window)
    entities = training_set.entity_frame(flights, scheduled.start, scheduled.end)
    views = {
        name: tables.read_feature_table(paths, name, None, window.end) for name in tables.VIEWS
    }
    frame = training_set.build_training_set(entities, views, method="asof")
    target = paths.training_sets / f"{window.start.date()}_{window.end.date()}" / TRAINING_SET
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(target)
    return {"path": str(target), "rows": len(frame), "delay_rate": float(frame["delayed"].mean())}


def time_split(window: Interval, valid_share: float = 0.2, test_share: float = 0.2):
    """Train on the earlier days of the window, validate and test on later ones (whole days)."""
    from mlops_pipeline.training.splits import TimeSplit

    days = window.days()
    if len(days) < 5:
        raise ValueError(f"a training window needs at least 5 days, {window} has {len(days)}")
    n_test = max(1, round(len(days) * test_share))
    n_valid = max(1, round(len(days) * valid_share))
    train_end = days[len(days) - n_test - n_valid]
    valid_end = days[len(days) - n_test]
    return TimeSplit(train_end=train_end, valid_end=valid_end, start=window.start, end=window.end)


def train(paths: Paths, training_set_path: str, window: Interval) -> dict[str, Any]:
    """Fit the candidate models on the window's earlier days and log them to MLflow."""
    from mlops_pipeline.training.tracking import store_uri
    from mlops_pipeline.training.train import train_candidates

    frame = pd.read_parquet(training_set_path)
    split = time_split(labelled(window))
    candidates = train_candidates(frame, split, store_uri(paths.mlruns))
    return {
        "split": {k: [str(a), str(b)] for k, (a, b) in split.windows().items()},
        "candidates": [
            {
                "name": c.name,
                "run_id": c.run_id,
                "model_uri": c.model_uri,
                "metrics": c.metrics,
                "fit_seconds": round(c.fit_seconds, 3),
            }
            for c in candidates
        ],
        "_candidates": candidates,
    }


def register(paths: Paths, trained: dict[str, Any], training_set_path: str, window: Interval):
    """Best candidate on validation -> challenger; champion only if every gate passes."""
    from mlops_pipeline.training.registry import promote
    from mlops_pipeline.training.splits import split_by_time
    from mlops_pipeline.training.tracking import store_uri
    from mlops_pipeline.training.train import best_candidate

    candidate = best_candidate(trained["_candidates"])
    holdout = split_by_time(pd.read_parquet(training_set_path), time_split(labelled(window))).test
    report = promote(candidate, holdout, store_uri(paths.mlruns))
    return report.to_dict()


def write_run_report(paths: Paths, report: dict[str, Any]) -> Path:
    """The run's summary as JSON under <home>/runs/ (one file per run)."""
    paths.runs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = paths.runs / f"{stamp}_{report['start']}_{report['end']}.json"
    clean = {k: v for k, v in report.items() if not k.startswith("_")}
    target.write_text(json.dumps(clean, indent=2, default=str) + "\n")
    return target
