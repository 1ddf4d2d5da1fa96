"""Building and stopping everything the service runs on, in one place.

`build_services` starts the model server child, loads the tokenizer and the embedding model,
builds the indexes and opens the stores; `Running.close` stops and closes all of it, in reverse,
and is safe to call on a half-built set (a start-up that failed half-way still stops the model
server it started).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rag_service.abtest import Experiment, ExperimentLog
from rag_service.caching.response import ResponseCache
from rag_service.caching.semantic import SemanticCache
from rag_service.service.batcher import MicroBatcher
from rag_service.service.knowledge import Knowledge, documentation_knowledge
from rag_service.service.llm_client import ChatBackend, InProcessBackend, OpenAIChatBackend
from rag_service.service.llm_server import LlamaServer
from rag_service.service.observability import Metrics, RequestLog
from rag_service.service.pipeline import Services
from rag_service.service.settings import Settings

log = logging.getLogger(__name__)


def token_counter() -> Callable[[str], int]:
    """SmolLM2's own tokenizer, read from the GGUF without its weights (vocab_only)."""
    from llama_cpp import Llama

    from rag_service.generation.model_files import gguf_path

    with _quiet_stderr():  # llama.cpp logs a context warning from C even with verbose=False
        vocab = Llama(model_path=str(gguf_path()), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    return count


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for a moment (C code ignores sys.stderr)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def default_encoder(settings: Settings) -> Any:
    """MiniLM fp32 behind the on-disk embedding cache in the data folder."""
    from rag_service.embeddings.cache import CachedEncoder, EmbeddingCache
    from rag_service.embeddings.encoder import make_encoder

    return CachedEncoder(make_encoder("fp32"), EmbeddingCache(settings.data_dir / "embeddings"))


@dataclass
class Running:
    """What was started, so it can be stopped."""

    services: Services | None = None
    server: LlamaServer | None = None
    failure: str | None = None
    """Why the start-up failed, if it did (probes report it)."""
    closers: list[Callable[[], Any]] = field(default_factory=list)
    async_closers: list[Callable[[], Any]] = field(default_factory=list)

    async def aclose(self) -> None:
        for closer in reversed(self.async_closers):
            with contextlib.suppress(Exception):
                await closer()
        self.close()

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - keep closing the rest
                log.warning("while stopping: %s", exc)
        self.closers.clear()


def build_services(
    settings: Settings,
    running: Running,
    knowledge: Knowledge | None = None,
    metrics: Metrics | None = None,
) -> Services:
    """Start and open everything; registers each part's closer in `running` as it goes."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backends: dict[str, ChatBackend] = {}
    needs = {v.generator for v in settings.variants}
    if "q4" in needs:
        if settings.llm_url:
            backend = OpenAIChatBackend(
                settings.llm_url, read_timeout_s=settings.llm_read_timeout_s
            )
        else:
            from rag_service.generation.model_files import gguf_path

            server = LlamaServer(
                gguf_path(),
                settings.data_dir / "llama-server.log",
                threads=settings.llm_threads,
                context_tokens=settings.llm_context_tokens,
                start_timeout_s=settings.llm_start_timeout_s,
            )
            running.server = server
            running.closers.append(server.stop)
            server.start()
            backend = OpenAIChatBackend(
                server=server, model=server.model_path.stem,
                read_timeout_s=settings.llm_read_timeout_s,
            )  # fmt: skip
        running.async_closers.append(backend.aclose)
        backends["q4"] = backend
    if "fp32" in needs:
        from rag_service.generation.hf import TransformersGenerator

        backends["fp32"] = InProcessBackend(TransformersGenerator())
    count_tokens = token_counter()
    if knowledge is None:
        knowledge = documentation_knowledge(default_encoder(settings))
    response_cache = ResponseCache(
        settings.data_dir / "response-cache.sqlite", settings.cache_ttl_s
    )
    running.closers.append(response_cache.close)
    invalidated = response_cache.invalidate(knowledge.version)
    if invalidated:
        log.info("response cache: dropped %d answers from an older index", invalidated)
    experiment_log = ExperimentLog(settings.data_dir / "experiments.sqlite")
    running.closers.append(experiment_log.close)
    request_log = RequestLog(settings.data_dir / "requests.sqlite")
    running.closers.append(request_log.close)
    batcher: MicroBatcher[str, Any] = MicroBatcher(
        knowledge.embed, settings.embed_batch, settings.embed_wait_ms / 1000
    )
    running.async_closers.append(batcher.aclose)
    services = Services(
        settings=settings,
        knowledge=knowledge,
        backends=backends,
        count_tokens=count_tokens,
        response_cache=response_cache,
        semantic={
            v.name: SemanticCache(
                knowledge.dim, settings.semantic_threshold, settings.semantic_cache_entries
            )
            for v in settings.variants
        },
        experiment=Experiment(settings.experiment, tuple(v.name for v in settings.variants)),
        experiment_log=experiment_log,
        request_log=request_log,
        metrics=metrics or Metrics(),
        batcher=batcher,
    )
    running.services = services
    return services
