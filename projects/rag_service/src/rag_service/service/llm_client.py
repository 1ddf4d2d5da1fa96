"""Chat backends the service streams answers from, all behind one async interface.

- `OpenAIChatBackend`: any server with the OpenAI `/v1/chat/completions` streaming API: the
  supervised llama.cpp child (`llm_server.LlamaServer`), or vLLM/SGLang/TensorRT-LLM at
  `RAG_LLM_URL`. Closing the stream closes the HTTP response, and the server stops decoding.
- `InProcessBackend`: a `generation.Generator` (the transformers fp32 baseline) run in a worker
  thread, its pieces handed to the event loop through a queue; closing the stream tells the
  generator to stop at the next token.

Failures become `LlmError` with a message a person can act on; the routes turn it into a 503
(or an `error` event mid-stream) and the service stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import httpx

from rag_service.generation.base import Generator, Message
from rag_service.service.llm_server import LlamaServer, LlmUnavailable


class LlmError(RuntimeError):
    """The answer could not be generated; the message says why (shown to the client)."""


class ChatBackend(Protocol):
    name: str

    def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0
    ) -> AsyncIterator[str]: ...

    def is_ready(self) -> bool: ...


def _parse_event(line: str) -> str | None:
    """The text piece of one `data: {...}` SSE line of a chat completion stream, if any."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        choice = json.loads(payload)["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LlmError(
            f"the language model server sent an unreadable event: {payload[:200]}"
        ) from exc
    piece = (choice.get("delta") or {}).get("content")
    return piece or None


class OpenAIChatBackend:
    """Streams chat completions from an OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        server: LlamaServer | None = None,
        model: str = "default",
        name: str = "llama.cpp Q4_1 (server)",
        read_timeout_s: float = 120.0,
    ) -> None:
        if (base_url is None) == (server is None):
            raise ValueError("give exactly one of base_url and server")
        self._base_url = base_url
        self.server = server
        self.model = model
        self.name = name
        self._timeout = httpx.Timeout(connect=5.0, read=read_timeout_s, write=10.0, pool=30.0)
        self._client: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        return self.server.base_url if self.server is not None else str(self._base_url)

    def is_ready(self) -> bool:
        return self.server.is_ready() if self.server is not None else True

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: proxy variables must never route loopback model calls elsewhere
            self._client = httpx.AsyncClient(timeout=self._timeout, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _ready(self) -> None:
        if self.server is not None:
            try:
                await self.server.ensure_ready()
            except LlmUnavailable as exc:
                raise LlmError(str(exc)) from exc

    async def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        await self._ready()
        sent_any = False
        for attempt in (1, 2):
            try:
                async with self._http().stream(
                    "POST", f"{self.base_url}/v1/chat/completions", json=body
                ) as response:
                    if response.status_code != 200:
                        detail = (await response.aread()).decode(errors="replace")[:300]
                        raise LlmError(
                            f"the language model server answered {response.status_code}: {detail}"
                        )
                    async for line in response.aiter_lines():
                        piece = _parse_event(line)
                        if piece:
                            sent_any = True
                            yield piece
                return
            except httpx.ConnectError as exc:
                # the server is restarting (killed, crashed): wait for it once, then retry;
                # nothing was streamed yet, so a retry cannot duplicate text
                if attempt == 2 or sent_any:
                    raise LlmError(f"could not reach the language model server: {exc}") from exc
                if self.server is None:
                    raise LlmError(
                        f"could not reach the language model at {self.base_url}: {exc}"
                    ) from exc
                await asyncio.sleep(0.2)
                await self._ready()
            except (httpx.TransportError, httpx.StreamError) as exc:
                raise LlmError(
                    "the language model server stopped in the middle of the answer "
                    f"({type(exc).__name__}); it is restarted automatically: retry the request"
                ) from exc


_DONE = object()


class InProcessBackend:
    """A synchronous `Generator` driven from a worker thread, one request at a time."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.name = generator.name
        self._lock = asyncio.Lock()
        self.last_pieces = 0
        """Pieces the generator produced for the last request (a closed stream stops it early)."""

    def is_ready(self) -> bool:
        return True

    async def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def work() -> None:
            self.last_pieces = 0
            pieces = self.generator.stream(messages, max_tokens, temperature)
            try:
                for piece in pieces:
                    self.last_pieces += 1
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except Exception as exc:  # noqa: BLE001 - handed to the request, not lost
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                with contextlib.suppress(Exception):
                    pieces.close()  # type: ignore[attr-defined]
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        async with self._lock:  # the model is not reentrant
            worker = asyncio.ensure_future(asyncio.to_thread(work))
            try:
                while True:
                    item = await queue.get()
                    if item is _DONE:
                        break
                    if isinstance(item, Exception):
                        raise LlmError(f"{self.name} failed: {item}") from item
                    yield item
            finally:
                stop.set()
                await asyncio.shield(worker)
