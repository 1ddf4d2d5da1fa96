"""The predictor as an MLflow pyfunc model, so the registry and `mlflow models serve` can use it.

The model directory holds `artifacts/predictor.pkl` (the very object the service loads) and a
thin `CreditModel` wrapper that MLflow calls. Two consumers, one artifact: the project's own
service reads the pickle directly (fast path, no pandas), while MLflow's generic scoring server
goes through `predict` with a DataFrame. The same numbers come out of both.
"""

from __future__ import annotations

import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from tabular_service.predictor import CreditPredictor, load_predictor
from tabular_service.schema import EXAMPLE_APPLICATION, FIELDS, NUMERIC, LoanApplication

#: Output columns of `CreditModel.predict`.
OUTPUT_COLUMNS = ("probability_of_default", "decision")


class CreditModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: DataFrame of applications in, probability and decision out."""

    def load_context(self, context: Any) -> None:
        self.predictor = load_predictor(Path(context.artifacts["predictor"]))

    # No type hints: MLflow 3 cannot validate a DataFrame hint; the logged signature does that.
    def predict(self, context, model_input, params=None):
        frame = pd.DataFrame(model_input)  # a no-copy view when it is one already
        missing = [name for name in FIELDS if name not in frame.columns]
        if missing:
            raise ValueError(f"missing fields: {', '.join(missing)}")
        return predictions_frame(self.predictor, frame)


def predictions_frame(predictor: CreditPredictor, frame: pd.DataFrame) -> pd.DataFrame:
    """The pyfunc output for `frame`: probability of default and the decision, one row each."""
    probability = predictor.predict_proba_frame(frame)
    decision = np.where(predictor.decide(probability), "reject", "approve")
    return pd.DataFrame({OUTPUT_COLUMNS[0]: probability, OUTPUT_COLUMNS[1]: decision})


def example_frame() -> pd.DataFrame:
    """EXAMPLE_APPLICATION with every numeric field as a float64 column.

    The signature is inferred from this frame. Training sees every numeric field as float64
    (counts included), and MLflow's schema enforcement refuses to narrow a double to a long,
    so an integer-typed count column would reject a client sending `"inq_fi": 1.0`. With
    double columns, any JSON number is accepted by `mlflow models serve`. (In-process callers
    of `pyfunc.load_model(...).predict` should pass float columns too: MLflow refuses to
    convert an int64 column to double.)
    """
    record = LoanApplication(**EXAMPLE_APPLICATION).model_dump()
    frame = pd.DataFrame([record], columns=list(FIELDS))
    return frame.astype({name: np.float64 for name in NUMERIC})


def pip_requirements() -> list[str]:
    """Pinned to what is installed, without MLflow's slow requirement inference."""
    names = ["numpy", "pandas", "scikit-learn", "mlflow", "pydantic", "cloudpickle"]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def log_predictor(
    predictor: CreditPredictor, *, name: str = "model"
) -> mlflow.models.model.ModelInfo:
    """Log `predictor` as a pyfunc model in the active run (signature + input example).

    Registration is separate (`tracking.register_champion`): only the winner is registered.
    """
    from mlflow.models import infer_signature

    example = example_frame()
    output = predictions_frame(predictor, example)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # MLflow nudges towards type-hinted predict(); our schema comes from the signature.
        warnings.filterwarnings("ignore", message=".*type hint.*", category=UserWarning)
        path = predictor.save(Path(tmp))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=CreditModel(),
            artifacts={"predictor": str(path)},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=pip_requirements(),
        )
