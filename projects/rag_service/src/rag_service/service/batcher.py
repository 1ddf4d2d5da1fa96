"""Micro-batching: concurrent requests' query embeddings run as one model call.

One MiniLM forward pass over 8 short questions costs little more than over one (the matrix
kernels are under-used at batch 1), so under load the service waits up to `max_wait_s` for
batch mates, up to `max_batch` of them, and embeds them together in a worker thread. The
queue itself is the load signal: what arrives while a batch runs forms the next batch, and a
lone request (nothing queued behind it) goes at once, so it pays no added latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """Collects `submit`ted items into batches for `function(items) -> results` (same order)."""

    def __init__(
        self,
        function: Callable[[Sequence[Item]], Sequence[Result]],
        max_batch: int = 16,
        max_wait_s: float = 0.002,
    ) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(
                f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}"
            )
        self.function = function
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.items = 0

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0

    async def submit(self, item: Item) -> Result:
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(self._queue))
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _run(self, queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            # take what queued up while the last batch ran (that is the load), never waiting
            # when alone; under load, wait up to max_wait_s for more batch mates
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                timeout = deadline - loop.time()
                if len(batch) == 1 or timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                except TimeoutError:
                    break
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                continue
            try:
                results: Any = await asyncio.to_thread(self.function, [item for item, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"batch function returned {len(results)} for {len(live)}")
            except Exception as exc:  # noqa: BLE001 - every waiter gets the error
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.items += len(live)
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
