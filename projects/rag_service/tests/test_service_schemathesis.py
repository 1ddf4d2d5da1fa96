"""Property-based tests of the live service's HTTP contract: schemathesis generates valid and
invalid requests from the OpenAPI schema and sends them, over HTTP, to the service running
under uvicorn with the real llama.cpp server child and MiniLM retrieval (one per module).

Checks, for every operation in the schema (ask, search, feedback, experiment, dashboard data,
probes, metrics): no request gets a 5xx, every status code returned is documented, and every
body has the documented content type and conforms to the documented schema, errors included.

Every valid question is sent through generation (`idk_threshold=-1`: generated questions are
mostly random text, which would otherwise get "I don't know." without reaching the model), so
odd input meets the prompt builder, the llama.cpp server and the output guardrails. Two limits
keep the module near a minute on 2 cores: answers are capped at `MAX_GENERATED_TOKENS` (a
request may ask for 256, about 4 s of decoding each; the cap keeps the request valid and still
generates), and asked for as JSON (the streamed form has no body schema to check;
test_service.py covers it).

The schema is taken from the app factory at import time (schemathesis' lazy `from_fixture`
does not work with pytest 9, and the live server only exists inside a fixture);
`test_the_tested_schema_is_the_one_the_service_serves` checks that it equals the live
/openapi.json, so what is tested is what the service publishes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from service_support import serve, small_knowledge

from rag_service.service.app import create_app
from rag_service.service.settings import load_settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 20
MAX_GENERATED_TOKENS = 8
ASK_MAX_TOKENS = 256  # AskRequest.max_tokens' maximum: larger values must stay invalid
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Building the app starts nothing (its lifespan builds the services), so this is cheap; the
# data directory is never created because this app is never started.
schema = schemathesis.openapi.from_dict(create_app(load_settings({})).openapi())
# Valid requests (must be answered) and invalid ones (must be refused with a documented 4xx).
schema.config.generation.update(modes=["positive", "negative"], max_examples=MAX_EXAMPLES)


@pytest.fixture(scope="module")
def live_url(tmp_path_factory) -> Any:
    """The service on a loopback port, set up as in test_service.py but never saying "I don't
    know" without generating (see the module docstring)."""
    from rag_service.embeddings.encoder import make_encoder

    data = tmp_path_factory.mktemp("rag-data")
    settings_ = load_settings(
        {}, data_dir=data, max_tokens=12, budget_tokens=320, llm_threads=1, idk_threshold=-1.0
    )
    app = create_app(settings_, knowledge=small_knowledge(make_encoder("fp32")))
    with serve(app) as url:
        yield url


def test_the_tested_schema_is_the_one_the_service_serves(live_url):
    served = httpx.get(f"{live_url}/openapi.json", timeout=30, trust_env=False)
    assert served.status_code == 200
    assert served.json() == schema.raw_schema


def cheap(case: Any) -> None:
    """Keep a valid /v1/ask body valid but short to answer (see the module docstring)."""
    body = case.body
    if case.path != "/v1/ask" or not isinstance(body, dict):
        return
    tokens = body.get("max_tokens")
    # JSON numbers such as 164.0 are valid integers too (pydantic's lax mode agrees).
    number = isinstance(tokens, int | float) and not isinstance(tokens, bool)
    if number and MAX_GENERATED_TOKENS < tokens <= ASK_MAX_TOKENS:
        body["max_tokens"] = MAX_GENERATED_TOKENS
    if body.get("stream") is True:
        body["stream"] = False


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,  # no .hypothesis folder left in the tree
)
def test_api_conforms_to_its_schema(case, live_url) -> None:
    cheap(case)
    response = case.call(base_url=live_url, timeout=120)
    case.validate_response(response, checks=CHECKS)
