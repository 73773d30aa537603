"""The asyncio driver with the protocol core over a fake transport: no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
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
