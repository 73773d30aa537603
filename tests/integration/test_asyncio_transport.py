"""The asyncio driver with the protocol core over a fake transport: no sockets."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import EAGER_PATIENCE, EAGER_PROBE_EVERY, WorkerContext
from hypercorn.config import Config
from hypercorn.utils import wrap_app
from tests.conftest import echo_app


class FakeTransport(asyncio.Transport):
    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1234), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_request_response_and_backpressure_on_a_fake_transport() -> None:
    async def main() -> None:
        config = Config(max_app_queue_size=2)
        protocol = TCPServer(wrap_app(echo_app, 1024), config, WorkerContext(config))
        transport = FakeTransport(protocol)
        protocol.connection_made(transport)
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        protocol.data_received(b"3\r\nabc\r\n")
        assert transport.reading
        protocol.data_received(b"3\r\ndef\r\n")  # the app has not read yet: reading pauses
        assert not transport.reading
        await settle()  # the app drains the queue; reading resumes
        assert transport.reading
        protocol.data_received(b"0\r\n\r\n")
        await settle()
        assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
        assert transport.written.endswith(b"abcdef")
        assert b"x-client-port: 1234" in transport.written
        protocol.pause_writing()
        protocol.resume_writing()
        transport.close()
        await settle()

    asyncio.run(main())


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager task start is Python 3.12+")
def test_an_application_that_does_not_wait_answers_within_data_received() -> None:
    """On Python 3.12 the application starts eagerly: a handler that never waits has sent
    its whole response before data_received returns, with no task left behind."""

    async def main() -> None:
        config = Config()
        context = WorkerContext(config)
        protocol = TCPServer(wrap_app(echo_app, 1024), config, context)
        transport = FakeTransport(protocol)
        protocol.connection_made(transport)
        protocol.data_received(b"GET /now HTTP/1.1\r\nHost: a\r\n\r\n")
        assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
        assert not context.tasks and context.in_flight == 0
        transport.close()
        await settle()

    asyncio.run(main())


def test_a_paused_transport_holds_an_application_that_sends_without_waiting() -> None:
    """An application that sends chunk after chunk without a real wait (on Python 3.12 it
    runs inside data_received, started eagerly) has its output written as it goes, so the
    transport's pause_writing stops it: memory stays bounded by the transport's buffer,
    not by what the application would send."""
    chunk = b"x" * 65536

    async def streamer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(1000):  # 64 MiB if nothing held it
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    class PausingTransport(FakeTransport):
        paused = False

        def write(self, data: Any) -> None:
            super().write(data)
            if len(self.written) >= 4 * len(chunk) and not self.paused:
                self.paused = True
                self.protocol.pause_writing()

    async def main() -> None:
        config = Config()
        protocol = TCPServer(wrap_app(streamer, 1024), config, WorkerContext(config))
        transport = PausingTransport(protocol)
        protocol.connection_made(transport)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        await settle()
        held = len(transport.written)
        assert held < 6 * len(chunk)  # the application waits in send()
        await settle()
        assert len(transport.written) == held
        transport.close()
        await settle()

    asyncio.run(main())


def test_eager_starts_follow_what_the_application_does() -> None:
    """Eager while eager starts finish; lazy after EAGER_PATIENCE in a row did not (an app
    that hands its work to a thread), with a probe every EAGER_PROBE_EVERY-th request that
    switches back as soon as one finishes."""
    context = WorkerContext(Config(), observe=False)
    for _ in range(EAGER_PATIENCE - 1):
        assert context.eager_due()
        context.eager_finished(False)
    assert context.eager_due()
    context.eager_finished(True)  # one that finishes restores the patience
    for _ in range(EAGER_PATIENCE):
        assert context.eager_due()
        context.eager_finished(False)
    decisions = [context.eager_due() for _ in range(EAGER_PROBE_EVERY * 3)]
    assert decisions.count(True) == 3 and decisions[EAGER_PROBE_EVERY - 1]
    context.eager_finished(True)  # a probe that finished
    assert all(context.eager_due() for _ in range(EAGER_PATIENCE))
