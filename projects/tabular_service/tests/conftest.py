"""Shared fixtures: the data split, a fitted encoder, a small predictor and an MLflow registry.

Session-scoped because each is deterministic and read-only for the tests that use it; building
them once keeps the suite fast. Heavy imports (scikit-learn, MLflow) stay inside the fixtures so
collecting a test file that needs none of them stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tabular_service.data import Split, load_loans, split
from tabular_service.features import FeatureEncoder
from tabular_service.predictor import CreditPredictor


@pytest.fixture(scope="session")
def loans() -> Split:
    """The validated Lending Club loans, split 60/20/20 with the project's seed."""
    X, y = load_loans()
    return split(X, y)


@pytest.fixture(scope="session")
def fitted_encoder(loans: Split) -> FeatureEncoder:
    """A FeatureEncoder fitted on the training rows."""
    return FeatureEncoder().fit(loans.X_train)


@pytest.fixture(scope="session")
def small_predictor(loans: Split, fitted_encoder: FeatureEncoder) -> CreditPredictor:
    """A logistic regression predictor (SklearnScorer) with its cost-optimal threshold."""
    from sklearn.linear_model import LogisticRegression

    from tabular_service.evaluation import cost_optimal_threshold
    from tabular_service.scorers import SklearnScorer

    design = fitted_encoder.design(fitted_encoder.transform(loans.X_train), one_hot=True)
    model = LogisticRegression(C=0.1, max_iter=2000).fit(design, loans.y_train)
    scorer = SklearnScorer(model, fitted_encoder, one_hot=True)
    p_valid = scorer.score(fitted_encoder.transform(loans.X_valid))
    return CreditPredictor(
        encoder=fitted_encoder,
        scorer=scorer,
        threshold=cost_optimal_threshold(loans.y_valid, p_valid),
        model_kind="logistic",
        metadata={"C": 0.1, "source": "tests/conftest.py"},
    )


@pytest.fixture(scope="session")
def predictor_dir(small_predictor: CreditPredictor, tmp_path_factory) -> Path:
    """A directory holding small_predictor saved as predictor.pkl."""
    directory = tmp_path_factory.mktemp("predictor")
    small_predictor.save(directory)
    return directory


@pytest.fixture(scope="session")
def registry_home(small_predictor: CreditPredictor, tmp_path_factory) -> Iterator[Path]:
    """A TABULAR_HOME with a sqlite MLflow store where small_predictor is the champion.

    The model is logged with log_predictor, registered as `credit-default` and the alias
    `champion` points at that version, so `models:/credit-default@champion` resolves once
    the tracking URI is `tracking.tracking_uri(home)` (pass it to child processes as
    MLFLOW_TRACKING_URI).
    """
    import mlflow

    from tabular_service import tracking
    from tabular_service.mlflow_model import log_predictor

    home = tmp_path_factory.mktemp("home")
    tracking.configure(home)
    with mlflow.start_run(run_name="conftest-logistic"):
        info = log_predictor(small_predictor)
    tracking.register_champion(info.model_uri)
    yield home
