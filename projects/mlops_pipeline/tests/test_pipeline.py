"""The Prefect flow end to end on a few days of 2013: every stage real, runs repeatable.

One pipeline home for the module: a first run replays five days into PostgreSQL, captures them,
validates, builds features and a training set, trains, gates and registers; a second run of the
same interval must change nothing, and a failure must name the task and the interval.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlops_pipeline.paths import Paths
from mlops_pipeline.pipeline import steps
from mlops_pipeline.pipeline.errors import PipelineError
from mlops_pipeline.pipeline.intervals import Interval
from mlops_pipeline.training.registry import alias_version
from mlops_pipeline.training.tracking import store_uri, tracking

pytestmark = pytest.mark.slow
START, END = "2013-01-01", "2013-01-07"


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    """Prefect's temporary API keeps its database under a test folder, not ~/.prefect."""
    home = tmp_path_factory.mktemp("prefect")
    patch = pytest.MonkeyPatch()
    patch.setenv("PREFECT_HOME", str(home))
    patch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(home / "results"))
    yield home
    patch.undo()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, prefect_home):
    from mlops_pipeline.pipeline.flow import pipeline

    home = tmp_path_factory.mktemp("mlops")
    report = pipeline(str(home), START, END, online=False)
    return home, report


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_a_run_lands_validates_trains_and_registers(first_run):
    """The first run captures every replayed change and promotes its model as the champion."""
    home, report = first_run
    assert report["replay"]["events"] > 5_000
    assert report["ingest"]["changes"] == report["replay"]["events"]
    assert report["prepare"]["planes_loaded"] == 3322
    rows_in = sum(day["rows_in"] for day in report["validate"])
    valid = sum(day["valid"] for day in report["validate"])
    assert rows_in == valid + sum(day["quarantined"] for day in report["validate"]) > 0
    assert report["training_set"]["rows"] > 3_000
    assert report["promotion"]["promoted"] is True
    assert report["promotion"]["champion_after"] == report["promotion"]["version"]
    saved = json.loads(Path(report["report"]).read_text())
    assert saved["promotion"]["version"] == report["promotion"]["version"]


def test_rerunning_an_interval_changes_nothing(first_run):
    """A second run of the same interval writes no source event and the same partitions."""
    from mlops_pipeline.pipeline.flow import pipeline

    home, _ = first_run
    paths = Paths.at(home)
    before = {zone: _files(zone) for zone in (paths.landing, paths.validated, paths.features)}
    stamps = {p: p.stat().st_mtime_ns for p in paths.validated.rglob("*.parquet")}
    again = pipeline(str(home), START, END, train=False, online=False)
    assert again["replay"]["events"] == 0
    assert again["ingest"]["changes"] == 0
    for zone, files in before.items():
        assert _files(zone) == files, f"{zone} changed on a rerun"
    # Contract checks are cached by their landing files: unchanged days are not rewritten.
    assert {p: p.stat().st_mtime_ns for p in paths.validated.rglob("*.parquet")} == stamps


def test_a_registry_failure_fails_register_and_leaves_the_champion(first_run, monkeypatch):
    """The registry unreadable after training: 'evaluate-and-register' fails for the window,
    naming itself and the interval, and the champion alias stays where it was."""
    from mlops_pipeline.pipeline import flow

    home, report = first_run
    monkeypatch.setattr(flow.register_task, "retries", 0)
    store = Paths.at(home).mlruns / "mlflow.db"
    saved = store.read_bytes()
    train = steps.train

    def train_then_break_the_registry(*args, **kwargs):
        trained = train(*args, **kwargs)
        store.write_bytes(b"not a database")
        return trained

    monkeypatch.setattr(steps, "train", train_then_break_the_registry)
    try:
        with pytest.raises(PipelineError) as failure:
            flow.pipeline(str(home), START, END, replay=False, online=False)
    finally:
        store.write_bytes(saved)
    assert failure.value.task == "evaluate-and-register"
    assert "failed for interval [2013-01-01, 2013-01-07)" in str(failure.value)
    assert "no alias was changed" in str(failure.value)
    with tracking(store_uri(Paths.at(home).mlruns)) as client:
        assert alias_version(client, "flight-delay", "champion") == report["promotion"]["version"]


def test_a_breaking_source_change_stops_the_run_before_training(first_run):
    """Delays landing in hours instead of minutes break the flights contract: the run stops in
    'validate flights' for that day and no model is trained or registered."""
    from mlops_pipeline.pipeline.flow import pipeline

    home, report = first_run
    paths = Paths.at(home)
    part = sorted((paths.landing / "flights" / "date=2013-01-03").glob("part-*.parquet"))[0]
    saved = part.read_bytes()
    frame = pd.read_parquet(part)
    frame["dep_delay"] = frame["dep_delay"] / 60
    frame.to_parquet(part, index=False)
    try:
        with pytest.raises(PipelineError) as failure:
            pipeline(str(home), START, END, replay=False, online=False)
    finally:
        part.write_bytes(saved)
    assert failure.value.task == "validate flights"
    assert failure.value.interval == "2013-01-03"
    assert "ContractBreach" in str(failure.value)
    with tracking(store_uri(paths.mlruns)) as client:
        versions = client.search_model_versions("name = 'flight-delay'")
    assert max(int(v.version) for v in versions) == int(report["promotion"]["version"])


def test_interval_rules():
    """Intervals are whole UTC days, non-empty; the training split leaves later days to test."""
    with pytest.raises(ValueError, match="not midnight"):
        Interval.parse("2013-01-01T05:00", "2013-01-02")
    with pytest.raises(ValueError, match="empty interval"):
        Interval.parse("2013-01-02", "2013-01-02")
    window = Interval.parse("2013-01-01", "2013-01-11")
    split = steps.time_split(window)
    assert split.train_end == pd.Timestamp("2013-01-07", tz="UTC")
    assert split.valid_end == pd.Timestamp("2013-01-09", tz="UTC")
    with pytest.raises(ValueError, match="at least 5 days"):
        steps.time_split(Interval.parse("2013-01-01", "2013-01-03"))


def test_backfill_runs_the_data_steps_day_by_day(first_run):
    """`backfill` continues the home day by day: each day replayed, landed, validated and
    turned into features, in its own idempotent interval."""
    from mlops_pipeline.pipeline.flow import backfill

    home, _ = first_run
    report = backfill(str(home), END, "2013-01-09", train=False, online=False)
    assert report["days"] == 2
    paths = Paths.at(home)
    for day in ("2013-01-07", "2013-01-08"):
        assert (paths.validated / "flights" / f"date={day}" / "part.parquet").exists()
        assert (paths.features / "weather" / f"date={day}" / "part.parquet").exists()
