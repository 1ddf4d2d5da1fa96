"""Training, evaluation gates and gated promotion in the MLflow registry.

splits (time-based train/valid/test) -> models (logistic, hist_gb; monotone in precipitation)
-> train (one MLflow run and pyfunc model per candidate) -> gates (improvement by a paired
bootstrap interval, slices, invariance, direction, operational) -> registry (challenger,
champion only when every gate passes) -> report (JSON under <home>/runs).
"""
