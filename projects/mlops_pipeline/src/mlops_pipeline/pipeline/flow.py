"""The pipeline as a Prefect 3 flow: ingest, validate, materialise features, build a training set,
train, evaluate, register.

Local by default: with no `PREFECT_API_URL` a flow run starts a temporary API in-process (about
10 s), so nothing has to be installed or started by hand; `prefect server start` adds the UI.
Each task is idempotent for its data interval (it overwrites whole day partitions), so Prefect
may retry the ones that touch the outside world (the source database, the registry). Contract
checks are cached by their input: a day whose landing files did not change is not validated
again. A failure stops the run with a `PipelineError` naming the task and the interval.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from mlops_pipeline import offline
from mlops_pipeline.paths import Paths
from mlops_pipeline.pipeline import steps
from mlops_pipeline.pipeline.errors import PipelineError
from mlops_pipeline.pipeline.intervals import Interval

offline.apply()

from prefect import flow, get_run_logger, task  # noqa: E402  (after the offline switches)
from prefect.cache_policies import NO_CACHE  # noqa: E402

T = TypeVar("T")


def _guard(name: str, interval: Interval | str, call: Callable[[], T]) -> T:
    """Run a step; re-raise any failure as a PipelineError naming the task and the interval."""
    try:
        return call()
    except PipelineError:
        raise
    except Exception as error:  # noqa: BLE001  (every cause is reported, then re-raised)
        raise PipelineError(name, str(interval), error) from error


def _landing_fingerprint(context: Any, parameters: dict[str, Any]) -> str:
    """Cache key for a day's contract check: the table, the day and its landing files' identity."""
    paths, table, day = parameters["home"], parameters["table"], parameters["day"]
    folder = Paths.at(paths).landing / table / f"date={pd.Timestamp(day).date()}"
    digest = hashlib.sha256(f"{paths}|{table}|{day}".encode())
    for part in sorted(folder.glob("part-*.parquet")):
        stat = part.stat()
        digest.update(f"{part.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _outputs_exist(home: str, table: str, day: pd.Timestamp) -> bool:
    """Both outputs of a day's contract check are still there (else the cache must not hit)."""
    folder = f"date={day.date()}"
    paths = Paths.at(home)
    zones = (paths.validated, paths.quarantine)
    return all((zone / table / folder / "part.parquet").exists() for zone in zones)


# Tasks take the home as a string: small, serialisable inputs (Prefect hashes them for caching).


@task(name="replay", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def replay_task(dsn: str, interval: Interval, seed: int) -> dict[str, Any]:
    return _guard("replay", interval, lambda: steps.replay(dsn, interval, seed))


@task(name="ingest", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest_task(dsn: str, home: str, interval: Interval) -> dict[str, Any]:
    return _guard("ingest", interval, lambda: steps.ingest(dsn, Paths.at(home)))


@task(name="validate", cache_key_fn=_landing_fingerprint, persist_result=True)
def validate_task(home: str, table: str, day: pd.Timestamp) -> dict[str, Any]:
    return _guard(
        f"validate {table}", day.date(), lambda: steps.validate_day(Paths.at(home), table, day)
    )


@task(name="materialise-features", cache_policy=NO_CACHE)
def features_task(home: str, interval: Interval) -> dict[str, Any]:
    return _guard(
        "materialise-features",
        interval,
        lambda: steps.materialise_features(Paths.at(home), interval),
    )


@task(name="materialise-online", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def online_task(home: str, interval: Interval) -> dict[str, Any]:
    return _guard(
        "materialise-online", interval, lambda: steps.materialise_online(Paths.at(home), interval)
    )


@task(name="build-training-set", cache_policy=NO_CACHE)
def training_set_task(home: str, window: Interval) -> dict[str, Any]:
    return _guard(
        "build-training-set", window, lambda: steps.build_training_set(Paths.at(home), window)
    )


@task(name="train", cache_policy=NO_CACHE)
def train_task(home: str, training_set: str, window: Interval) -> dict[str, Any]:
    return _guard("train", window, lambda: steps.train(Paths.at(home), training_set, window))


@task(name="evaluate-and-register", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def register_task(home: str, trained: dict, training_set: str, window: Interval) -> dict:
    return _guard(
        "evaluate-and-register",
        window,
        lambda: steps.register(Paths.at(home), trained, training_set, window),
    )


def _data_steps(home: str, interval: Interval, seed: int, replay: bool) -> dict[str, Any]:
    """Source -> landing -> validated -> features for one interval (the source runs meanwhile)."""
    from mlops_pipeline.source.database import SourceDatabase

    paths = Paths.at(home).ensure()
    report: dict[str, Any] = {}
    with SourceDatabase(paths.pgdata) as db:
        report["prepare"] = _guard(
            "prepare-source", interval, lambda: steps.prepare_source(db.dsn, paths)
        )
        if replay:
            report["replay"] = replay_task(db.dsn, interval, seed)
        report["ingest"] = ingest_task(db.dsn, home, interval)
    futures = [
        validate_task.with_options(refresh_cache=not _outputs_exist(home, table, day)).submit(
            home, table, day
        )
        for table in steps.TABLES
        for day in steps.days_to_validate(paths, table, interval)
    ]
    report["validate"] = [future.result() for future in futures]
    report["features"] = features_task(home, interval)
    return report


def _train_and_register(home: str, window: Interval) -> dict[str, Any]:
    """Training set, candidates and the gated promotion for one window; their report entries."""
    built = training_set_task(home, window)
    trained = train_task(home, built["path"], window)
    return {
        "training_set": built,
        "train": {k: v for k, v in trained.items() if not k.startswith("_")},
        "promotion": register_task(home, trained, built["path"], window),
    }


@flow(name="flight-delay-pipeline", validate_parameters=False)
def pipeline(
    home: str,
    start: str,
    end: str,
    train_start: str | None = None,
    seed: int = 0,
    replay: bool = True,
    train: bool = True,
    online: bool = True,
) -> dict[str, Any]:
    """One run for [start, end): the data steps, then (with `train`) a model on
    [train_start or start, end), gated into the registry."""
    logger = get_run_logger()
    interval = Interval.parse(start, end)
    started = time.perf_counter()
    report: dict[str, Any] = {"start": str(interval.start.date()), "end": str(interval.end.date())}
    report["interval"] = str(interval)
    report |= _data_steps(home, interval, seed, replay)
    quarantined = sum(day["quarantined"] for day in report["validate"])
    logger.info("%s: %d rows quarantined", interval, quarantined)
    if online:
        report["online"] = online_task(home, interval)
    if train:
        report |= _train_and_register(home, Interval.parse(train_start or start, end))
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["report"] = str(steps.write_run_report(Paths.at(home), report))
    return report


@flow(name="flight-delay-backfill", validate_parameters=False)
def backfill(
    home: str, start: str, end: str, seed: int = 0, train: bool = True, online: bool = True
) -> dict[str, Any]:
    """The data steps day by day over [start, end) (each day its own idempotent interval), then
    one model on the whole range."""
    interval = Interval.parse(start, end)
    days = []
    for day in interval.days():
        one = Interval(day, day + pd.Timedelta(days=1))
        days.append(_data_steps(home, one, seed, replay=True))
    report: dict[str, Any] = {"start": str(interval.start.date()), "end": str(interval.end.date())}
    report["days"] = len(days)
    if online:
        report["online"] = online_task(home, interval)
    if train:
        report |= _train_and_register(home, interval)
    report["report"] = str(steps.write_run_report(Paths.at(home), report))
    return report
