"""A loopback TCP listener that forwards each connection to the endpoint chosen when it opens.

This is the local data plane's stand-in for kube-proxy and the sidecar: the choice is made per
connection by a ``pick`` callable (which follows the Service's selector and the VirtualService
routing), so a selector switch takes effect on the next connection while connections already open
finish on the endpoint they started with (drained, not cut). HTTP and the demo's TCP protocol are
both forwarded as bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("bgh.dataplane")

Endpoint = tuple[str, int]


@dataclass
class Counters:
    """What a forwarder has done, for status lines and tests."""

    accepted: int = 0
    refused: int = 0  # no endpoint to send the connection to
    failed: int = 0  # the chosen endpoint did not accept
    by_endpoint: dict[Endpoint, int] = field(default_factory=dict)


class Forwarder:
    """Forward connections accepted on ``host:port`` to ``pick()``'s endpoint at accept time."""

    def __init__(
        self,
        name: str,
        pick: Callable[[], Endpoint | None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.name = name
        self.pick = pick
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.counters = Counters()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen; returns the bound port (useful with ``port=0``)."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def close(self, *, drain: float = 10.0) -> None:
        """Stop accepting, give open connections ``drain`` seconds to finish, then cut them."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._open:
            _, pending = await asyncio.wait(self._open, timeout=drain)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio runs each accepted connection in its own task; track it so close() can drain.
        task = asyncio.current_task()
        if task is not None:
            self._open.add(task)
        try:
            await self._forward(reader, writer)
        finally:
            if task is not None:
                self._open.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = self.pick()
        if endpoint is None:
            self.counters.refused += 1
            log.info("%s: no endpoint; closing the connection", self.name)
            await _close(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*endpoint), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            self.counters.failed += 1
            log.info("%s: endpoint %s:%d did not accept: %s", self.name, *endpoint, exc)
            await _close(writer)
            return
        self.counters.accepted += 1
        self.counters.by_endpoint[endpoint] = self.counters.by_endpoint.get(endpoint, 0) + 1
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            await _close(upstream_writer)
            await _close(writer)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close, so request/response protocols finish cleanly."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()  # one side is gone: end the other direction too


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
