"""The data plane's forwarder with real TCP peers on loopback: the endpoint is chosen per
connection, a switch takes effect on the next connection, and open connections are drained."""

from __future__ import annotations

import asyncio

import pytest

from harness.dataplane.forwarder import Endpoint, Forwarder


async def tagged_server(tag: bytes) -> tuple[asyncio.Server, Endpoint]:
    """A line server that answers every line with ``tag`` and keeps the connection open."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            writer.write(tag + b"\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[:2]


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"VERSION\n")
    await writer.drain()
    return await asyncio.wait_for(reader.readline(), 5)


def test_switch_applies_to_new_connections_while_open_ones_finish_where_they_started() -> None:
    async def scenario() -> None:
        blue, blue_at = await tagged_server(b"blue")
        green, green_at = await tagged_server(b"green")
        current: list[Endpoint] = [blue_at]
        forwarder = Forwarder("service-b", lambda: current[0])
        port = await forwarder.start()

        old = await asyncio.open_connection("127.0.0.1", port)
        assert await ask(*old) == b"blue\n"
        current[0] = green_at  # the Service's selector switched
        new = await asyncio.open_connection("127.0.0.1", port)
        assert await ask(*new) == b"green\n"
        assert await ask(*old) == b"blue\n"  # not cut: still on the endpoint it started with
        assert forwarder.counters.by_endpoint == {blue_at: 1, green_at: 1}
        for _, writer in (old, new):
            writer.close()
        await forwarder.close(drain=1)
        for server in (blue, green):
            server.close()

    asyncio.run(scenario())


def test_no_endpoint_or_a_dead_one_closes_the_connection_and_is_counted() -> None:
    async def scenario() -> None:
        forwarder = Forwarder("service-c", lambda: None)
        port = await forwarder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        writer.close()
        await forwarder.close()

        dead = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        dead_at = dead.sockets[0].getsockname()[:2]
        dead.close()
        await dead.wait_closed()
        forwarder = Forwarder("service-c", lambda: dead_at)
        port = await forwarder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await forwarder.close()
        assert (forwarder.counters.refused, forwarder.counters.failed) == (0, 1)

    asyncio.run(scenario())


def test_close_drains_an_open_connection_then_cuts_it_after_the_grace() -> None:
    async def scenario() -> None:
        blue, blue_at = await tagged_server(b"blue")
        forwarder = Forwarder("service-b", lambda: blue_at)
        port = await forwarder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await ask(reader, writer) == b"blue\n"
        closing = asyncio.create_task(forwarder.close(drain=0.3))
        while forwarder.listening:  # let close() stop the listener first
            await asyncio.sleep(0)
        assert await ask(reader, writer) == b"blue\n"  # still served while draining
        await closing
        assert forwarder.open_connections == 0
        assert await asyncio.wait_for(reader.read(), 5) == b""  # cut after the grace
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)  # no longer listening
        blue.close()

    asyncio.run(scenario())


def test_a_line_the_endpoint_writes_on_accept_reaches_a_client_that_sends_nothing() -> None:
    """Service C writes its version line as soon as it accepts: `nc service-c 3000` through the
    data plane must show it without sending a byte."""

    async def scenario() -> None:
        async def greet(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"c 1.0.0\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(greet, "127.0.0.1", 0)
        forwarder = Forwarder("service-c", lambda: server.sockets[0].getsockname()[:2])
        port = await forwarder.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.readline(), 5) == b"c 1.0.0\n"
        writer.close()
        await forwarder.close()
        server.close()

    asyncio.run(scenario())
