"""The training pipeline end to end (quick): tracked runs, the champion rule, the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tabular_service import tracking
from tabular_service.predictor import CreditPredictor, load_predictor
from tabular_service.schema import EXAMPLE_APPLICATION
from tabular_service.selection import SELECTION_METRIC, CandidateScore, select_champion
from tabular_service.training import TrainingConfig, TrainingResult, run_training

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "expected_cost", "threshold", "approve_rate")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, TrainingResult, list[str]]:
    """One quick training run of every available model into a fresh home, and its progress."""
    from tabular_service.candidates import available_models

    home = tmp_path_factory.mktemp("trained")
    lines: list[str] = []
    config = TrainingConfig(models=tuple(available_models()), quick=True, home=home)
    return home, run_training(config, progress=lines.append), lines


@pytest.mark.slow
def test_every_model_is_a_tracked_run(trained) -> None:
    import mlflow

    home, result, progress = trained
    tracking.configure(home)
    runs = mlflow.search_runs(experiment_names=[tracking.EXPERIMENT_NAME])
    names = {m["name"] for m in result.models}
    assert {"logistic", "hist_gb"} <= names
    assert set(runs["tags.mlflow.runName"]) == names
    for split in ("valid", "test"):
        for metric in METRICS:
            assert runs[f"metrics.{split}_{metric}"].notna().all(), (split, metric)
    assert runs[f"metrics.{SELECTION_METRIC}"].notna().all()
    assert (runs["tags.selection_metric"] == SELECTION_METRIC).all()
    assert (runs["metrics.valid_roc_auc"] > 0.6).all()  # real signal, not chance
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(result.summary["champion"]["run_id"])}
    assert {"calibration.json", "leakage_report.json", "features.json"} <= artifacts
    for name in names:  # progress names every model as it is trained
        assert f"[{name}] training ..." in progress
    written = json.loads(result.summary_path.read_text())  # the same run, as JSON
    assert written["champion"] == result.summary["champion"]
    assert [m["selection_cost"] for m in written["models"]] == [
        m["selection_cost"] for m in result.summary["models"]
    ]


@pytest.mark.slow
def test_champion_follows_the_rule_passes_the_gate_and_is_registered(trained) -> None:
    import mlflow

    from tabular_service.candidates import COMPARISON_ONLY

    home, result, _ = trained
    summary = result.summary
    scores = [
        CandidateScore(m["name"], m["selection_cost"], m["valid"]["log_loss"])
        for m in summary["models"]
        if m["name"] not in COMPARISON_ONLY
    ]
    baseline = summary["selection"]["approve_all_cost"]["valid"]
    expected = select_champion(scores, baseline)
    cheapest = min(scores, key=lambda s: s.cost)
    assert result.champion == expected.champion == cheapest.name == summary["champion"]["name"]
    assert cheapest.cost < baseline and summary["selection"]["gate_passed"]
    tracking.configure(home)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(tracking.MODEL_NAME, tracking.CHAMPION_ALIAS)
    assert int(version.version) == result.version == summary["champion"]["version"]
    assert version.run_id == summary["champion"]["run_id"]
    assert version.tags["model_kind"] == result.champion
    assert float(version.tags[SELECTION_METRIC]) == pytest.approx(cheapest.cost)
    champion = next(m for m in summary["models"] if m["name"] == result.champion)
    # Thresholds were chosen on validation: the logged one equals the summary's.
    assert champion["valid"]["threshold"] == champion["test"]["threshold"]


@pytest.mark.slow
def test_the_results_table_lists_every_model_and_the_baseline(trained) -> None:
    from tabular_service.train import results_table

    _, result, _ = trained
    table = results_table(result.summary)
    for model in result.summary["models"]:
        assert f"| {model['name']} | {model['selection_cost']:.4f} |" in table
    assert "| approve everyone (no model) |" in table
    assert table.count("**yes**") == 1


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
    home, result, _ = trained
    assert result.model_card_path == home / "docs" / "model_card.md"
    card = result.model_card_path.read_text()
    for heading in ("Intended use", "Data", "Metrics by segment", "Calibration", "Limits"):
        assert f"## {heading}" in card
    assert result.champion in card and "cross-fitted" in card
    for grade in "ABCDEFG":
        assert f"| {grade} |" in card
    assert "addr_state" in card and "9,857 loans" in card


@pytest.mark.slow
def test_tracking_uri_from_the_environment_names_the_store(tmp_path: Path, monkeypatch) -> None:
    """Without a home, TABULAR_TRACKING_URI is where runs go, as it is where the service looks."""
    store = tmp_path / "elsewhere" / "store.db"
    monkeypatch.setenv("TABULAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TABULAR_TRACKING_URI", f"sqlite:///{store}")
    card = tmp_path / "card.md"
    config = TrainingConfig(models=("logistic",), quick=True, register=False, model_card=card)
    result = run_training(config)
    assert result.champion == "logistic" and result.version is None  # chosen, not registered
    assert store.is_file() and card.is_file()
    assert not (tmp_path / "home" / "mlruns" / "mlflow.db").exists()
    assert result.summary_path == tmp_path / "home" / "mlruns" / "last_training.json"
    assert result.summary_path.is_file()


def test_unknown_and_unavailable_models_are_refused_before_any_work(monkeypatch) -> None:
    from tabular_service import training

    with pytest.raises(training.TrainingError, match="unknown model\\(s\\): svm"):
        run_training(TrainingConfig(models=("svm",)))
    monkeypatch.setattr(training, "available_models", lambda: ["logistic", "hist_gb"])
    with pytest.raises(training.TrainingError, match="cannot train mlp: package not importable"):
        training.resolve_models(["logistic", "mlp"])
