"""The QUIC endpoint and the HTTP/3 adapter, bytes in and bytes out: an aioquic client
connection is wired to a :class:`QuicEndpoint` in memory, with a virtual clock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicProtocolVersion

from hypercorn.config import Config
from hypercorn.protocol.h3 import STREAM_WINDOW
from hypercorn.protocol.quic import QuicEndpoint

CLIENT_ADDR = ("127.0.0.1", 50000)
SERVER_ADDR = ("127.0.0.1", 4433)


@pytest.fixture
def config(tls_files: dict[str, str]) -> Config:
    config = Config()
    config.certfile = tls_files["certfile"]
    config.keyfile = tls_files["keyfile"]
    config.quic_bind = ["127.0.0.1:4433"]
    return config


class Pair:
    """An aioquic client and our endpoint exchanging datagrams through lists."""

    def __init__(self, config: Config, ca: str, max_connections: int | None = 100) -> None:
        self.now = 1000.0
        self.endpoint = QuicEndpoint(
            config, config.create_quic_configuration(), SERVER_ADDR, {}, max_connections
        )
        self.ca = ca
        self.streams: list[Any] = []

    def client(self, port: int = CLIENT_ADDR[1]) -> tuple[QuicConnection, H3Connection, Any]:
        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
        configuration.load_verify_locations(self.ca)
        configuration.server_name = "localhost"
        quic = QuicConnection(configuration=configuration)
        quic.connect(SERVER_ADDR, now=self.now)
        return quic, H3Connection(quic), ("127.0.0.1", port)

    def pump(self, quic: QuicConnection, addr: Any, rounds: int = 20) -> list[Any]:
        """Move datagrams both ways until both sides are quiet; return the client's events."""
        events = []
        for _ in range(rounds):
            moved = False
            for data, _ in quic.datagrams_to_send(now=self.now):
                self.endpoint.receive_datagram(data, addr, self.now)
                moved = True
            self.streams += self.endpoint.pop_new_streams()
            for data, _ in self.endpoint.datagrams_to_send(self.now):
                quic.receive_datagram(data, SERVER_ADDR, now=self.now)
                moved = True
            while (event := quic.next_event()) is not None:
                events.append(event)
            if not moved:  # let the earliest timer (delayed ACKs, loss detection) fire
                timers = [t for t in (quic.get_timer(), self.endpoint.next_deadline(self.now)) if t]
                if not timers or min(timers) > self.now + 1:
                    break
                self.now = max(self.now, min(timers))
                if (quic.get_timer() or self.now + 1) <= self.now:
                    quic.handle_timer(self.now)
                self.endpoint.handle_timer(self.now)
            self.now += 0.001
        return events


def request_headers(
    method: str, path: bytes, authority: bytes = b"localhost"
) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method.encode()),
        (b":scheme", b"https"),
        (b":authority", authority),
        (b":path", path),
    ]


def h3_events(h3: H3Connection, events: list[Any]) -> list[Any]:
    return [h3_event for event in events for h3_event in h3.handle_event(event)]


def test_a_request_is_served_through_the_stream_state_machine(
    config: Config, tls_files: dict[str, str]
) -> None:
    pair = Pair(config, tls_files["ca"])
    quic, h3, addr = pair.client()
    pair.pump(quic, addr)
    assert pair.endpoint.connections == 1
    stream_id = quic.get_next_available_stream_id()
    h3.send_headers(
        stream_id,
        request_headers("GET", b"/a?b=1"),
        end_stream=True,
    )
    pair.pump(quic, addr)
    (stream,) = pair.streams
    assert stream.scope["http_version"] == "3"
    assert (stream.scope["path"], stream.scope["query_string"]) == ("/a", b"b=1")
    assert stream.scope["scheme"] == "https" and stream.scope["client"] == addr
    assert stream.app_receive_nowait() == {"type": "http.request", "body": b"", "more_body": False}
    stream.app_send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
    stream.app_send({"type": "http.response.body", "body": b"done"})
    received = h3_events(h3, pair.pump(quic, addr))
    headers = next(e for e in received if isinstance(e, HeadersReceived)).headers
    assert (b":status", b"201") in headers and (b"x-a", b"1") in headers
    body = b"".join(e.data for e in received if isinstance(e, DataReceived))
    assert body == b"done"
    assert any(getattr(e, "stream_ended", False) for e in received)


def test_split_cookie_reaches_the_application_joined(
    config: Config, tls_files: dict[str, str]
) -> None:
    """RFC 9114 section 4.2.1: the crumbs are joined with "; " before the application."""
    pair = Pair(config, tls_files["ca"])
    quic, h3, addr = pair.client()
    pair.pump(quic, addr)
    cookies = [(b"cookie", b"a=1"), (b"x-a", b"1"), (b"cookie", b"b=2")]
    h3.send_headers(
        quic.get_next_available_stream_id(), request_headers("GET", b"/") + cookies, True
    )
    pair.pump(quic, addr)
    (stream,) = pair.streams
    assert [v for n, v in stream.scope["headers"] if n == b"cookie"] == [b"a=1; b=2"]


def test_malformed_request_is_a_stream_error(config: Config, tls_files: dict[str, str]) -> None:
    """A :method that is not a token (aioquic passes it; it used to end in a
    UnicodeDecodeError): H3_MESSAGE_ERROR on that stream, and the connection goes on."""
    from aioquic.quic.events import StreamReset

    pair = Pair(config, tls_files["ca"])
    quic, h3, addr = pair.client()
    pair.pump(quic, addr)
    bad = quic.get_next_available_stream_id()
    h3.send_headers(bad, request_headers("G\u00e9T", b"/"), end_stream=True)
    events = pair.pump(quic, addr)
    [reset] = [e for e in events if isinstance(e, StreamReset)]
    assert reset.stream_id == bad and reset.error_code == 0x10E  # H3_MESSAGE_ERROR
    assert not pair.streams
    h3.send_headers(quic.get_next_available_stream_id(), request_headers("GET", b"/"), True)
    pair.pump(quic, addr)
    (stream,) = pair.streams
    stream.app_send({"type": "http.response.start", "status": 200, "headers": []})
    stream.app_send({"type": "http.response.body", "body": b"fine"})
    received = h3_events(h3, pair.pump(quic, addr))
    assert b"".join(e.data for e in received if isinstance(e, DataReceived)) == b"fine"


def test_websocket_frames_released_at_once_are_acted_on_a_turn_at_a_time(
    config: Config, tls_files: dict[str, str]
) -> None:
    """One datagram holds fewer than FRAMES_PER_TURN masked frames, but a lost packet makes
    aioquic hold what follows until it comes again, then release it all at once. The
    session takes FRAMES_PER_TURN of them, and the endpoint's deadline is "now" until the
    rest have had their turns (the backends' timer is the QUIC driver's next turn)."""
    from hypercorn.protocol.ws_stream import FRAMES_PER_TURN, WSStream

    from .test_ws_turns import client_frame, pongs

    pair = Pair(config, tls_files["ca"])
    quic, h3, addr = pair.client()
    pair.pump(quic, addr)
    stream_id = quic.get_next_available_stream_id()
    headers = [*request_headers("CONNECT", b"/ws"), (b"sec-websocket-version", b"13")]
    headers.insert(1, (b":protocol", b"websocket"))
    h3.send_headers(stream_id, headers)
    pair.pump(quic, addr)
    (stream,) = pair.streams
    assert isinstance(stream, WSStream)
    assert stream.app_receive_nowait() == {"type": "websocket.connect"}
    stream.app_send({"type": "websocket.accept"})
    h3_events(h3, pair.pump(quic, addr))
    pings = 3 * FRAMES_PER_TURN + 7
    h3.send_data(stream_id, client_frame(0x9) * pings + client_frame(0x1, b"after"), False)
    first, *rest = quic.datagrams_to_send(now=pair.now)
    assert rest, "the burst spans several datagrams"
    for data, _ in rest:  # the first is "lost": the others wait in aioquic's buffer
        pair.endpoint.receive_datagram(data, addr, pair.now)
    pair.endpoint.receive_datagram(first[0], addr, pair.now)  # ... until it comes again

    def answered() -> int:
        """Pongs the client got; its ACKs go back (the server's congestion window)."""
        out = b""
        for _ in range(10):
            datagrams = pair.endpoint.datagrams_to_send(pair.now)
            if not datagrams:
                break
            for data, _ in datagrams:
                quic.receive_datagram(data, SERVER_ADDR, now=pair.now)
            for event in iter(quic.next_event, None):
                data = [e.data for e in h3.handle_event(event) if isinstance(e, DataReceived)]
                out += b"".join(data)
            pair.now += 0.03  # past the client's ACK delay
            quic.handle_timer(pair.now)
            for data, _ in quic.datagrams_to_send(now=pair.now):
                pair.endpoint.receive_datagram(data, addr, pair.now)
        return pongs(out)

    count, turns = answered(), 1
    assert count == FRAMES_PER_TURN
    while stream.backlogged:
        deadline = pair.endpoint.next_deadline(pair.now)
        assert deadline is not None and deadline <= pair.now  # the driver comes back at once
        assert stream.app_receive_nowait() is None  # the message is behind the pings
        pair.endpoint.handle_timer(pair.now)
        count += answered()
        turns += 1
    assert count == pings and turns == 4
    assert stream.app_receive_nowait() == {"type": "websocket.receive", "text": "after"}


def test_unknown_version_gets_version_negotiation(
    config: Config, tls_files: dict[str, str]
) -> None:
    pair = Pair(config, tls_files["ca"])
    # A long-header Initial with version 0x1a2a3a4a (reserved for negotiation tests).
    packet = bytes([0xC0]) + (0x1A2A3A4A).to_bytes(4, "big") + b"\x08" + os.urandom(8)
    packet += b"\x08" + os.urandom(8) + bytes(1200)
    pair.endpoint.receive_datagram(packet, CLIENT_ADDR, pair.now)
    ((datagram, addr),) = pair.endpoint.datagrams_to_send(pair.now)
    assert addr == CLIENT_ADDR
    assert datagram[1:5] == b"\x00\x00\x00\x00"  # version 0: Version Negotiation
    assert int(QuicProtocolVersion.VERSION_1).to_bytes(4, "big") in datagram
    assert pair.endpoint.connections == 0


def test_garbage_short_and_unknown_packets_are_dropped(
    config: Config, tls_files: dict[str, str]
) -> None:
    pair = Pair(config, tls_files["ca"])
    for packet in (b"", b"\x00", os.urandom(50), bytes([0x40]) + os.urandom(30)):
        pair.endpoint.receive_datagram(packet, CLIENT_ADDR, pair.now)
    # A real Initial that is not padded to 1200 bytes (RFC 9000 14.1) starts nothing either.
    quic, _, addr = pair.client()
    ((initial, _),) = quic.datagrams_to_send(now=pair.now)
    pair.endpoint.receive_datagram(initial[:1000], addr, pair.now)
    assert pair.endpoint.connections == 0
    assert pair.endpoint.datagrams_to_send(pair.now) == []


def test_max_connections_drops_new_initials(config: Config, tls_files: dict[str, str]) -> None:
    pair = Pair(config, tls_files["ca"], max_connections=2)
    clients = [pair.client(port) for port in (50001, 50002, 50003)]
    for quic, _, addr in clients:
        pair.pump(quic, addr)
    assert pair.endpoint.connections == 2
    assert pair.endpoint.refused >= 1
    assert clients[2][0]._state.name in ("FIRSTFLIGHT",)  # never answered


def test_receive_window_follows_the_application(config: Config, tls_files: dict[str, str]) -> None:
    pair = Pair(config, tls_files["ca"])
    quic, h3, addr = pair.client()
    pair.pump(quic, addr)
    stream_id = quic.get_next_available_stream_id()
    h3.send_headers(
        stream_id,
        request_headers("POST", b"/"),
    )
    h3.send_data(stream_id, bytes(4 * STREAM_WINDOW), end_stream=True)
    pair.pump(quic, addr, rounds=200)
    (stream,) = pair.streams
    delivered = 0
    while (message := stream.app_receive_nowait()) is not None and message[
        "type"
    ] == "http.request":
        delivered += len(message["body"])
        if not message["more_body"]:
            break
    # Nothing was read until now: the client could only send one window.
    assert STREAM_WINDOW - 1024 <= delivered <= STREAM_WINDOW
    while True:  # read as it arrives: the window moves and the rest comes through
        pair.pump(quic, addr, rounds=50)
        message = stream.app_receive_nowait()
        while message is not None and message["type"] == "http.request":
            delivered += len(message["body"])
            if not message["more_body"]:
                break
            message = stream.app_receive_nowait()
        if message is not None and not message.get("more_body", True):
            break
    assert delivered == 4 * STREAM_WINDOW


def test_shutdown_sends_goaway_then_closes(config: Config, tls_files: dict[str, str]) -> None:
    pair = Pair(config, tls_files["ca"])
    quic, _, addr = pair.client()
    pair.pump(quic, addr)
    pair.endpoint.begin_shutdown(pair.now)
    events = pair.pump(quic, addr)
    assert any(type(e).__name__ == "ConnectionTerminated" for e in events)
    terminated = next(e for e in events if type(e).__name__ == "ConnectionTerminated")
    assert terminated.error_code == 0x100  # H3_NO_ERROR
    # The endpoint forgets the connection once aioquic's closing period has passed.
    pair.now += 5
    pair.endpoint.handle_timer(pair.now)
    assert pair.endpoint.closed


def test_scope_reports_tls13_and_connection_addresses(
    config: Config, tls_files: dict[str, str], tmp_path: Path
) -> None:
    pair = Pair(config, tls_files["ca"])
    quic, h3, addr = pair.client(port=50123)
    pair.pump(quic, addr)
    stream_id = quic.get_next_available_stream_id()
    h3.send_headers(
        stream_id,
        request_headers("GET", b"/", b"example.test"),
        end_stream=True,
    )
    pair.pump(quic, addr)
    (stream,) = pair.streams
    assert stream.scope["extensions"]["tls"]["tls_version"] == 0x0304
    assert stream.scope["server"] == SERVER_ADDR
    assert (b"host", b"example.test") in stream.scope["headers"]


def test_a_forged_initial_leaves_no_state(config: Config, tls_files: dict[str, str]) -> None:
    pair = Pair(config, tls_files["ca"])
    for _ in range(100):
        packet = bytes([0xC0]) + int(QuicProtocolVersion.VERSION_1).to_bytes(4, "big")
        packet += b"\x08" + os.urandom(8) + b"\x08" + os.urandom(8) + os.urandom(1200)
        pair.endpoint.receive_datagram(packet, CLIENT_ADDR, pair.now)
    assert pair.endpoint.connections == 0
    assert pair.endpoint.datagrams_to_send(pair.now) == []


def test_idle_connection_ends_after_keep_alive_timeout(
    config: Config, tls_files: dict[str, str]
) -> None:
    config.keep_alive_timeout = 3
    pair = Pair(config, tls_files["ca"])
    quic, _, addr = pair.client()
    pair.pump(quic, addr)
    assert pair.endpoint.connections == 1
    pair.now += 2
    pair.endpoint.handle_timer(pair.now)
    assert pair.endpoint.connections == 1  # not yet
    pair.now += 10  # the client says nothing: QUIC's idle timeout ends it
    pair.endpoint.handle_timer(pair.now)
    pair.endpoint.handle_timer(pair.now + 1)
    assert pair.endpoint.connections == 0
