"""Gated promotion in a real MLflow registry (sqlite store under a temporary home)."""

from __future__ import annotations

import json
import socket
import sqlite3
from types import SimpleNamespace

import pytest
from training_fixtures import build_training_set

from mlops_pipeline.paths import Paths
from mlops_pipeline.training.gates import GateConfig, operational_gate
from mlops_pipeline.training.models import ModelSpec
from mlops_pipeline.training.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    RegistryUnavailable,
    promote,
)
from mlops_pipeline.training.report import write_report
from mlops_pipeline.training.splits import TimeSplit, split_by_time
from mlops_pipeline.training.tracking import store_uri
from mlops_pipeline.training.train import best_candidate, train_candidates

pytestmark = pytest.mark.slow

SPLIT = TimeSplit("2013-04-01", "2013-04-11", gap="1D")
# Latency is checked loosely here (a shared CI machine); test_operational_* checks the budget.
CONFIG = GateConfig(n_boot=300, behaviour_rows=100, latency_rows=20, latency_budget_ms=2000)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two promotions in one registry: a good first candidate, then a worse one."""
    import mlflow

    paths = Paths.at(tmp_path_factory.mktemp("home"))
    uri = store_uri(paths.mlruns)
    training_set = build_training_set("2013-03-01", "2013-04-21")
    holdout = split_by_time(training_set, SPLIT).test
    first = best_candidate(train_candidates(training_set, SPLIT, uri))
    first_report = promote(first, holdout, uri, config=CONFIG)
    weak_spec = ModelSpec("logistic", numeric=("distance", "precip"), categorical=("origin",))
    weak = train_candidates(training_set, SPLIT, uri, specs=[weak_spec])[0]
    second_report = promote(weak, holdout, uri, config=CONFIG)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    return SimpleNamespace(
        paths=paths,
        uri=uri,
        holdout=holdout,
        first=first,
        weak=weak,
        reports=(first_report, second_report),
        client=client,
    )


def aliases(client) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(MODEL_NAME).aliases.items()}


def test_first_candidate_becomes_champion(store):
    report = store.reports[0]
    assert report.promoted and report.failed_gates == [] and report.reasons == []
    assert report.champion_before is None and report.champion_after == report.version == "1"
    assert [g.name for g in report.gates] == [
        "improvement", "slices", "invariance", "direction", "operational",
    ]  # fmt: skip
    assert report.gates[0].details["reference"] == "base-rate prior"
    run = store.client.get_run(store.first.run_id)
    assert run.data.tags["gates"] == "passed"
    assert run.data.metrics["gate.improvement.passed"] == 1.0
    recorded = json.loads(
        (store.paths.mlruns / "artifacts").rglob("gates.json").__next__().read_text()
    )
    assert [g["name"] for g in recorded["gates"]][0] == "improvement"


def test_worse_candidate_is_challenger_only_and_the_report_says_why(store):
    first, second = store.reports
    assert not second.promoted
    assert second.version == "2" and second.challenger == "2"
    assert second.champion_before == second.champion_after == first.version
    assert aliases(store.client) == {CHAMPION: "1", CHALLENGER: "2"}
    assert "improvement" in second.failed_gates
    improvement = next(g for g in second.gates if g.name == "improvement")
    assert improvement.measured["ci_high"] < 0 and improvement.details["reference"] == "champion"
    assert any(r.startswith("improvement: roc_auc candidate - champion") for r in second.reasons)
    version = store.client.get_model_version(MODEL_NAME, "2")
    assert version.tags["gates"] == "failed"
    assert store.client.get_run(store.weak.run_id).data.tags["gate.improvement"] == "failed"


def test_report_is_written_as_json_under_runs(store):
    path = write_report(store.reports[1], store.paths.runs)
    assert path.parent == store.paths.runs and path.name.startswith("promotion-v2-")
    data = json.loads(path.read_text())
    assert data["promoted"] is False and data["champion_after"] == "1"
    assert data["gates"][0]["measured"]["ci_low"] < 0


def test_missing_or_corrupt_sqlite_store_is_a_clear_error(store, tmp_path):
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(RegistryUnavailable, match="does not exist"):
        promote(store.weak, store.holdout, f"sqlite:///{missing}", config=CONFIG)
    assert not missing.exists()  # the check must not create a fresh, empty store
    garbage = tmp_path / "mlflow.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegistryUnavailable, match="cannot read sqlite store"):
        promote(store.weak, store.holdout, f"sqlite:///{garbage}", config=CONFIG)


def test_locked_registry_fails_without_touching_aliases(store):
    before = aliases(store.client)
    versions = len(store.client.search_model_versions(f"name='{MODEL_NAME}'"))
    db_path = store.uri.removeprefix("sqlite:///")
    lock = sqlite3.connect(db_path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with pytest.raises(RegistryUnavailable, match="database is locked"):
            promote(store.weak, store.holdout, store.uri, config=CONFIG, registry_timeout_s=0.3)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert aliases(store.client) == before
    assert len(store.client.search_model_versions(f"name='{MODEL_NAME}'")) == versions


def test_tracking_server_down_is_a_clear_error(store):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RegistryUnavailable, match="does not answer"):
        promote(store.weak, store.holdout, f"http://127.0.0.1:{port}", config=CONFIG)
    assert aliases(store.client) == {CHAMPION: "1", CHALLENGER: "2"}


def test_operational_gate_measures_latency_and_fails_a_missing_model(store):
    ok = operational_gate(
        f"models:/{MODEL_NAME}@{CHAMPION}",
        store.holdout,
        expected=store.first.model.predict_proba,
        tracking_uri=store.uri,
        config=GateConfig(latency_rows=20, latency_budget_ms=2000),
    )
    slow = operational_gate(
        f"models:/{MODEL_NAME}/1",
        store.holdout,
        tracking_uri=store.uri,
        config=GateConfig(latency_rows=5, latency_budget_ms=0.001),
    )
    missing = operational_gate(f"models:/{MODEL_NAME}/99", store.holdout, tracking_uri=store.uri)
    assert ok.passed and ok.measured["max_abs_diff_vs_memory"] == 0.0
    assert 0 < ok.measured["p50_ms"] <= ok.measured["p99_ms"]
    assert not slow.passed and "single-row p99" in slow.message
    assert not missing.passed and "models:/flight-delay/99" in missing.message
