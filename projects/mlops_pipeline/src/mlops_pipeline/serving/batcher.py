"""Dynamic micro-batching of single-flight requests, as Triton's or Ray Serve's batchers do.

Scoring one flight costs about the same as scoring thirty: the feature lookup is one Feast call
and scikit-learn's column transformer and gradient-boosting predictor have a fixed cost per call
that dwarfs the per-row work. Concurrent /v1/predict requests are therefore queued and scored
together: the first request of a batch schedules a flush `max_wait_s` later (or right away once
`max_size` are queued). One batch is scored at a time, on one worker thread: while it runs, new
requests queue and form the next batch, so under load batches grow instead of the queue.

The scoring runs off the event loop because the feature lookup is I/O (a PostgreSQL online store
in a cluster): a slow or hung store must not freeze /healthz, and every request has a deadline
(`timeout_s`) after which it gets a 503 instead of waiting forever. A batch that fails is scored
again flight by flight, so one bad row fails only its own request. Each request keeps its own
trace: its context is captured at submit time and the batch's spans are recorded under it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import context as otel_context

from mlops_pipeline.serving.schemas import FlightRequest

ScoreBatch = Callable[[Sequence[FlightRequest], Sequence[Any]], list[dict[str, Any]]]
Pending = tuple[FlightRequest, Any, "asyncio.Future[dict[str, Any]]"]


class ScoringTimeout(Exception):
    """The feature store or the model did not answer within the request's deadline."""


class MicroBatcher:
    """Collects single requests for up to `max_wait_s` (at most `max_size`) and scores them."""

    def __init__(
        self,
        score: ScoreBatch,
        max_size: int = 32,
        max_wait_s: float = 0.001,
        timeout_s: float = 2.0,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        if max_wait_s < 0 or timeout_s <= 0:
            raise ValueError(
                f"need max_wait_s >= 0 and timeout_s > 0, got {max_wait_s}, {timeout_s}"
            )
        self.score = score
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self._pending: list[Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self.batches = 0
        self.flights = 0

    async def submit(self, flight: FlightRequest) -> dict[str, Any]:
        """Queue one flight and wait (at most `timeout_s`) for its prediction body."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending.append((flight, otel_context.get_current(), future))
        if len(self._pending) >= self.max_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._flush)
        return await self._deadline(asyncio.shield(future))

    async def score_now(self, flights: Sequence[FlightRequest]) -> list[dict[str, Any]]:
        """Score a caller's own batch on the same worker (after any batch in progress)."""
        loop = asyncio.get_running_loop()
        parents = [otel_context.get_current()]
        work = loop.run_in_executor(self._executor, self.score, flights, parents)
        return await self._deadline(work)

    async def _deadline(self, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s)
        except TimeoutError:
            raise ScoringTimeout(
                f"no prediction within {self.timeout_s:g} s (feature store or model too slow)"
            ) from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy or not self._pending:
            return  # the batch in progress flushes the queue when it ends
        batch, self._pending = self._pending[: self.max_size], self._pending[self.max_size :]
        self._busy = True
        self.batches += 1
        self.flights += len(batch)
        flights, parents = [f for f, _, _ in batch], [c for _, c, _ in batch]
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self._executor, self._score_batch, flights, parents)
        work.add_done_callback(lambda done: self._resolve(batch, done))

    def _score_batch(self, flights: list[FlightRequest], parents: list[Any]) -> list[Any]:
        """Bodies in order; if the batch fails, each flight alone (an exception per failure)."""
        try:
            return self.score(flights, parents)
        except Exception as error:
            if len(flights) == 1:
                return [error]
        results: list[Any] = []
        for flight, parent in zip(flights, parents, strict=True):
            try:
                results.append(self.score([flight], [parent])[0])
            except Exception as error:
                results.append(error)
        return results

    def _resolve(self, batch: list[Pending], done: asyncio.Future[list[Any]]) -> None:
        self._busy = False
        try:
            results = done.result()
            if len(results) != len(batch):
                raise RuntimeError(f"scored {len(results)} flights for a batch of {len(batch)}")
        except BaseException as error:  # the executor was shut down, or a broken scorer
            results = [error] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():  # the client went away or timed out
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self._pending:
            self._flush()
