"""One question's way through the service, as a stream of events the routes send on.

    question -> input guardrails (PII redacted, injection refused) -> A/B variant
             -> exact cache -> query embedding (micro-batched) -> semantic cache
             -> retrieval (dense or hybrid) -> "I don't know" if nothing is relevant
             -> sources checked for injected instructions -> packed into the token budget
             -> streamed generation with PII held back and redacted -> leak check
             -> citations checked -> caches filled -> request and experiment logs

Events: `meta` (who answers and from what), `token` (text to show), `done` (the final answer,
which replaces the streamed text when an output check changed it). Everything a request did is
recorded once, in `finally`, so a request cut off by a client or a failed model is logged too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rag_service.abtest import Experiment, ExperimentLog
from rag_service.caching.response import ResponseCache
from rag_service.caching.semantic import SemanticCache
from rag_service.guardrails.injection import detect_injection, leaks_system_prompt
from rag_service.guardrails.pii import find_pii, redact
from rag_service.guardrails.streaming import StreamRedactor
from rag_service.prompting import (
    IDK_ANSWER,
    SYSTEM_PROMPT,
    Packed,
    build_messages,
    extract_citations,
    pack_passages,
)
from rag_service.service.batcher import MicroBatcher
from rag_service.service.knowledge import Knowledge
from rag_service.service.llm_client import ChatBackend
from rag_service.service.observability import Metrics, RequestLog, RequestRecord
from rag_service.service.settings import Settings, Variant

log = logging.getLogger(__name__)

REFUSAL_INJECTION = (
    "I can't help with that: the question asks me to ignore or change my instructions. "
    "Ask a question about Python and I will answer it from the documentation."
)
RECENT_REQUESTS = 10_000
REFUSAL_LEAK = "I can't share that. Ask a question about Python and I will answer it."
CHAT_TOKENS_PER_MESSAGE = 5
"""ChatML wraps each message in `<|im_start|>role\\n ... <|im_end|>\\n`: about 5 tokens."""


@dataclass
class Event:
    kind: str  # "meta" | "token" | "done"
    data: dict[str, Any]


@dataclass
class Ask:
    """A validated request (the routes' schema turns JSON into this)."""

    question: str
    user_id: str
    max_tokens: int
    top_k: int
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Services:
    """Everything the pipeline uses, built once by the app."""

    settings: Settings
    knowledge: Knowledge
    backends: Mapping[str, ChatBackend]
    count_tokens: Callable[[str], int]
    response_cache: ResponseCache
    semantic: dict[str, SemanticCache]
    experiment: Experiment
    experiment_log: ExperimentLog
    request_log: RequestLog
    metrics: Metrics
    batcher: MicroBatcher[str, Any]
    rules_tokens: int | None = None
    """Tokens of the system prompt (constant: counted once)."""
    recent: OrderedDict[str, str] = field(default_factory=OrderedDict)
    """request id -> user id of the latest answers: feedback can follow an answer at once,
    before its background log write has landed."""

    @property
    def variants(self) -> dict[str, Variant]:
        return {v.name: v for v in self.settings.variants}


SAFETY_TOKENS = 16
"""Slack for the estimate of the chat frame (the server's own count may differ by a few)."""


def _prompt_tokens(messages: list[dict[str, str]], count: Callable[[str], int]) -> int:
    return sum(count(m["content"]) + CHAT_TOKENS_PER_MESSAGE for m in messages) + 3


def frame_tokens(services: Services, question: str) -> int:
    """Tokens of the prompt without any source: rules, question and chat frame, plus slack.
    The rules' count is taken once (tokenizing them costs 0.7 ms, a cache hit's whole budget
    is 5)."""
    system, user = build_messages(question, Packed([]))
    if services.rules_tokens is None:
        services.rules_tokens = services.count_tokens(system["content"])
    user_tokens = services.count_tokens(user["content"])
    return services.rules_tokens + user_tokens + 2 * CHAT_TOKENS_PER_MESSAGE + 3 + SAFETY_TOKENS


def source_budget(services: Services, question: str, max_tokens: int) -> int:
    """Tokens left for sources: the configured budget, or less when a long question and a long
    answer would push the prompt past the model's context (the answer would be cut off)."""
    room = services.settings.llm_context_tokens - max_tokens - frame_tokens(services, question)
    return max(0, min(services.settings.budget_tokens, room))


async def answer(services: Services, ask: Ask) -> AsyncIterator[Event]:
    """The events of one answer; raises `LlmError` if generation fails before `done`."""
    settings, metrics = services.settings, services.metrics
    started = time.perf_counter()
    record = RequestRecord(request_id=ask.request_id, user=ask.user_id, ts=time.time())
    services.recent[ask.request_id] = ask.user_id
    while len(services.recent) > RECENT_REQUESTS:
        services.recent.popitem(last=False)
    actions: list[str] = []
    record.guardrails = actions
    try:
        findings = find_pii(ask.question)
        question = redact(ask.question, findings).text if findings else ask.question
        if findings:
            actions.append("pii_redacted_input")
        if detect_injection(ask.question).flagged:
            # refused before the A/B assignment: a refusal is no exposure to either variant
            actions.append("injection_refused")
            record.status = "blocked"
            meta: dict[str, Any] = {"request_id": ask.request_id, "variant": ""}
            async for event in _fixed(meta, REFUSAL_INJECTION, "blocked", "none", actions):
                yield event
            return
        # The variant is a hash of the user id, known at once; the exposure row is written by a
        # worker thread off the request's path (a SQLite commit costs milliseconds).
        variant = services.variants[services.experiment.assign(ask.user_id)]
        _in_background(services.experiment_log.expose, services.experiment, ask.user_id)
        record.variant = variant.name
        meta = {"request_id": ask.request_id, "variant": variant.name}

        config = {**variant.config(), "max_tokens": ask.max_tokens, "top_k": ask.top_k}
        version = services.knowledge.version
        cached = await asyncio.to_thread(services.response_cache.get, question, config, version)
        if cached is not None:
            record.cache, record.status = "exact", cached.get("status", "answered")
            async for event in _cached(meta, cached, "exact", actions):
                yield event
            return

        vector = await services.batcher.submit(question)
        semantic = services.semantic[variant.name]
        hit = semantic.lookup(vector, version)
        if hit is not None:
            record.cache, record.status = "semantic", hit.answer.get("status", "answered")
            # the next time this exact question comes, the exact cache answers it directly
            await asyncio.to_thread(
                services.response_cache.put, question, config, version, hit.answer
            )
            async for event in _cached(meta, hit.answer, "semantic", actions):
                yield event
            return

        retrieved = await asyncio.to_thread(
            services.knowledge.retrieve, question, vector, variant.retrieval, ask.top_k
        )
        record.top_cosine = retrieved.top_cosine
        safe = []
        for passage in retrieved.passages:
            if detect_injection(passage.text).flagged:
                actions.append("injected_source_dropped")
            else:
                safe.append(passage)
        budget = source_budget(services, question, ask.max_tokens)
        packed = pack_passages(safe, budget, services.count_tokens)
        if retrieved.top_cosine < settings.idk_threshold or not packed.included:
            record.status = "idk"
            stored = {
                "answer": IDK_ANSWER, "status": "idk", "citations": [], "unknown_citations": [],
            }  # fmt: skip
            await _store(services, question, config, version, vector, variant, stored)
            async for event in _fixed(meta, IDK_ANSWER, "idk", "none", actions):
                yield event
            return

        messages = build_messages(question, packed)
        allowed = [p.id for p in packed.included]
        record.prompt_tokens = _prompt_tokens(messages, services.count_tokens)
        yield Event("meta", {**meta, "cache": "none", "sources": allowed})

        backend = services.backends[variant.generator]
        redactor = StreamRedactor()
        metrics.in_flight.inc()
        try:
            async for piece in backend.stream(messages, ask.max_tokens):
                if record.ttft_ms is None:
                    record.ttft_ms = (time.perf_counter() - started) * 1000
                shown = redactor.feed(piece)
                if shown:
                    yield Event("token", {"text": shown})
            rest = redactor.finish()
            if rest:
                yield Event("token", {"text": rest})
        finally:
            metrics.in_flight.dec()
        raw = redactor.text
        record.completion_tokens = services.count_tokens(raw) if raw else 0
        text = redactor.redacted_text
        if redactor.counts:
            actions.append("pii_redacted_output")
        if leaks_system_prompt(raw, SYSTEM_PROMPT):
            actions.append("system_prompt_leak_blocked")
            text = REFUSAL_LEAK
        citations = extract_citations(text, allowed)
        record.status = "answered"
        result = {
            "answer": text,
            "status": "answered",
            "citations": citations.cited,
            "unknown_citations": citations.unknown,
        }
        # an empty answer (the model stopped at once) or a blocked one is never served again
        if text.strip() and "system_prompt_leak_blocked" not in actions:
            await _store(services, question, config, version, vector, variant, result)
        yield Event("done", {**result, "cache": "none", "guardrails": list(actions)})
    except (asyncio.CancelledError, GeneratorExit):
        record.status = "cancelled"
        raise
    except Exception:
        record.status = "error"
        raise
    finally:
        record.latency_ms = (time.perf_counter() - started) * 1000
        metrics.observe_answer(record)
        _in_background(services.request_log.write, record)


def _in_background(function: Callable[..., Any], *args: Any) -> None:
    """Run a log write in the default executor without waiting for it; a failure is logged."""
    future = asyncio.get_running_loop().run_in_executor(None, function, *args)
    future.add_done_callback(_log_failure)


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a background log write failed: %s", future.exception())


async def _store(
    services: Services,
    question: str,
    config: dict[str, Any],
    version: str,
    vector: Any,
    variant: Variant,
    value: dict[str, Any],
) -> None:
    await asyncio.to_thread(services.response_cache.put, question, config, version, value)
    services.semantic[variant.name].put(vector, value, version)


async def _fixed(
    meta: dict[str, Any], text: str, status: str, cache: str, actions: list[str]
) -> AsyncIterator[Event]:
    yield Event("meta", {**meta, "cache": cache, "sources": []})
    yield Event("token", {"text": text})
    yield Event(
        "done",
        {
            "answer": text,
            "status": status,
            "citations": [],
            "unknown_citations": [],
            "cache": cache,
            "guardrails": list(actions),
        },
    )


async def _cached(
    meta: dict[str, Any], value: dict[str, Any], cache: str, actions: list[str]
) -> AsyncIterator[Event]:
    yield Event("meta", {**meta, "cache": cache, "sources": value.get("citations", [])})
    yield Event("token", {"text": value["answer"]})
    yield Event("done", {**value, "cache": cache, "guardrails": list(actions)})
