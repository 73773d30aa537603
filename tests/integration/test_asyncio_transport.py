"""The asyncio driver with the protocol core over a fake transport: no sockets."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from hypercorn.asyncio.tcp_server import GATHER_LIMIT, TCPServer
from hypercorn.asyncio.worker_context import (
    EAGER,
    EAGER_PATIENCE,
    EAGER_PROBE_EVERY,
    REFUSED,
    WorkerContext,
)
from hypercorn.config import Config
from hypercorn.protocol.ws_stream import FRAMES_PER_TURN
from hypercorn.utils import wrap_app
from tests.conftest import echo_app, hello_app


class FakeTransport(asyncio.Transport):
    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.written = bytearray()
        self.writes = 0
        self.closed = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1234), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def write(self, data: Any) -> None:
        self.written += data
        self.writes += 1

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


def streamer(chunk: bytes, count: int) -> Any:
    """An application that sends ``count`` chunks without a real wait between them."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(count):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


class PausingTransport(FakeTransport):
    """Calls the protocol's pause_writing once ``pause_at`` bytes have been written."""

    def __init__(self, protocol: asyncio.Protocol, pause_at: int) -> None:
        super().__init__(protocol)
        self.pause_at = pause_at
        self.paused = False

    def write(self, data: Any) -> None:
        super().write(data)
        if len(self.written) >= self.pause_at and not self.paused:
            self.paused = True
            self.protocol.pause_writing()


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
    app = streamer(chunk, 1000)  # 64 MiB if nothing held it

    async def main() -> None:
        config = Config()
        protocol = TCPServer(wrap_app(app, 1024), config, WorkerContext(config))
        transport = PausingTransport(protocol, pause_at=4 * len(chunk))
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

    def eager_due() -> bool:
        return context.start_call() == EAGER

    for _ in range(EAGER_PATIENCE - 1):
        assert eager_due()
        context.eager_start_ended(False)
    assert eager_due()
    context.eager_start_ended(True)  # one that finishes restores the patience
    for _ in range(EAGER_PATIENCE):
        assert eager_due()
        context.eager_start_ended(False)
    decisions = [eager_due() for _ in range(EAGER_PROBE_EVERY * 3)]
    assert decisions.count(True) == 3 and decisions[EAGER_PROBE_EVERY - 1]
    context.eager_start_ended(True)  # a probe that finished
    assert all(eager_due() for _ in range(EAGER_PATIENCE))
    # every call counted in is counted out (eager_start_ended(True) or the task's end)
    assert context.in_flight == EAGER_PATIENCE * 3 + EAGER_PROBE_EVERY * 3 - 2


def test_start_call_refuses_over_max_concurrent_requests() -> None:
    context = WorkerContext(Config(max_concurrent_requests=2), observe=False)
    assert context.start_call() == EAGER
    assert context.start_call() == EAGER
    assert context.start_call() == REFUSED
    context.eager_start_ended(True)
    assert context.start_call() == EAGER
    assert context.in_flight == 2


def h2_client(window: int = 65535) -> h2.connection.H2Connection:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    if window > 65535:
        client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        client.increment_flow_control_window(window - 65535)
    return client


def h2_get(client: h2.connection.H2Connection) -> int:
    stream_id = client.get_next_available_stream_id()
    headers = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a")]
    client.send_headers(stream_id, headers, end_stream=True)
    return stream_id


async def open_h2() -> tuple[TCPServer, FakeTransport, h2.connection.H2Connection]:
    """A hello-world server connection whose h2 client has exchanged SETTINGS (and the
    ACK) with it; nothing written counted yet."""
    config = Config()
    protocol = TCPServer(wrap_app(hello_app, 1024), config, WorkerContext(config))
    transport = FakeTransport(protocol)
    protocol.connection_made(transport)
    client = h2_client()
    protocol.data_received(client.data_to_send())
    await settle()
    client.receive_data(bytes(transport.written))  # the server's SETTINGS
    protocol.data_received(client.data_to_send())  # (its SETTINGS ACK)
    await settle()
    transport.written.clear()
    transport.writes = 0
    return protocol, transport, client


def test_http2_responses_to_one_read_leave_in_one_write() -> None:
    """Ten requests in one read are answered in one write, not ten: a multiplexed
    connection's output is gathered until the end of the event loop's turn."""

    async def main() -> None:
        protocol, transport, client = await open_h2()
        streams = [h2_get(client) for _ in range(10)]
        protocol.data_received(client.data_to_send())
        await settle()
        events = client.receive_data(bytes(transport.written))
        ended = [e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)]
        assert sorted(ended) == streams
        assert transport.writes == 1
        transport.close()
        await settle()

    asyncio.run(main())


def test_http2_gathered_output_still_meets_back_pressure() -> None:
    """Gathering does not hide the transport from an application that streams without
    waiting: past GATHER_LIMIT the output is written at once, so pause_writing holds it."""
    app = streamer(b"x" * 16384, 4000)  # 64 MiB if nothing held it

    async def main() -> None:
        config = Config()
        protocol = TCPServer(wrap_app(app, 1024), config, WorkerContext(config))
        transport = PausingTransport(protocol, pause_at=4 * GATHER_LIMIT)
        protocol.connection_made(transport)
        client = h2_client(window=2**31 - 1)  # flow control would not stop it
        h2_get(client)
        protocol.data_received(client.data_to_send())
        await settle()
        held = len(transport.written)
        assert 4 * GATHER_LIMIT <= held < 6 * GATHER_LIMIT  # the application waits in send()
        await settle()
        assert len(transport.written) == held
        transport.close()
        await settle()

    asyncio.run(main())


def test_http2_a_read_of_many_frames_yields_to_other_connections() -> None:
    """A read holding thousands of small frames is processed FRAMES_PER_TURN frames per
    turn of the event loop, reading paused meanwhile; the rest waits while the transport's
    writes are paused (a client that does not read its answers is not read either)."""

    async def main() -> None:
        protocol, transport, client = await open_h2()

        def acks() -> int:
            events = client.receive_data(bytes(transport.written))
            transport.written.clear()
            return len([e for e in events if isinstance(e, h2.events.PingAckReceived)])

        pings = 8 * FRAMES_PER_TURN
        for number in range(pings):
            client.ping(number.to_bytes(8, "big"))
        protocol.data_received(client.data_to_send())
        assert not transport.reading
        await asyncio.sleep(0)  # one turn: the gathered answers are written
        answered = acks()
        assert answered == FRAMES_PER_TURN
        await asyncio.sleep(0)
        answered += acks()
        assert answered == 2 * FRAMES_PER_TURN  # one turn's worth more
        protocol.pause_writing()
        await settle()
        answered += acks()  # what was processed before the pause is still written
        assert answered <= 3 * FRAMES_PER_TURN and not transport.reading
        await settle()
        assert acks() == 0
        protocol.resume_writing()
        await settle()
        answered += acks()
        assert answered == pings and transport.reading
        transport.close()
        await settle()

    asyncio.run(main())
