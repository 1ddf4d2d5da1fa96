"""Train the candidate models on a time split and log each to MLflow as a pyfunc model.

Each candidate is one MLflow run: its parameters, the split, metrics on the validation and
test months (ROC AUC, log loss, Brier, PR AUC, and the base-rate prior's for comparison), the
fit time, and the model with an explicit signature and pinned requirements. Registration and
promotion are a separate step (`registry.promote`): training never moves an alias.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_pipeline.features.schema import LABEL
from mlops_pipeline.training.metrics import classification_metrics
from mlops_pipeline.training.models import FittedModel, ModelSpec, default_specs, fit_model
from mlops_pipeline.training.splits import Splits, TimeSplit, split_by_time
from mlops_pipeline.training.tracking import (
    EXPERIMENT,
    artifact_location,
    ensure_experiment,
    pip_requirements,
    tracking,
)

try:
    import mlflow.pyfunc

    _PythonModel: Any = mlflow.pyfunc.PythonModel
except ImportError:  # pragma: no cover - mlflow is a dependency
    _PythonModel = object


with warnings.catch_warnings():
    # MLflow nudges towards a type-hinted predict(); our schema comes from the signature.
    warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)

    class DelayModel(_PythonModel):
        """pyfunc wrapper: a frame of feature rows in, a `delay_probability` column out."""

        def __init__(self, model: FittedModel):
            self.model = model

        # No type hints: MLflow 3 cannot validate a DataFrame hint; the signature does that.
        def predict(self, context, model_input, params=None):
            frame = pd.DataFrame(model_input)
            return pd.DataFrame({"delay_probability": self.model.predict_proba(frame)})


@dataclass
class Candidate:
    """A trained, logged model: what the gates and the registry step need."""

    name: str
    run_id: str
    model_uri: str
    model: FittedModel
    metrics: dict[str, float]
    fit_seconds: float
    base_rate: float
    """The training rows' delay rate: the prior the first candidate is compared with."""


def train_candidates(
    training_set: pd.DataFrame,
    split: TimeSplit,
    tracking_uri: str,
    experiment: str = EXPERIMENT,
    specs: list[ModelSpec] | None = None,
    artifacts: Path | None = None,
) -> list[Candidate]:
    """Fit every spec (default: logistic and hist_gb) on the train months and log one run each.

    `artifacts` defaults to `<folder of the sqlite file>/artifacts`.
    """
    splits = split_by_time(training_set, split)
    artifacts = artifacts if artifacts is not None else artifact_location(tracking_uri)
    candidates = []
    with tracking(tracking_uri) as client:
        experiment_id = ensure_experiment(client, experiment, artifacts)
        for spec in specs if specs is not None else default_specs():
            candidates.append(_train_one(spec, splits, split, experiment_id))
    return candidates


def _train_one(spec: ModelSpec, splits: Splits, split: TimeSplit, experiment_id: str) -> Candidate:
    import mlflow
    from mlflow.models import infer_signature

    y_train = splits.train[LABEL].astype("int64").to_numpy()
    base_rate = float(y_train.mean())
    with mlflow.start_run(experiment_id=experiment_id, run_name=spec.name) as run:
        mlflow.log_params({f"model.{k}": v for k, v in spec.params.items()})
        mlflow.log_params(
            {
                "family": spec.family,
                "features": ",".join(spec.features),
                "increasing": ",".join(spec.increasing),
                **{f"split.{k}": str(v) for k, v in _split_params(split).items()},
                **{f"rows.{k}": v for k, v in splits.sizes().items()},
            }
        )
        started = time.perf_counter()
        model = fit_model(spec, splits.train)
        fit_seconds = time.perf_counter() - started
        metrics: dict[str, float] = {"fit_seconds": fit_seconds, "train_base_rate": base_rate}
        for part in ("valid", "test"):
            frame = getattr(splits, part)
            y = frame[LABEL].astype("int64").to_numpy()
            scores = classification_metrics(y, model.predict_proba(frame))
            prior = classification_metrics(y, np.full(len(y), base_rate))
            metrics |= {f"{part}_{k}": v for k, v in scores.items()}
            metrics |= {f"{part}_prior_{k}": prior[k] for k in ("log_loss", "brier")}
        mlflow.log_metrics(metrics)
        example = model.inputs(splits.valid.head(5))
        signature = infer_signature(example, DelayModel(model).predict(None, example))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=DelayModel(model),
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(),
            )
        mlflow.set_tags({"family": spec.family, "stage": "trained"})
    return Candidate(
        name=spec.name,
        run_id=run.info.run_id,
        model_uri=info.model_uri,
        model=model,
        metrics=metrics,
        fit_seconds=fit_seconds,
        base_rate=base_rate,
    )


def _split_params(split: TimeSplit) -> dict[str, Any]:
    return {
        "start": split.start,
        "train_end": split.train_end,
        "valid_end": split.valid_end,
        "end": split.end,
        "gap": split.gap,
    }


def best_candidate(candidates: list[Candidate], metric: str = "valid_roc_auc") -> Candidate:
    """The candidate to gate: the best on the VALIDATION months (the test months stay for the
    gates, so choosing between candidates does not spend the holdout)."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    lower_is_better = "log_loss" in metric or "brier" in metric
    return (min if lower_is_better else max)(candidates, key=lambda c: c.metrics[metric])
