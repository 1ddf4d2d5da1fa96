"""Where experiments live: an MLflow tracking store and model registry on local disk.

No server: the tracking and registry store is one sqlite file and the artifacts are plain
directories, both under the project's `mlruns/`. That keeps a fresh checkout self-contained
(nothing to start, nothing to reach over the network) while still using the real registry,
so `models:/credit-default@champion` means the same thing here as it would on a shared server.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

MODEL_NAME = "credit-default"
CHAMPION_ALIAS = "champion"
EXPERIMENT_NAME = "credit-default"
#: The distribution name in this project's pyproject.toml: how a source checkout is recognised.
DISTRIBUTION = "tabular-service"
#: Where this project sits inside a checkout of the AI Architect Workbook.
WORKBOOK_PROJECT = Path("projects") / "tabular_service"


def project_home() -> Path:
    """The project directory (mlruns/, .model-cache/, docs/): TABULAR_HOME, else `default_home`."""
    override = os.environ.get("TABULAR_HOME")
    return Path(override).expanduser().resolve() if override else default_home()


def default_home(package_file: Path | None = None, cwd: Path | None = None) -> Path:
    """Where the project keeps its stores when TABULAR_HOME is not set.

    1. The source checkout the package runs from (an editable install, `PYTHONPATH=src`, a
       fork): the folder holding its pyproject.toml. Training and the service then share one
       store whichever directory each is started from.
    2. Otherwise (an installed wheel) the current directory, except inside a checkout of the
       workbook, where it is the workbook's projects/tabular_service: a run from the workbook's
       root must not leave an `mlruns/` there.

    `package_file` and `cwd` default to this module and the working directory (tests pass others).
    """
    checkout = source_checkout(Path(package_file or __file__))
    if checkout is not None:
        return checkout
    cwd = Path(cwd or Path.cwd()).resolve()
    workbook = enclosing_workbook(cwd)
    return workbook / WORKBOOK_PROJECT if workbook is not None else cwd


def source_checkout(package_file: Path) -> Path | None:
    """The project folder when `package_file` (a module of this package) lies in `<project>/src`."""
    src = Path(package_file).resolve().parent.parent
    project = src.parent
    if src.name != "src":
        return None
    try:
        meta = tomllib.loads((project / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return project if meta.get("project", {}).get("name") == DISTRIBUTION else None


def enclosing_workbook(folder: Path) -> Path | None:
    """The root of the workbook checkout that contains `folder`, if any."""
    for candidate in (folder, *folder.parents):
        if (candidate / "curriculum.yaml").is_file() and (
            candidate / WORKBOOK_PROJECT / "pyproject.toml"
        ).is_file():
            return candidate
    return None


def tracking_uri(home: Path | None = None) -> str:
    """TABULAR_TRACKING_URI when set, otherwise a sqlite store under `<home>/mlruns`.

    An explicit `home` wins over the environment variable: a caller naming a directory (a
    test's temporary home, `train --home`) means that directory.
    """
    if home is None and os.environ.get("TABULAR_TRACKING_URI"):
        return os.environ["TABULAR_TRACKING_URI"]
    root = Path(home).resolve() if home is not None else project_home()
    return f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"


def artifact_root(home: Path | None = None) -> Path:
    """Directory holding the artifacts (models, reports) of every run."""
    root = Path(home).resolve() if home is not None else project_home()
    return root / "mlruns" / "artifacts"


def configure(home: Path | None = None) -> str:
    """Point MLflow's tracking and registry at the store, create the experiment, return the URI.

    The experiment is created with an explicit artifact location because MLflow's default
    (`./mlartifacts` relative to whatever the working directory is) would scatter models.
    """
    import mlflow

    uri = tracking_uri(home)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.get_experiment_by_name(EXPERIMENT_NAME) is None:
        artifacts = artifact_root(home)
        artifacts.mkdir(parents=True, exist_ok=True)
        client.create_experiment(EXPERIMENT_NAME, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(EXPERIMENT_NAME)
    return uri


def register_champion(model_uri: str, name: str = MODEL_NAME) -> int:
    """Register `model_uri` as a new version of `name` and point the champion alias at it.

    The alias (not a stage, which MLflow 3 deprecates) is what the service and
    `mlflow models serve` resolve, so promoting a model is one atomic pointer move and rolling
    back is moving it again.
    """
    import mlflow

    version = mlflow.register_model(model_uri, name)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
    return int(version.version)


def champion_uri(name: str = MODEL_NAME) -> str:
    """The registry URI the service and `mlflow models serve` load."""
    return f"models:/{name}@{CHAMPION_ALIAS}"
