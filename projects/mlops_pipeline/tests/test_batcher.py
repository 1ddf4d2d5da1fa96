"""The micro-batcher on its own: batching, one bad flight, deadlines, no crossed answers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mlops_pipeline.serving.batcher import MicroBatcher, ScoringTimeout
from mlops_pipeline.serving.schemas import EXAMPLE_FLIGHT, FlightRequest


def flights(n: int) -> list[FlightRequest]:
    return [FlightRequest.model_validate({**EXAMPLE_FLIGHT, "flight_id": i}) for i in range(n)]


def run_all(batcher: MicroBatcher, requests: list[FlightRequest]) -> list:
    async def fire():
        return await asyncio.gather(*(batcher.submit(f) for f in requests), return_exceptions=True)

    try:
        return asyncio.run(fire())
    finally:
        batcher.close()


def echo(batch, parents):
    return [{"flight_id": f.flight_id, "batch": len(batch)} for f in batch]


def test_concurrent_requests_share_batches_and_get_their_own_answers():
    batcher = MicroBatcher(echo, max_size=8, max_wait_s=0.01)
    results = run_all(batcher, flights(20))
    assert [r["flight_id"] for r in results] == list(range(20))
    assert batcher.flights == 20 and batcher.batches < 20
    assert max(r["batch"] for r in results) == 8


def test_one_bad_flight_fails_alone():
    """A batch that raises is scored flight by flight: only the bad one fails."""

    def picky(batch, parents):
        if any(f.flight_id == 3 for f in batch):
            raise ValueError("flight 3 is broken")
        return echo(batch, parents)

    results = run_all(MicroBatcher(picky, max_size=8, max_wait_s=0.01), flights(6))
    assert isinstance(results[3], ValueError)
    assert [r["flight_id"] for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5]


def test_a_hung_scorer_times_out_and_the_loop_stays_free():
    """A store that hangs gives ScoringTimeout after the deadline; the loop keeps running."""
    release = threading.Event()

    def hung(batch, parents):
        release.wait(5)
        return echo(batch, parents)

    batcher = MicroBatcher(hung, max_size=4, max_wait_s=0.0, timeout_s=0.3)

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        with pytest.raises(ScoringTimeout, match="0.3 s"):
            await batcher.submit(flights(1)[0])
        elapsed = time.monotonic() - started
        task.cancel()
        return elapsed, ticks

    try:
        elapsed, ticks = asyncio.run(scenario())
    finally:
        release.set()
        batcher.close()
    assert 0.25 < elapsed < 2
    assert ticks >= 5  # the event loop ran while the scorer hung


def test_a_broken_scorer_that_loses_rows_fails_every_request_instead_of_hanging():
    batcher = MicroBatcher(lambda batch, parents: [], max_size=4, max_wait_s=0.01, timeout_s=2)
    results = run_all(batcher, flights(3))
    assert all(isinstance(r, RuntimeError) for r in results)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        MicroBatcher(echo, max_size=0)
    with pytest.raises(ValueError):
        MicroBatcher(echo, timeout_s=0)
