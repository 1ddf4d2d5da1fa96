"""Where runs and models live: an MLflow sqlite store under the pipeline home.

One sqlite file (`<home>/mlruns/mlflow.db`) holds runs, metrics and the model registry; the
artifacts (models, `gates.json`) are plain folders beside it. Nothing to start, and the
registry is the real one: `models:/flight-delay@champion` resolves here as it would on a
server. MLflow's tracking URI is process-global state, so `tracking()` sets it for one block
and puts the previous one back (tests and the pipeline may use several homes in one process).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

EXPERIMENT = "flight-delay"
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def store_uri(mlruns: str | os.PathLike[str]) -> str:
    """The sqlite tracking/registry URI for an `mlruns` folder (`Paths.mlruns`)."""
    return f"sqlite:///{Path(mlruns).resolve() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, None for any other store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def artifact_location(uri: str) -> Path:
    """Artifacts sit beside the sqlite file (`<mlruns>/artifacts`); other stores need it given."""
    path = sqlite_path(uri)
    if path is None:
        raise ValueError(f"give an artifact location for the non-sqlite tracking URI {uri!r}")
    return path.parent / "artifacts"


@contextmanager
def tracking(uri: str) -> Iterator[Any]:
    """Point MLflow's fluent API at `uri` for the block; yields a client on the same store."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    # The raw settings, None when unset: restoring the resolved URIs instead would pin the
    # default (./mlflow.db) and hide a later MLFLOW_TRACKING_URI from the rest of the process.
    previous = (tracking_state._tracking_uri, registry_state._registry_uri)
    # MLflow's setters also write these variables, which child processes inherit: put them
    # back exactly (absent stays absent), or every later child would default to ./mlflow.db.
    saved = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        tracking_state._tracking_uri, registry_state._registry_uri = previous
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_experiment(client: Any, name: str, artifacts: Path | None) -> str:
    """The experiment's id, created with an explicit artifact location if it is new.

    MLflow's default artifact location is `./mlartifacts` of whatever the working directory
    happens to be; an explicit one keeps every model under the home.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if artifacts is not None:
        artifacts.mkdir(parents=True, exist_ok=True)
        location = artifacts.resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def pip_requirements() -> list[str]:
    """Pinned to what is installed: MLflow otherwise spends ~12 s inferring them per model.

    The pyfunc unpickles classes of `mlops_pipeline` (the wrapper, the monotone logistic
    regression): a serving environment installs this package beside these pins.
    """
    pins = []
    for name in ("mlflow", "numpy", "pandas", "scikit-learn", "scipy", "cloudpickle"):
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins
