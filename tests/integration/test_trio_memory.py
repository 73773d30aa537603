"""The trio driver with the protocol core over in-memory streams, on trio's MockClock: timeouts
are checked to the virtual second, without sockets or sleeping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app
from tests.conftest import echo_app, hello_app


def run(test: Callable[[trio.testing.MockClock], Awaitable[None]]) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(test, clock, clock=clock)


async def read_response(stream: trio.abc.Stream, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    return data


async def start(nursery: trio.Nursery, app: Any, **settings: Any) -> trio.abc.Stream:
    config = Config(**settings)
    client, server = trio.testing.memory_stream_pair()
    connection = TCPServer(wrap_app(app, 1024), config, WorkerContext(config), server)
    nursery.start_soon(connection.run)
    return client


def test_keep_alive_timeout_to_the_virtual_second() -> None:
    async def test(clock: trio.testing.MockClock) -> None:
        async with trio.open_nursery() as nursery:
            client = await start(nursery, hello_app, keep_alive_timeout=75)
            await client.send_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert (await read_response(client, b"Hello, world!")).startswith(b"HTTP/1.1 200")
            answered = trio.current_time()
            assert await client.receive_some(10) == b""  # the server closed the idle connection
            assert trio.current_time() - answered == pytest.approx(75)

    run(test)


def test_slowloris_gets_408_after_request_header_timeout() -> None:
    async def test(clock: trio.testing.MockClock) -> None:
        async with trio.open_nursery() as nursery:
            client = await start(nursery, hello_app, request_header_timeout=10)
            began = trio.current_time()

            async def trickle() -> None:  # trickling bytes never extends the deadline
                for byte in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " * 2:
                    await client.send_all(bytes([byte]))
                    await trio.sleep(0.5)

            with pytest.raises(trio.BrokenResourceError):  # the server hangs up on us
                await trickle()
            data = await read_response(client, b"Request Timeout")
            assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert trio.current_time() - began == pytest.approx(10, abs=0.5)

    run(test)


def test_stalled_body_times_out_and_app_sees_disconnect() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect":
                return

    async def test(clock: trio.testing.MockClock) -> None:
        async with trio.open_nursery() as nursery:
            client = await start(nursery, app, request_body_timeout=7)
            await client.send_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc")
            data = await read_response(client, b"Request Timeout")
            assert data.startswith(b"HTTP/1.1 408")
            assert trio.current_time() == pytest.approx(7)

    run(test)
    assert seen == ["http.request", "http.disconnect"]


def test_disconnect_is_delivered_whenever_it_arrives() -> None:
    """The client closing at any point after its request reaches a waiting app (this caught
    a lost wake-up between the app's empty receive and its waiting)."""
    delivered = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal delivered
        while (await receive())["type"] != "http.disconnect":
            pass
        delivered += 1

    async def test(clock: trio.testing.MockClock) -> None:
        for checkpoints in range(12):
            async with trio.open_nursery() as nursery:
                client = await start(nursery, app)
                await client.send_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                for _ in range(checkpoints):
                    await trio.lowlevel.checkpoint()
                await client.aclose()

    run(test)
    assert delivered == 12


def test_pipelined_requests_over_memory_stream() -> None:
    async def test(clock: trio.testing.MockClock) -> None:
        async with trio.open_nursery() as nursery:
            client = await start(nursery, echo_app)
            await client.send_all(
                b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n1"
                b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nConnection: close\r\n\r\n2"
            )
            data = await read_response(client, b"\r\n\r\n2")
            assert data.count(b"HTTP/1.1 200 OK") == 2
            assert data.index(b"x-path: /a") < data.index(b"x-path: /b")
            assert await client.receive_some(10) == b""

    run(test)
