"""The service's parts that need no model and no server: settings, the micro-batcher, the
stream redactor, the SSE parser and the dashboard's arithmetic."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rag_service import costs
from rag_service.guardrails.streaming import StreamRedactor
from rag_service.service.batcher import MicroBatcher
from rag_service.service.dashboard import dashboard_data
from rag_service.service.llm_client import LlmError, _parse_event
from rag_service.service.settings import SettingsError, Variant, load_settings, parse_variants


def test_settings_come_from_rag_variables_with_types_checked(tmp_path):
    settings = load_settings(
        {
            "RAG_PORT": "9000",
            "RAG_DATA_DIR": str(tmp_path),
            "RAG_VARIANTS": "a=dense/q4,b=hybrid/fp32",
        }
    )
    assert settings.port == 9000 and settings.data_dir == tmp_path
    assert settings.variants == (Variant("a", "dense", "q4"), Variant("b", "hybrid", "fp32"))
    assert settings.control.name == "a"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"RAG_PORT": "http"}, "RAG_PORT"),
        ({"RAG_TOP_K": "0"}, "RAG_TOP_K"),
        ({"RAG_VARIANTS": "a=sparse/q4"}, "RAG_VARIANTS"),
        ({"RAG_VARIANTS": "a=dense/q4,a=hybrid/q4"}, "RAG_VARIANTS"),
        ({"RAG_BUDGET_TOKENS": "1900"}, "RAG_BUDGET_TOKENS"),
        ({"RAG_LLM_URL": "localhost:8000"}, "RAG_LLM_URL"),
        ({"RAG_MAX_TOKENS": "300"}, "RAG_MAX_TOKENS"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(environ, names):
    with pytest.raises(SettingsError, match=names):
        load_settings(environ)


def test_variant_config_is_what_changes_an_answer():
    assert parse_variants("x=hybrid/q4")[0].config() == {
        "variant": "x", "retrieval": "hybrid", "generator": "q4"
    }  # fmt: skip


def test_concurrent_submissions_share_model_calls_and_keep_their_results():
    calls: list[list[int]] = []
    gate = threading.Event()

    def double(items):
        calls.append(list(items))
        gate.wait(1.0)  # the first batch runs while the rest queue up behind it
        return [2 * item for item in items]

    async def main():
        batcher = MicroBatcher(double, max_batch=8)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 11)]
        await asyncio.sleep(0.05)
        gate.set()
        results = [await first] + [await task for task in rest]
        await batcher.aclose()
        return results, batcher

    results, batcher = asyncio.run(main())
    assert results == [2 * i for i in range(11)]
    assert calls[0] == [0] and [len(c) for c in calls[1:]] == [8, 2]
    assert batcher.batches == 3 and batcher.mean_batch == pytest.approx(11 / 3)


def test_a_lone_request_is_not_held_back_and_errors_reach_every_waiter():
    def fail(items):
        raise RuntimeError("model broke")

    async def main():
        quick = MicroBatcher(lambda items: list(items), max_batch=16, max_wait_s=1.0)
        started = time.perf_counter()
        assert await quick.submit("a") == "a"
        waited = time.perf_counter() - started
        broken = MicroBatcher(fail)
        outcomes = await asyncio.gather(broken.submit(1), broken.submit(2), return_exceptions=True)
        await quick.aclose()
        await broken.aclose()
        return waited, outcomes

    waited, outcomes = asyncio.run(main())
    assert waited < 0.5
    assert all(isinstance(o, RuntimeError) and "model broke" in str(o) for o in outcomes)


def test_the_stream_redactor_never_shows_part_of_a_card_number():
    text = "Pay with 4111 1111 1111 1111 or mail jo@example.com, then wait for the receipt."
    redactor = StreamRedactor(holdback=48)
    shown = []
    for i in range(len(text)):
        piece = redactor.feed(text[i])
        shown.append(piece)
        assert "4111" not in "".join(shown)
    shown.append(redactor.finish())
    assert "".join(shown) == redactor.redacted_text
    assert redactor.redacted_text == (
        "Pay with <PAYMENT_CARD> or mail <EMAIL>, then wait for the receipt."
    )
    assert redactor.counts == {"PAYMENT_CARD": 1, "EMAIL": 1}
    with pytest.raises(ValueError, match="holdback"):
        StreamRedactor(holdback=0)


def test_sse_lines_of_an_openai_stream_are_read_and_garbage_is_an_error():
    assert _parse_event('data: {"choices": [{"delta": {"content": "Hi"}}]}') == "Hi"
    assert _parse_event('data: {"choices": [{"delta": {"role": "assistant"}}]}') is None
    assert _parse_event("data: [DONE]") is None
    assert _parse_event(": keep-alive") is None
    with pytest.raises(LlmError, match="unreadable"):
        _parse_event("data: {not json")


def _row(variant, latency, cache="none", status="answered", ttft=100.0, tokens=20, **extra):
    row = dict(request_id=f"{variant}{latency}", ts=0.0, user="u", variant=variant)
    row.update(status=status, cache=cache, latency_ms=latency, ttft_ms=ttft, prompt_tokens=300)
    row.update(completion_tokens=tokens, top_cosine=0.6, guardrails="", feedback=None)
    row.update(extra)
    return row


def test_dashboard_costs_follow_the_measured_decoding_rate_and_cache_hits():
    rows = [
        _row("a", 1100.0),  # 20 tokens in 1.0 s after the first: 20 tokens/s
        _row("a", 2.0, cache="exact", ttft=None, tokens=0, feedback=1),
        _row("b", 600.0, guardrails="pii_redacted_input,injected_source_dropped", feedback=-1),
    ]
    data = dashboard_data(rows, ["a", "b"], gpu_tokens_per_s=2000.0)
    a, b = data["variants"]["a"], data["variants"]["b"]
    assert a["requests"] == 2 and a["cache_hit_rate"] == 0.5
    assert a["decode_tokens_per_s"] == pytest.approx(20.0)
    assert a["completion_tokens_mean"] == 10.0  # a cache hit generates nothing
    expected = costs.cost_per_1k_requests(costs.CPU_2VCPU.hourly_price, 20.0, 10.0, 0.6)
    assert a["cost_per_1k_usd"] == pytest.approx(expected, rel=1e-4)
    assert b["decode_tokens_per_s"] == pytest.approx(40.0)
    assert b["guardrail_actions"] == {"pii_redacted_input": 1, "injected_source_dropped": 1}
    assert data["guardrail_actions"] == b["guardrail_actions"]
    assert (a["feedback"]["helpful_rate"], b["feedback"]["helpful_rate"]) == (1.0, 0.0)
    assert data["break_even"]["gpu"]["measured"] is True
    assert len(data["break_even"]["curve"]["load_rps"]) == 60


def test_an_empty_log_draws_an_empty_dashboard():
    data = dashboard_data([], ["a"])
    assert data["requests"] == 0 and data["break_even"] is None
    assert data["variants"]["a"]["cost_per_1k_usd"] is None


def test_feedback_that_arrives_before_its_log_row_is_kept_for_it(tmp_path):
    from rag_service.service.observability import RequestLog, RequestRecord

    log = RequestLog(tmp_path / "requests.sqlite")
    log.set_feedback("early", 1)  # the row is written off the request's path, maybe later
    log.write(RequestRecord(request_id="early", user="u", ts=1.0, variant="a"))
    log.write(RequestRecord(request_id="late", user="u", ts=2.0, variant="a"))
    log.set_feedback("late", -1)
    assert [row["feedback"] for row in log.rows()] == [1, -1]
    log.close()
