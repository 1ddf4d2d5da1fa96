"""`python -m tabular_service.train` (`tabular-train`): the training pipeline's command line.

Parses the options into a `training.TrainingConfig`, runs `training.run_training`, prints its
progress, the comparison table and the outcome. Exit codes: 0 a champion was chosen (and
registered unless --no-register), 2 the data or the options stop training before anything is
tracked, 3 every model was trained and tracked but none passed the release gate, so nothing was
registered and the `champion` alias did not move.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabular_service.candidates import MODEL_KINDS
from tabular_service.data import SEED, DataError

#: Exit code when the leakage check, the data or the options say training must not go ahead.
EXIT_DATA = 2
#: Exit code when no candidate beat approving everyone: nothing was registered or promoted.
EXIT_GATE = 3


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
        "--home",
        type=Path,
        default=None,
        help="project home (default: TABULAR_HOME, else this project's folder)",
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


def quiet_libraries() -> None:
    """Keep stdout for our progress lines: MLflow and Lightning log a lot at INFO."""
    import mlflow  # noqa: F401  (configures its loggers on import; override afterwards)

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("alembic", "mlflow", "lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tabular_service.training import (
        TrainingConfig,
        TrainingError,
        resolve_models,
        run_training,
    )

    config = TrainingConfig(
        models=tuple(args.models.split(",")) if args.models else None,
        quick=args.quick,
        register=not args.no_register,
        seed=args.seed,
        home=args.home,
        data_path=args.data,
        model_card=args.model_card,
    )
    try:
        resolve_models(config.models)  # fail fast, before the slow imports
        quiet_libraries()
        result = run_training(config, progress=lambda line: print(line, flush=True))
    except TrainingError as exc:
        print(exc, file=sys.stderr)
        return EXIT_DATA
    except (DataError, FileNotFoundError) as exc:
        print(f"data error: {exc}", file=sys.stderr)
        return EXIT_DATA

    from tabular_service import tracking

    print()
    print(results_table(result.summary))
    print()
    print(f"selection: {result.selection.explain()}")
    if result.champion is None:
        print(
            "release gate: no model beat approving everyone on validation; nothing was "
            f"registered, the {tracking.CHAMPION_ALIAS} alias and the model card are unchanged",
            file=sys.stderr,
        )
        print(f"summary: {result.summary_path}\ntracking: {result.tracking_uri}")
        return EXIT_GATE
    registered = (
        f"registered {tracking.MODEL_NAME} v{result.version} @{tracking.CHAMPION_ALIAS}"
        if result.version
        else "not registered (--no-register)"
    )
    print(f"champion: {result.champion}; {registered}")
    print(f"summary: {result.summary_path}\nmodel card: {result.model_card_path}")
    print(f"tracking: {result.tracking_uri}")
    return 0


def results_table(summary: dict[str, Any]) -> str:
    """The comparison as a markdown table, approving everyone as the last row."""
    champion = (summary.get("champion") or {}).get("name")
    header = (
        "| model | valid cost, cross-fitted | valid ROC AUC | valid PR AUC | valid log-loss "
        "| threshold | test cost | test approve | test ROC AUC | test PR AUC | test log-loss "
        "| test Brier | fit s | 1-row µs | champion |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in summary["models"]:
        v, t = r["valid"], r["test"]
        lines.append(
            f"| {r['name']} | {r['selection_cost']:.4f} | {v['roc_auc']:.4f} | {v['pr_auc']:.4f} "
            f"| {v['log_loss']:.4f} | {v['threshold']:.4f} | {t['expected_cost']:.4f} "
            f"| {t['approve_rate']:.1%} | {t['roc_auc']:.4f} | {t['pr_auc']:.4f} "
            f"| {t['log_loss']:.4f} | {t['brier']:.4f} | {r['fit_seconds']:.1f} "
            f"| {r['single_row_us']:.0f} | {'**yes**' if r['name'] == champion else ''} |"
        )
    approve_all = summary["selection"]["approve_all_cost"]
    lines.append(
        f"| approve everyone (no model) | {approve_all['valid']:.4f} | | | | | "
        f"{approve_all['test']:.4f} | 100.0% | | | | | | | |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
