"""The FastAPI application factory.

`create_app()` returns at once; its lifespan builds the services (model server, embedding
model, indexes, stores) in a worker thread, so /healthz answers immediately and /readyz turns
200 when everything is up. Whatever was started is stopped when the app stops, also when the
build failed half-way. Tests and notebooks can hand in prebuilt parts (`knowledge`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag_service.service import routes
from rag_service.service.components import Running, build_services
from rag_service.service.knowledge import Knowledge
from rag_service.service.observability import Metrics
from rag_service.service.settings import Settings, load_settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Answers questions about Python from its documentation with SmolLM2-135M (llama.cpp Q4_1 in a
supervised server process), citing the chunks it used; PII is redacted on the way in and out,
prompt injections are refused, answers are cached exactly and semantically, users are split
between retrieval variants by a stable hash, and /dashboard shows latency, tokens, cache hits,
guardrail actions and cost per 1,000 requests per variant.
"""


class _HttpMetrics:
    """Counts and times every request by route template (pure ASGI: no extra tasks)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.http_latency.labels(route).observe(time.perf_counter() - started)


async def _validation_error(request: Request, exc: Any) -> JSONResponse:
    """422 with one readable line per field ('question: String should have at most ...')."""
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":  # its loc is a character offset, not a field
            problems.append(f"body: not valid JSON ({error['msg']})")
            continue
        where = ".".join(str(p) for p in error["loc"] if p not in ("body", "query"))
        problems.append(f"{where or 'body'}: {error['msg']}")
    return JSONResponse({"detail": "; ".join(problems), "errors": jsonable(exc.errors())}, 422)


def jsonable(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]


def create_app(settings: Settings | None = None, knowledge: Knowledge | None = None) -> FastAPI:
    """The service; builds its parts on start-up (see the module docstring)."""
    settings = settings or load_settings()
    running = Running()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def build() -> None:
            try:
                await asyncio.to_thread(build_services, settings, running, knowledge, metrics)
                log.info("ready: index %s", running.services.knowledge.version)  # type: ignore[union-attr]
            except Exception as exc:
                log.exception("start-up failed; stopping what was started")
                running.close()
                running.failure = f"{type(exc).__name__}: {exc}"

        task = asyncio.create_task(build())
        app.state.build_task = task
        try:
            yield
        finally:
            if not task.done():
                await asyncio.shield(task)
            await running.aclose()

    app = FastAPI(
        title="rag_service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN: off, since nothing may leave the
        # machine; the schema itself is at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.running = running
    app.state.settings = settings
    app.include_router(routes.build_router(lambda: running.services, lambda: running.failure))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(_HttpMetrics, metrics=metrics)
    return app
