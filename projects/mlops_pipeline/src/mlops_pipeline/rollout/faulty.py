"""Challengers for rehearsing a rollout: one with a realistic feature bug, and healthy ones.

The bad challenger is the champion's own fitted model behind a serving-side bug, the kind a
canary exists to catch because offline evaluation cannot: the training pipeline computed the
features correctly, the new serving code reads them wrongly. Its gates would pass (same model);
only the live score distribution gives it away. Bugs on offer (`FEATURE_BUGS`):

- "delay_rates_percent": the rate features (share of delayed departures, 0..1) read as
  percentages (0..100), as after an upstream team "fixed" a dashboard unit;
- "temperature_celsius": temperature and dew point in Celsius where the model learnt Fahrenheit;
- "precip_hundredths": precipitation in hundredths of an inch (METAR's raw unit) for inches.

How far a bug moves the scores depends on the model, not only on the bug. Measured on the
serving fixture's champion (hist_gb, 14 March 2013, 979 flights): the rates bug moves the mean
delay probability from 0.21 to 0.41, Celsius by -0.05 and precipitation by nothing on a dry day.
A hist_gb trained on another window moved only +0.05 under the same rates bug (trees put
out-of-range values in their last bin), and a logistic regression, which extrapolates, +0.66
(the canary lab's champion). A score-shift check is a bug detector with a threshold, not a
guarantee: the canary page discusses what it misses.

Each challenger is a new MLflow run and a new version of `flight-delay` with the alias
`challenger`; the champion alias never moves here (that is the canary controller's job).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from mlops_pipeline.features.schema import RATE_FEATURES
from mlops_pipeline.paths import Paths
from mlops_pipeline.training.registry import CHALLENGER, CHAMPION, MODEL_NAME
from mlops_pipeline.training.tracking import (
    EXPERIMENT,
    artifact_location,
    ensure_experiment,
    pip_requirements,
    store_uri,
    tracking,
)
from mlops_pipeline.training.train import DelayModel

__all__ = [
    "FEATURE_BUGS",
    "FeatureBugModel",
    "register_champion_copy",
    "register_faulty_challenger",
    "register_retrained_challenger",
]


def _rates_percent(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{c: frame[c] * 100.0 for c in RATE_FEATURES if c in frame})


def _celsius(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        **{c: (frame[c] - 32.0) * 5.0 / 9.0 for c in ("temp", "dewp") if c in frame}
    )


def _hundredths(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(precip=frame["precip"] * 100.0) if "precip" in frame else frame


FEATURE_BUGS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "delay_rates_percent": _rates_percent,
    "temperature_celsius": _celsius,
    "precip_hundredths": _hundredths,
}


class FeatureBugModel(DelayModel):
    """The champion's fitted model scoring features one bug away from what it learnt.

    A subclass, so the service cannot take its fast path for plain `DelayModel`s and scores it
    through pyfunc like any foreign model (as a real buggy release would be).
    """

    def __init__(self, model: Any, bug: str):
        if bug not in FEATURE_BUGS:
            raise ValueError(f"unknown feature bug {bug!r}; choose one of {sorted(FEATURE_BUGS)}")
        super().__init__(model)
        self.bug = bug

    def predict(self, context, model_input, params=None):
        frame = FEATURE_BUGS[self.bug](pd.DataFrame(model_input))
        return pd.DataFrame({"delay_probability": self.model.predict_proba(frame)})


def _champion(client: Any, name: str) -> tuple[str, Any]:
    """The champion's version and its fitted model (our DelayModel wrapper's `model`)."""
    import mlflow

    version = client.get_model_version_by_alias(name, CHAMPION)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
    inner = pyfunc.unwrap_python_model()
    if not isinstance(inner, DelayModel):
        raise TypeError(
            f"models:/{name}@{CHAMPION} is a {type(inner).__name__}, not a model this package "
            "trained: cannot rebuild it with a feature bug"
        )
    return str(version.version), inner.model


def _register(client: Any, name: str, model_uri: str, tags: dict[str, str]) -> str:
    """A new version of `name` from `model_uri`, tagged, with the alias `challenger`."""
    import mlflow

    version = str(mlflow.register_model(model_uri, name).version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def register_faulty_challenger(
    paths: Paths, bug: str = "delay_rates_percent", *, name: str = MODEL_NAME
) -> str:
    """Register the champion's model with `bug` as a new version aliased `challenger`.

    The signature is the champion's: the buggy model accepts exactly the same requests.
    """
    import mlflow

    if bug not in FEATURE_BUGS:
        raise ValueError(f"unknown feature bug {bug!r}; choose one of {sorted(FEATURE_BUGS)}")
    uri = store_uri(paths.mlruns)
    with tracking(uri) as client:
        champion_version, fitted = _champion(client, name)
        signature = mlflow.models.get_model_info(f"models:/{name}/{champion_version}").signature
        experiment_id = ensure_experiment(client, EXPERIMENT, artifact_location(uri))
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"faulty-{bug}"):
            mlflow.set_tags(
                {"stage": "faulty", "faulty.bug": bug, "faulty.wraps_version": champion_version}
            )
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=FeatureBugModel(fitted, bug),
                    signature=signature,
                    pip_requirements=pip_requirements(),
                )
        return _register(
            client,
            name,
            info.model_uri,
            {"candidate": f"faulty:{bug}", "faulty.bug": bug, "wraps": champion_version},
        )


def register_champion_copy(paths: Paths, *, name: str = MODEL_NAME) -> str:
    """The champion's model artifact registered again as `challenger`: a rebuild that changes
    nothing, the baseline a canary must promote."""
    uri = store_uri(paths.mlruns)
    with tracking(uri) as client:
        champion = client.get_model_version_by_alias(name, CHAMPION)
        source = f"models:/{name}/{champion.version}"
        return _register(client, name, source, {"candidate": f"copy-of-{champion.version}"})


def register_retrained_challenger(
    paths: Paths,
    training_set: pd.DataFrame,
    split: Any,
    spec: Any | None = None,
    *,
    name: str = MODEL_NAME,
) -> str:
    """Train `spec` on `training_set` with `split` and register it as `challenger` (no gates:
    the canary is what is being rehearsed). Returns the new version.

    The default spec is the pipeline's hist_gb candidate with 250 boosting iterations instead
    of 200: a genuinely retrained model whose live scores stay close to the champion's. Measured
    on the serving fixture (300 live requests scored by both): mean score -0.001 from the
    champion's, where l2_regularization 1.5 instead of 1.0 already moved it by +0.03 and
    150 iterations at learning rate 0.1 by +0.05 (rolled back on score shift: scores of rows
    with missing plane features diverge most between variants).
    """
    from dataclasses import replace

    from mlops_pipeline.training.models import default_specs
    from mlops_pipeline.training.train import train_candidates

    if spec is None:
        (hist_gb,) = [s for s in default_specs() if s.family == "hist_gb"]
        spec = replace(hist_gb, params={**hist_gb.params, "max_iter": 250})
    uri = store_uri(paths.mlruns)
    (candidate,) = train_candidates(training_set, split, uri, specs=[spec])
    with tracking(uri) as client:
        return _register(client, name, candidate.model_uri, {"candidate": spec.name})
