"""The model behind an MLflow alias, loaded once and called without pyfunc's per-call overhead.

The alias is resolved to a version at load time and the version is what the service reports
and serves until it restarts (an alias moving during a rollout must not change a running
process under its feet; the rollout starts a new process instead). For models this package
trained, scoring calls the fitted pipeline directly: pyfunc's per-call schema enforcement costs
more than the model on single rows. Any other pyfunc model is called through `predict`.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_pipeline.paths import Paths
from mlops_pipeline.training.tracking import store_uri, tracking

OUTPUT_COLUMN = "delay_probability"


class ModelUnavailable(RuntimeError):
    """The registry, the alias or the model's files cannot be read: the service is not ready."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score frames of feature rows."""

    name: str
    version: str
    alias: str
    inputs: list[str]
    predict: Callable[[pd.DataFrame], np.ndarray]


def load_model(paths: Paths, name: str, alias: str, tracking_uri: str | None = None) -> LoadedModel:
    """Resolve `name@alias` in the registry (the home's sqlite file unless `tracking_uri` names
    another, such as a tracking server) and load that version."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if tracking_uri is None:
        database = paths.mlruns / "mlflow.db"
        if not database.exists():
            raise ModelUnavailable(
                f"no model registry at {database}: train and register a model first (`mlops run`)"
            )
    uri = tracking_uri or store_uri(paths.mlruns)
    with tracking(uri) as client:
        try:
            version = str(client.get_model_version_by_alias(name, alias).version)
            # A copy in a scratch folder: loading in place writes beside the model, which
            # fails on a read-only home (a container's mounted volume) or another user's files.
            pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}", dst_path=_scratch())
        except MlflowException as error:
            message = f"cannot load models:/{name}@{alias} from {uri}: {error}"
            raise ModelUnavailable(message) from error
    schema = pyfunc.metadata.get_input_schema()
    inputs = list(schema.input_names()) if schema is not None else []
    return LoadedModel(name, version, alias, inputs, _scorer(pyfunc))


def _scratch() -> str:
    """A private folder for the model's files, removed when the process exits."""
    folder = tempfile.mkdtemp(prefix="mlops-model-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _scorer(pyfunc) -> Callable[[pd.DataFrame], np.ndarray]:
    """The fastest faithful way to score: the fitted model if it is ours, else pyfunc."""
    try:
        inner = pyfunc.unwrap_python_model()
    except Exception:  # not a PythonModel flavour (sklearn, etc.)
        inner = None
    from mlops_pipeline.training.train import DelayModel

    # Exactly our wrapper (not a subclass that may change the inputs, like a faulty challenger).
    if type(inner) is DelayModel:
        fitted = inner.model
        return lambda frame: np.asarray(fitted.predict_proba(frame), dtype=float)

    def through_pyfunc(frame: pd.DataFrame) -> np.ndarray:
        out = pyfunc.predict(frame)
        column = out[OUTPUT_COLUMN] if isinstance(out, pd.DataFrame) else out
        return np.asarray(column, dtype=float).reshape(-1)

    return through_pyfunc
