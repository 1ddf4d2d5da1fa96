"""HTTP routes: ask (JSON or Server-Sent Events), search, feedback, the A/B report, probes,
metrics and the dashboard. Routes only translate between HTTP and the pipeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rag_service.service import pipeline
from rag_service.service.dashboard import dashboard_data
from rag_service.service.llm_client import LlmError
from rag_service.service.schemas import (
    AskRequest,
    AskResponse,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
    ValidationErrorResponse,
)

NOT_READY = {503: {"model": ErrorResponse, "description": "Starting, or the model is down."}}
INVALID = {422: {"model": ValidationErrorResponse, "description": "A value is missing or "
                 "invalid; `detail` names the field."}}  # fmt: skip
NOT_JSON = {400: {"model": ErrorResponse, "description": "The body is not JSON text (for "
                  "example, not UTF-8)."}}  # fmt: skip


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def build_router(
    get_services: Callable[[], pipeline.Services | None],
    startup_failed: Callable[[], str | None] = lambda: None,
) -> APIRouter:
    router = APIRouter()

    def services_or_503() -> pipeline.Services:
        services = get_services()
        if services is None:
            failure = startup_failed()
            if failure:
                raise HTTPException(503, f"start-up failed: {failure}")
            raise HTTPException(503, "starting: the index is being built; retry shortly")
        return services

    @router.post(
        "/v1/ask",
        response_model=AskResponse,
        responses={
            **NOT_READY, **INVALID, **NOT_JSON,
            200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE events "
                  "`meta`, `token`, `done` (or `error`) when `stream` is true."},
        },
    )  # fmt: skip
    async def ask(body: AskRequest) -> Any:
        """Answer a question from the documentation, citing the chunks it used."""
        services = services_or_503()
        settings = services.settings
        if len(body.question) > settings.max_question_chars:
            raise HTTPException(
                422, f"question: longer than {settings.max_question_chars} characters"
            )
        if body.max_tokens is not None and body.max_tokens > settings.max_tokens_limit:
            raise HTTPException(422, f"max_tokens: at most {settings.max_tokens_limit}")
        max_tokens = body.max_tokens or settings.max_tokens
        needed = pipeline.frame_tokens(services, body.question) + max_tokens
        if needed > settings.llm_context_tokens:
            raise HTTPException(
                422,
                f"question: too long for the model's {settings.llm_context_tokens}-token context "
                f"with max_tokens={max_tokens} (needs {needed} tokens before any source)",
            )
        request = pipeline.Ask(
            question=body.question,
            user_id=body.user_id,
            max_tokens=max_tokens,
            top_k=body.top_k or settings.top_k,
        )
        events = pipeline.answer(services, request)
        if body.stream:
            return StreamingResponse(
                _stream(events), media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )  # fmt: skip
        meta: dict[str, Any] = {}
        try:
            async for event in events:
                if event.kind == "meta":
                    meta = event.data
                elif event.kind == "done":
                    done = event.data
        except LlmError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        return AskResponse(
            request_id=meta["request_id"],
            variant=meta["variant"],
            answer=done["answer"],
            status=done["status"],
            citations=done["citations"],
            unknown_citations=done["unknown_citations"],
            cache=done["cache"],
            guardrails=done["guardrails"],
            sources=meta.get("sources", []),
        )

    async def _stream(events: AsyncIterator[pipeline.Event]) -> AsyncIterator[bytes]:
        try:
            async for event in events:
                yield _sse(event.kind, event.data)
        except LlmError as exc:
            yield _sse("error", {"detail": str(exc)})
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    @router.post(
        "/v1/search",
        response_model=SearchResponse,
        responses={**NOT_READY, **INVALID, **NOT_JSON},
    )
    async def search(body: SearchRequest) -> SearchResponse:
        """The passages a question would be answered from (no generation)."""
        services = services_or_503()
        vector = await services.batcher.submit(body.query)
        found = await asyncio.to_thread(
            services.knowledge.retrieve, body.query, vector, body.retrieval, body.top_k
        )
        chunks = services.knowledge.chunks
        return SearchResponse(
            hits=[
                SearchHit(id=p.id, doc_id=chunks[p.id].doc_id, score=p.score, text=p.text)
                for p in found.passages
            ],
            top_cosine=found.top_cosine,
            index_version=services.knowledge.version,
        )

    @router.post(
        "/v1/feedback",
        response_model=FeedbackResponse,
        status_code=202,
        responses={404: {"model": ErrorResponse}, **NOT_READY, **INVALID, **NOT_JSON},
    )
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        """Rate an answer; the rating is an outcome of the user's A/B variant."""
        services = services_or_503()
        user = services.recent.get(body.request_id)
        if user is None:
            row = await asyncio.to_thread(services.request_log.find, body.request_id)
            if row is None:
                raise HTTPException(404, f"request_id: no answer {body.request_id} was logged")
            user = row["user"]
        await asyncio.to_thread(services.request_log.set_feedback, body.request_id, body.rating)
        variant = await asyncio.to_thread(
            services.experiment_log.record,
            services.experiment, user, "helpful", 1.0 if body.rating > 0 else 0.0,
        )  # fmt: skip
        services.metrics.feedback.labels(variant, str(body.rating)).inc()
        return FeedbackResponse(recorded=True, variant=variant)

    @router.get("/v1/experiment", responses={**NOT_READY, **INVALID})
    async def experiment(
        outcome: str = Query("helpful", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$"),
        metric: str = Query("proportion", pattern="^(proportion|mean)$"),
        minimum_detectable_effect: float = Query(0.05, gt=0, lt=1),
    ) -> dict[str, Any]:
        """Each variant against the control: difference, confidence interval, p-value, SRM
        check and the sample size the minimum detectable effect needs."""
        services = services_or_503()
        return await asyncio.to_thread(
            services.experiment_log.report,
            services.experiment, outcome, metric, minimum_detectable_effect,  # type: ignore[arg-type]
        )  # fmt: skip

    @router.get("/v1/dashboard/data", responses=NOT_READY)
    async def dashboard_json() -> dict[str, Any]:
        """The numbers the dashboard draws (per variant, from the request log)."""
        services = services_or_503()
        rows = await asyncio.to_thread(services.request_log.rows)
        return dashboard_data(
            rows, [v.name for v in services.settings.variants],
            gpu_tokens_per_s=services.settings.gpu_tokens_per_s or None,
        )  # fmt: skip

    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard_page() -> HTMLResponse:
        page = resources.files("rag_service.service").joinpath("static/dashboard.html")
        return HTMLResponse(page.read_text(encoding="utf-8"))

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        """Liveness: the process answers, and its start-up has not failed (a failed start-up
        is not recovered in-process: a 500 here lets the orchestrator restart it)."""
        failure = startup_failed()
        if failure:
            return JSONResponse({"status": "failed", "detail": failure}, status_code=500)
        return JSONResponse({"status": "ok"})

    @router.get("/readyz", responses=NOT_READY)
    async def readyz() -> JSONResponse:
        """Readiness: the index is built and the model backends exist. A model server that is
        being restarted does not make the service unready: requests wait for it (up to
        RAG_LLM_START_TIMEOUT_S), so taking the instance out of rotation would only move its
        load elsewhere for the two seconds a restart takes. Its state is in the body."""
        services = get_services()
        if services is None:
            failure = startup_failed()
            status = {"status": "failed", "detail": failure} if failure else {"status": "starting"}
            return JSONResponse(status, status_code=503)
        models = {name: b.is_ready() for name, b in services.backends.items()}
        services.metrics.llm_ready.set(1 if all(models.values()) else 0)
        return JSONResponse(
            {
                "status": "ready",
                "index_version": services.knowledge.version,
                "models": {name: "up" if up else "restarting" for name, up in models.items()},
            }
        )

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus exposition."""
        services = get_services()
        if services is None:
            return PlainTextResponse("", media_type=CONTENT_TYPE_LATEST)
        services.metrics.embed_batch.set(services.batcher.mean_batch)
        services.metrics.llm_ready.set(
            1 if all(b.is_ready() for b in services.backends.values()) else 0
        )
        server = getattr(services.backends.get("q4"), "server", None)
        if server is not None:
            services.metrics.llm_restarts.set(server.restarts)
        return PlainTextResponse(
            generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    return router
