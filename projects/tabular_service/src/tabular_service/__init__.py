"""tabular_service: a credit-default model trained and tracked in MLflow, served by FastAPI.

Modules, one job each: `schema` (the raw application), `data` (load, split, leakage check),
`features` (the encoder shared by training and serving), `evaluation` (metrics, threshold),
`scorers` / `mlp` (fitted models behind one interface), `candidates` (the model families
trained), `selection` (the champion rule and release gate), `training` (the MLflow-tracked
pipeline) and `train` (its command line), `predictor` (the servable), `service` (the FastAPI
app), `loadtest` (open-loop load generator and SLO check).
Kept import-light: importing the package imports none of pandas, mlflow or torch.
"""

import os as _os

# Offline by construction: MLflow sends usage telemetry unless told not to (a user may opt in).
_os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"
