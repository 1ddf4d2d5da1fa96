"""The service when its parts are broken: a model server that is not there, a damaged cache.

No model server is started here: RAG_LLM_URL points at a loopback port nothing listens on, the
way a remote vLLM or llama-server that is down looks to the service.
"""

from __future__ import annotations

import httpx
import pytest
from service_support import serve, small_knowledge

pytestmark = pytest.mark.slow

OFF_TOPIC = "What is the capital city of Australia?"


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    from rag_service.embeddings.encoder import make_encoder
    from rag_service.service.app import create_app
    from rag_service.service.llm_server import free_loopback_port
    from rag_service.service.settings import load_settings

    data = tmp_path_factory.mktemp("rag-data")
    (data / "response-cache.sqlite").write_bytes(b"this is not a SQLite file" * 100)
    (data / "requests.sqlite").write_bytes(b"\x00garbage" * 500)
    settings = load_settings(
        {}, data_dir=data, llm_url=f"http://127.0.0.1:{free_loopback_port()}", idk_threshold=0.3
    )
    app = create_app(settings, knowledge=small_knowledge(make_encoder("fp32")))
    with serve(app) as url, httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
        client.data_dir = data  # type: ignore[attr-defined]
        yield client


def test_damaged_stores_are_moved_aside_and_the_service_starts(broken):
    assert broken.get("/readyz").status_code == 200
    names = {p.name for p in broken.data_dir.iterdir()}
    assert any(n.startswith("response-cache.sqlite") and n != "response-cache.sqlite"
               for n in names), names  # fmt: skip
    assert any(n.startswith("requests.sqlite.damaged-") for n in names), names


def test_a_model_server_that_is_down_gives_a_503_naming_it(broken):
    response = broken.post(
        "/v1/ask", json={"question": "How do I parse JSON text?", "user_id": "u1"}
    )
    assert response.status_code == 503
    assert "language model" in response.json()["detail"]
    streamed = broken.post(
        "/v1/ask", json={"question": "How do I parse JSON text?", "user_id": "u1", "stream": True}
    )
    assert streamed.status_code == 200 and "event: error" in streamed.text


def test_answers_that_need_no_model_still_work_and_are_cached_in_the_new_store(broken):
    first = broken.post("/v1/ask", json={"question": OFF_TOPIC, "user_id": "u2"}).json()
    again = broken.post("/v1/ask", json={"question": OFF_TOPIC, "user_id": "u2"}).json()
    assert first["status"] == again["status"] == "idk"
    assert (first["cache"], again["cache"]) == ("none", "exact")


def test_a_cache_damaged_while_serving_is_not_served(broken):
    question = "Who wrote the novel Moby Dick?"
    broken.post("/v1/ask", json={"question": question, "user_id": "u3"})
    path = broken.data_dir / "response-cache.sqlite"
    with path.open("r+b") as handle:  # overwrite the header and the first pages
        handle.write(b"\xff" * 8192)
    again = broken.post("/v1/ask", json={"question": question, "user_id": "u3"})
    assert again.status_code == 200 and again.json()["cache"] != "exact"
