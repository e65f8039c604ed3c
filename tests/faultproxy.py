"""A TCP proxy on 127.0.0.1 that injects network faults between `mirror` and a real server.

The proxy runs its own event loop in a thread. Each new connection takes
the current `Fault` (while its ``connections`` budget lasts; afterwards
connections pass through untouched), so a test can say "reset the first two
connections mid-upload" or "answer 503 with Retry-After to the first one".
Every loop in here is bounded: the proxy stops when the test leaves the
``with`` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

FaultKind = Literal["none", "latency", "reset", "truncate", "status", "blackhole"]
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """What to do to the next ``connections`` connections."""

    kind: FaultKind = "none"
    connections: int = 1_000_000
    latency_s: float = 0.0
    """``latency``: delay before forwarding each chunk, both ways."""
    after_bytes: int = 0
    """``reset``: abort after this many request bytes; ``truncate``: close after this many
    response bytes."""
    status: int = 503
    retry_after: str | None = None


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``upstream_port``, with faults."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections_seen = 0
        self._fault = Fault()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def set_fault(self, fault: Fault) -> None:
        """Apply ``fault`` to the following connections."""
        with self._lock:
            self._fault = fault

    def _take_fault(self) -> Fault:
        """The fault for a new connection.

        ``reset`` and ``truncate`` spend their budget only when they fire (a
        connection that never carries ``after_bytes`` does not count), the
        others when the connection opens.
        """
        with self._lock:
            self.connections_seen += 1
            fault = self._fault
            if fault.kind == "none" or fault.connections <= 0:
                return Fault()
            if fault.kind not in ("reset", "truncate"):
                self._fault = replace(fault, connections=fault.connections - 1)
            return fault

    def _spend(self, fault: Fault) -> bool:
        """Use one firing of a ``reset``/``truncate`` fault; False once the budget is gone."""
        with self._lock:
            if self._fault.kind != fault.kind or self._fault.connections <= 0:
                return False
            self._fault = replace(self._fault, connections=self._fault.connections - 1)
            return True

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        )
        self._server = future.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Close every connection and the listener, then end the thread."""

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        fault = self._take_fault()
        try:
            if fault.kind == "blackhole":
                await asyncio.sleep(3600)  # hold the connection, answer nothing
            elif fault.kind == "status":
                await self._answer_status(client_r, client_w, fault)
            else:
                await self._forward(client_r, client_w, fault)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            client_w.transport.abort() if fault.kind == "reset" else client_w.close()
            self._tasks.discard(task)

    @staticmethod
    async def _answer_status(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: Fault
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        headers = f"HTTP/1.1 {fault.status} Injected\r\nContent-Length: 0\r\nConnection: close\r\n"
        if fault.retry_after is not None:
            headers += f"Retry-After: {fault.retry_after}\r\n"
        writer.write(headers.encode("ascii") + b"\r\n")
        await writer.drain()

    async def _forward(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, fault: Fault
    ) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
        ) -> None:
            sent = 0
            while chunk := await reader.read(64 * 1024):
                if fault.kind == "latency":
                    await asyncio.sleep(fault.latency_s)
                over = sent + len(chunk) > fault.after_bytes
                if fault.kind == "reset" and upstream and over and self._spend(fault):
                    writer.write(chunk[: max(fault.after_bytes - sent, 0)])
                    raise ConnectionResetError("injected reset")
                if fault.kind == "truncate" and not upstream and over and self._spend(fault):
                    writer.write(chunk[: max(fault.after_bytes - sent, 0)])
                    await writer.drain()
                    raise ConnectionResetError("injected truncation")
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
            writer.write_eof() if writer.can_write_eof() else None

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(pump(client_r, server_w, upstream=True))
                group.create_task(pump(server_r, client_w, upstream=False))
        except* (ConnectionError, OSError):
            pass
        finally:
            server_w.transport.abort() if fault.kind == "reset" else server_w.close()


@contextlib.contextmanager
def fault_proxy(upstream_port: int) -> Iterator[FaultProxy]:
    """A running `FaultProxy` in front of 127.0.0.1:``upstream_port``."""
    proxy = FaultProxy(upstream_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
