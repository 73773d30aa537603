"""A small HTTP/3 client for tests, on aioquic's client protocol: requests with streamed
bodies, trailers, and RFC 9220 WebSockets (extended CONNECT carrying wsproto frames)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, PushPromiseReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset
from wsproto.connection import Connection, ConnectionType
from wsproto.events import Event as WSEvent

Headers = list[tuple[bytes, bytes]]


@dataclass
class H3Response:
    status: int = 0
    headers: Headers = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: Headers = field(default_factory=list)
    informational: list[tuple[int, Headers]] = field(default_factory=list)
    reset: bool = False

    def header(self, name: bytes) -> Optional[bytes]:
        return next((value for key, value in self.headers if key == name), None)


class _Stream:
    def __init__(self) -> None:
        self.response = H3Response()
        self.ended = asyncio.Event()
        self.headers_seen = asyncio.Event()
        self.data = asyncio.Queue[bytes]()


class H3ClientProtocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.streams: dict[int, _Stream] = {}
        self.terminated: Optional[ConnectionTerminated] = None
        self.push_promises: dict[int, Headers] = {}  # push ID -> the promised request
        self.pushes: dict[int, _Stream] = {}  # push ID -> the pushed response

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
            for stream in self.streams.values():
                stream.ended.set()
        if isinstance(event, StreamReset) and event.stream_id in self.streams:
            stream = self.streams[event.stream_id]
            stream.response.reset = True
            stream.ended.set()
            stream.data.put_nowait(b"")
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, PushPromiseReceived):
            self.push_promises[event.push_id] = list(event.headers)
            self.pushes.setdefault(event.push_id, _Stream())
            return
        push_id = getattr(event, "push_id", None)
        if push_id is not None:
            stream = self.pushes.setdefault(push_id, _Stream())
        else:
            stream = self.streams.get(getattr(event, "stream_id", -1))
        if stream is None:
            return
        response = stream.response
        if isinstance(event, HeadersReceived):
            status = dict(event.headers).get(b":status")
            if status is not None and not stream.headers_seen.is_set():
                code = int(status)
                headers = [(k, v) for k, v in event.headers if not k.startswith(b":")]
                if code < 200:
                    response.informational.append((code, headers))
                else:
                    response.status = code
                    response.headers = headers
                    stream.headers_seen.set()
            else:
                response.trailers = list(event.headers)
        elif isinstance(event, DataReceived):
            response.body += event.data
            if event.data:
                stream.data.put_nowait(event.data)
        if getattr(event, "stream_ended", False):
            stream.ended.set()
            stream.data.put_nowait(b"")

    # ---------------------------------------------------------------- requests
    def start_request(
        self, method: str, path: str, headers: Headers = (), end: bool = True, **pseudo: str
    ) -> int:
        stream_id = self._quic.get_next_available_stream_id()
        self.streams[stream_id] = _Stream()
        request_headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
        ]
        request_headers += [(f":{k}".encode(), v.encode()) for k, v in pseudo.items()]
        self.h3.send_headers(stream_id, request_headers + list(headers), end_stream=end)
        self.transmit()
        return stream_id

    def send_body(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self.h3.send_data(stream_id, data, end_stream=end)
        self.transmit()

    async def request(
        self,
        method: str,
        path: str,
        headers: Headers = (),
        body: Optional[bytes] = None,
        timeout: float = 30,
    ) -> H3Response:
        stream_id = self.start_request(method, path, headers, end=body is None)
        if body is not None:
            self.send_body(stream_id, body, end=True)
        await asyncio.wait_for(self.streams[stream_id].ended.wait(), timeout)
        return self.streams[stream_id].response

    async def get(self, path: str, **kwargs: Any) -> H3Response:
        return await self.request("GET", path, **kwargs)

    # ---------------------------------------------------------------- WebSockets (RFC 9220)
    @asynccontextmanager
    async def websocket(self, path: str) -> AsyncIterator[_WebSocket]:
        stream_id = self.start_request(
            "CONNECT", path, [(b"sec-websocket-version", b"13")], end=False, protocol="websocket"
        )
        stream = self.streams[stream_id]
        await asyncio.wait_for(stream.headers_seen.wait(), 10)
        yield _WebSocket(self, stream_id, stream)


class _WebSocket:
    def __init__(self, client: H3ClientProtocol, stream_id: int, stream: _Stream) -> None:
        self.client = client
        self.stream_id = stream_id
        self.stream = stream
        self.ws = Connection(ConnectionType.CLIENT)
        self.status = stream.response.status

    def send(self, event: WSEvent) -> None:
        self.client.send_body(self.stream_id, self.ws.send(event))

    async def receive(self, timeout: float = 10) -> WSEvent:
        while True:
            events = list(self.ws.events())
            if events:
                # put back the rest: tests read one event at a time
                first, rest = events[0], events[1:]
                for event in rest:
                    self.ws._events.append(event)
                return first
            data = await asyncio.wait_for(self.stream.data.get(), timeout)
            self.ws.receive_data(data or None)


def client_configuration(ca_file: str) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    configuration.load_verify_locations(ca_file)
    configuration.verify_mode = ssl.CERT_REQUIRED
    configuration.server_name = "localhost"
    return configuration


@asynccontextmanager
async def h3_connect(port: int, ca_file: str, host: str = "127.0.0.1") -> AsyncIterator[Any]:
    async with connect(
        host,
        port,
        configuration=client_configuration(ca_file),
        create_protocol=H3ClientProtocol,
        wait_connected=True,
    ) as client:
        yield client
