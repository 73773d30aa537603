"""A small raw HTTP/2 client over a real socket, for what httpx does not expose (push,
trailers, early hints, resets)."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import h2.config
import h2.connection
import h2.events


class RawH2Client:
    def __init__(
        self,
        port: int,
        tls_context: ssl.SSLContext | None = None,
        settings: dict[int, int] | None = None,
    ) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls_context is not None:
            tls_context.set_alpn_protocols(["h2"])
            sock = tls_context.wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events: list[h2.events.Event] = []

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: bytes = b"/", method: bytes = b"GET", end: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream_id,
            [
                (b":method", method),
                (b":path", path),
                (b":scheme", b"http"),
                (b":authority", b"localhost"),
            ],
            end_stream=end,
        )
        self.flush()
        return stream_id

    def read_until(self, predicate: Any, limit: int = 1000) -> list[h2.events.Event]:
        """Read and collect events until ``predicate(events)`` holds or the peer closes."""
        for _ in range(limit):
            if predicate(self.events):
                break
            data = self.sock.recv(65536)
            if not data:
                break
            self.events += self.conn.receive_data(data)
            self.flush()
        return self.events

    def ended(self, stream_id: int) -> Any:
        return lambda events: any(
            isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
            and e.stream_id == stream_id
            for e in events
        )

    def body(self, stream_id: int) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def close(self) -> None:
        self.sock.close()
