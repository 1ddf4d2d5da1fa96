"""tabular_service: a credit-default model trained and tracked in MLflow, served by FastAPI.

Modules, one job each: `schema` (the raw application), `data` (load, split, leakage check),
`features` (the encoder shared by training and serving), `evaluation` (metrics, threshold),
`models` / `mlp` (scorers), `train` (the MLflow-tracked training run), `predictor` (the servable),
`service` (the FastAPI app), `loadtest` (open-loop load generator and SLO check).
Kept import-light: importing the package imports none of pandas, mlflow or torch.
"""

__version__ = "0.1.0"
