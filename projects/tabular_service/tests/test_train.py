"""The training command end to end (quick), its failure paths, and MLflow's own server."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import scratch_ml_available
from helpers import free_port, wait_for_http

from tabular_service import tracking
from tabular_service.data import Split
from tabular_service.predictor import CreditPredictor, load_predictor
from tabular_service.schema import EXAMPLE_APPLICATION, TARGET

SRC = Path(__file__).resolve().parents[1] / "src"
METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "expected_cost", "threshold", "approve_rate")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict, str]:
    """One quick training run of every available model into a fresh home."""
    from tabular_service.train import available_models, main

    scratch_ml_available()  # puts projects/scratch_ml/src on sys.path when it exists
    home = tmp_path_factory.mktemp("trained")
    models = available_models()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--quick", "--home", str(home), "--models", ",".join(models)])
    assert code == 0, out.getvalue()
    summary = json.loads((home / "mlruns" / "last_training.json").read_text())
    return home, summary, out.getvalue()


@pytest.mark.slow
def test_every_model_is_a_tracked_run(trained) -> None:
    import mlflow

    home, summary, stdout = trained
    tracking.configure(home)
    runs = mlflow.search_runs(experiment_names=[tracking.EXPERIMENT_NAME])
    names = {m["name"] for m in summary["models"]}
    assert {"logistic", "hist_gb"} <= names
    assert set(runs["tags.mlflow.runName"]) == names
    for split in ("valid", "test"):
        for metric in METRICS:
            assert runs[f"metrics.{split}_{metric}"].notna().all(), (split, metric)
    assert (runs["metrics.valid_roc_auc"] > 0.6).all()  # real signal, not chance
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(summary["champion"]["run_id"])}
    assert {"calibration.json", "leakage_report.json", "features.json"} <= artifacts
    for name in names:
        assert f"| {name} |" in stdout  # the results table lists every model


@pytest.mark.slow
def test_champion_is_best_on_validation_and_registered(trained) -> None:
    import mlflow

    from tabular_service.train import COMPARISON_ONLY

    home, summary, _ = trained
    eligible = [m for m in summary["models"] if m["name"] not in COMPARISON_ONLY]
    best = max(eligible, key=lambda m: m["valid"]["roc_auc"])
    assert summary["champion"]["name"] == best["name"]
    tracking.configure(home)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(tracking.MODEL_NAME, tracking.CHAMPION_ALIAS)
    assert int(version.version) == summary["champion"]["version"]
    assert version.run_id == summary["champion"]["run_id"]
    assert version.tags["model_kind"] == best["name"]
    # Thresholds were chosen on validation: the logged one equals the summary's.
    assert best["valid"]["threshold"] == best["test"]["threshold"]


@pytest.mark.slow
def test_champion_loads_as_pyfunc_and_as_predictor(trained) -> None:
    import mlflow

    from tabular_service.mlflow_model import example_frame

    home, _, _ = trained
    tracking.configure(home)
    uri = tracking.champion_uri()
    output = mlflow.pyfunc.load_model(uri).predict(example_frame())
    assert list(output.columns) == ["probability_of_default", "decision"]
    assert 0 < output["probability_of_default"].iloc[0] < 1
    assert output["decision"].iloc[0] in {"approve", "reject"}
    local = Path(mlflow.artifacts.download_artifacts(uri))
    predictor = load_predictor(local)
    assert isinstance(predictor, CreditPredictor)
    p = predictor.predict_proba_records([EXAMPLE_APPLICATION])
    assert p[0] == pytest.approx(output["probability_of_default"].iloc[0], abs=1e-12)


@pytest.mark.slow
def test_model_card_is_written(trained) -> None:
    home, summary, _ = trained
    card = (home / "docs" / "model_card.md").read_text()
    for heading in ("Intended use", "Data", "Metrics by segment", "Calibration", "Limits"):
        assert f"## {heading}" in card
    assert summary["champion"]["name"] in card
    for grade in "ABCDEFG":
        assert f"| {grade} |" in card
    assert "addr_state" in card and "9,857 loans" in card


def _write_table(path: Path, data: Split, duplicate: bool) -> Path:
    X = pd.concat([data.X_train, data.X_valid, data.X_test])
    y = np.concatenate([data.y_train, data.y_valid, data.y_test])
    table = X.assign(**{TARGET: np.where(y == 1, "bad", "good")})
    if duplicate:  # every loan twice: copies land on both sides of the split
        table = pd.concat([table, table])
    table.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_tracking_uri_from_the_environment_names_the_store(tmp_path: Path, monkeypatch) -> None:
    """Without --home, TABULAR_TRACKING_URI is where runs go, as it is where the service looks."""
    from tabular_service.train import main

    store = tmp_path / "elsewhere" / "store.db"
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TABULAR_TRACKING_URI", f"sqlite:///{store}")
    card = tmp_path / "card.md"
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            main(["--quick", "--models", "logistic", "--no-register", "--model-card", str(card)])
            == 0
        )
    assert store.is_file()
    assert not (tmp_path / "home" / "mlruns" / "mlflow.db").exists()
    assert (tmp_path / "home" / "mlruns" / "last_training.json").is_file()


def test_leaky_data_aborts_with_exit_code_2(loans: Split, tmp_path: Path, capsys) -> None:
    from tabular_service.train import EXIT_DATA, main

    csv = _write_table(tmp_path / "leaky.csv", loans, duplicate=True)
    code = main(["--quick", "--home", str(tmp_path), "--data", str(csv), "--models", "logistic"])
    assert code == EXIT_DATA == 2
    err = capsys.readouterr().err
    assert "leakage check FAILED" in err and "duplicate training rows" in err
    assert not (tmp_path / "mlruns").exists()  # nothing was tracked


def test_bad_data_and_bad_options_exit_cleanly(loans: Split, tmp_path: Path, capsys) -> None:
    from tabular_service.train import main

    csv = tmp_path / "bad.csv"
    _write_table(csv, loans, duplicate=False)
    pd.read_csv(csv).drop(columns=["int_rate"]).to_csv(csv, index=False)
    assert main(["--home", str(tmp_path), "--data", str(csv)]) == 2
    assert "data error: missing columns: int_rate" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "--models", "svm"]) == 2
    assert "unknown model(s): svm" in capsys.readouterr().err


def test_module_entry_point_has_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tabular_service.train", "--help"],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for option in ("--models", "--quick", "--home", "--no-register", "--seed", "--model-card"):
        assert option in result.stdout


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(
    registry_home: Path, small_predictor: CreditPredictor, tmp_path: Path
) -> None:
    """`mlflow models serve` on the champion: the peer the load test compares against."""
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking.tracking_uri(registry_home),
        # mlflow.set_registry_uri (called by tracking.configure in earlier tests) exports this.
        "MLFLOW_REGISTRY_URI": tracking.tracking_uri(registry_home),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        # MLflow execs `uvicorn` by name: the venv's bin must be on PATH even when not activated.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", tracking.champion_uri()]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=90, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            log.flush()
            tail = (tmp_path / "serve.log").read_text()[-3000:]
            raise AssertionError(f"{exc}\n--- mlflow models serve output ---\n{tail}") from None
        body = json.dumps({"dataframe_records": [EXAMPLE_APPLICATION]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # our own session: uvicorn and its worker
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    assert len(predictions) == 1
    expected = small_predictor.predict_proba_records([EXAMPLE_APPLICATION])[0]
    assert predictions[0]["probability_of_default"] == pytest.approx(expected, abs=1e-12)
    rejected = expected >= small_predictor.threshold
    assert predictions[0]["decision"] == ("reject" if rejected else "approve")
