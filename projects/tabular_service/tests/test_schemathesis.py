"""Property-based API tests: schemathesis generates valid and invalid requests from /openapi.json.

For every operation it checks that no request produces a 5xx, that every status code returned
is documented, and that every response body conforms to its documented schema. The app runs
in-process over ASGI (no server), with a small batch limit so oversize batches get exercised.

The schema is loaded at import time (schemathesis' lazy `from_fixture` does not work with
pytest 9), so the app is built without a model and the fixture below hands it the predictor.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tabular_service.predictor import CreditPredictor
from tabular_service.service.app import create_app
from tabular_service.service.loading import LoadedModel, ModelInfo
from tabular_service.settings import Settings

pytestmark = pytest.mark.slow

app = create_app(Settings(max_batch=4))
# Not "loading": fetching the schema starts the app, and its lifespan would otherwise load the
# champion of whatever registry the project home holds (and cache it there).
app.state.model_state.set_failed("no model yet: the fixture below provides one")
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
# Both valid requests (must succeed) and invalid ones (must be rejected with a 4xx).
schema.config.generation.update(modes=["positive", "negative"], max_examples=30)
# An oversize batch is invalid per the schema (maxItems) and answered 413, not 422.
schema.config.checks.negative_data_rejection.expected_statuses.append("413")


@pytest.fixture(scope="module", autouse=True)
def serving(small_predictor: CreditPredictor) -> None:
    info = ModelInfo("credit-default", "test", small_predictor.model_kind, "argument")
    app.state.model_state.set_ready(LoadedModel(small_predictor, info))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case) -> None:
    response = case.call_and_validate()
    assert response.status_code < 500
