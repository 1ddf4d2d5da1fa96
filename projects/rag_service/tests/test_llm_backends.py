"""The in-process backend (how the fp32 variant is served): a synchronous generator driven from
a worker thread, streamed to the event loop, stopped when the stream is closed."""

from __future__ import annotations

import asyncio

import pytest

from rag_service.service.llm_client import InProcessBackend, LlmError

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Count from one to twenty in words."}]


@pytest.fixture(scope="module")
def backend():
    from rag_service.generation.llamacpp import LlamaCppGenerator

    generator = LlamaCppGenerator(threads=1)
    yield InProcessBackend(generator)
    generator.close()


def test_pieces_stream_in_order_and_match_the_generator_run_directly(backend):
    async def collect():
        return [piece async for piece in backend.stream(MESSAGES, 16)]

    pieces = asyncio.run(collect())
    direct = list(backend.generator.stream(MESSAGES, 16))
    assert pieces and "".join(pieces) == "".join(direct)


def test_closing_the_stream_stops_the_worker_thread(backend):
    async def first_piece_then_close():
        stream = backend.stream(MESSAGES, 200)
        piece = await stream.__anext__()
        await stream.aclose()
        return piece

    async def whole():
        return [piece async for piece in backend.stream(MESSAGES, 200)]

    assert len(asyncio.run(whole())) == backend.last_pieces > 20
    assert asyncio.run(first_piece_then_close())
    assert backend.last_pieces <= 10  # the worker saw the stop flag within a few pieces


def test_a_generator_error_becomes_an_llm_error(backend):
    async def run():
        return [piece async for piece in backend.stream(MESSAGES, 0)]

    with pytest.raises(LlmError, match="max_tokens"):
        asyncio.run(run())
