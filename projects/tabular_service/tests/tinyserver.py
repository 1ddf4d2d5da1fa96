"""Test double: an HTTP/1.1 server of known capacity, to test the load generator against.

A real service's capacity depends on the machine; this one's does not: with `service_ms` set it
serves one request at a time and sleeps that long for each, so its capacity is exactly
`1000 / service_ms` requests/s whatever the CPU. Offer more and the queue (and the latency
measured from the schedule) must grow; that is what the generator's tests check. It can also
answer errors (`fail_every`) or never answer (`hang`), and `stop()` drops every open connection,
as a crashing server would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

_OK = b'{"ok":true}'


@dataclass
class TinyServer:
    """Run with `start()` (a thread with its own event loop) and `stop()`; or as a context."""

    service_ms: float = 0.0  # >0: serial service, capacity = 1000 / service_ms requests/s
    fail_every: int = 0  # >0: every n-th request gets a 500
    hang: bool = False  # read requests, never answer
    host: str = "127.0.0.1"
    port: int = 0
    requests: int = 0
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _server: asyncio.Server | None = field(default=None, repr=False)
    _transports: set[asyncio.Transport] = field(default_factory=set, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> TinyServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def main() -> None:
            lock = asyncio.Lock()
            self._server = await self._loop.create_server(
                lambda: _Protocol(self, lock), self.host, self.port
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()

        def target() -> None:
            self._loop.run_until_complete(main())
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=target, name="tinyserver", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("tiny server did not start")
        return self

    def stop(self) -> None:
        """Close the listener and abort every connection (clients see resets, then refusals)."""
        if self._loop is None or self._loop.is_closed():
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for transport in list(self._transports):
                transport.abort()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> TinyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Protocol(asyncio.Protocol):
    def __init__(self, server: TinyServer, lock: asyncio.Lock) -> None:
        self.server, self.lock = server, lock
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server._transports.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.server.requests += 1
            n = self.server.requests
            if self.server.hang:
                continue
            status = 500 if self.server.fail_every and n % self.server.fail_every == 0 else 200
            if self.server.service_ms > 0:
                asyncio.get_running_loop().create_task(self._serve_slowly(status))
            else:
                self._respond(status)

    async def _serve_slowly(self, status: int) -> None:
        async with self.lock:  # one at a time: capacity is 1000 / service_ms per second
            await asyncio.sleep(self.server.service_ms / 1000.0)
        self._respond(status)

    def _respond(self, status: int) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        reason = b"OK" if status == 200 else b"Internal Server Error"
        with contextlib.suppress(RuntimeError):
            self.transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (status, reason, len(_OK), _OK)
            )
