"""The servable: encoder + scorer + threshold, saved as one file inside the MLflow model.

Training builds a `CreditPredictor`; MLflow stores it (pickled) as an artifact of a pyfunc model
(`tabular_service.mlflow_model`), so `mlflow models serve` and this project's service load the
very same object. The service calls `predict_proba_records` on validated request dicts, which
never imports pandas; MLflow's scoring server goes through `predict_proba_frame`.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tabular_service.features import EncodedBatch, FeatureEncoder

if TYPE_CHECKING:
    import pandas as pd

#: File name of the pickled predictor inside a model directory.
PREDICTOR_FILE = "predictor.pkl"
#: Modules renamed since predictors were first pickled: old name -> new name. A pickle names the
#: module of every class it holds, so without this map a model registered before a rename
#: (its scorer pickled as `tabular_service.models.LinearScorer`) would no longer load.
RENAMED_MODULES = {"tabular_service.models": "tabular_service.scorers"}


class Scorer(Protocol):
    """A fitted model that turns an encoded batch into default probabilities, shape (n,)."""

    def score(self, batch: EncodedBatch) -> np.ndarray: ...


@dataclass
class CreditPredictor:
    """Everything needed to turn an application into a decision."""

    encoder: FeatureEncoder
    scorer: Scorer
    threshold: float
    model_kind: str
    metadata: dict[str, object] = field(default_factory=dict)

    def predict_proba_records(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        """Default probabilities for validated request records (the service's hot path)."""
        return self.scorer.score(self.encoder.encode_records(records))

    def predict_proba_frame(self, X: pd.DataFrame) -> np.ndarray:
        """Default probabilities for a DataFrame with the schema's columns."""
        return self.scorer.score(self.encoder.transform(X))

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """True where the application is rejected (probability at or above the threshold)."""
        return np.asarray(probabilities) >= self.threshold

    def save(self, directory: Path) -> Path:
        """Write the predictor to `directory/predictor.pkl` and return the path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / PREDICTOR_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)  # atomic: a crash mid-write never leaves half a model
        return path


class _RenamingUnpickler(pickle.Unpickler):
    """An unpickler that follows RENAMED_MODULES when it looks a class up."""

    def find_class(self, module: str, name: str) -> object:
        return super().find_class(RENAMED_MODULES.get(module, module), name)


def unpickle_predictor(data: bytes) -> object:
    """Unpickle bytes written by `CreditPredictor.save`, old module names included."""
    return _RenamingUnpickler(io.BytesIO(data)).load()


def predictor_candidates(path: Path) -> list[Path]:
    """Where a predictor may be: the file itself, or in a model directory.

    An MLflow pyfunc directory keeps it under `artifacts/`; a plain directory at its top.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    return [path / PREDICTOR_FILE, path / "artifacts" / PREDICTOR_FILE]


def load_predictor(path: Path) -> CreditPredictor:
    """Load a predictor from a file, a model directory, or an MLflow model directory.

    Raises FileNotFoundError naming the places it looked.
    """
    candidates = predictor_candidates(path)
    for candidate in candidates:
        if candidate.is_file():
            predictor = unpickle_predictor(candidate.read_bytes())
            if not isinstance(predictor, CreditPredictor):
                raise TypeError(f"{candidate} holds a {type(predictor).__name__}, not a predictor")
            return predictor
    raise FileNotFoundError(f"no {PREDICTOR_FILE} in: {', '.join(map(str, candidates))}")
