"""A WebSocket session over HTTP/1.1 or HTTP/2 acts on at most FRAMES_PER_TURN frames of a
read per turn of the event loop, and parses no further than its application's queue has
room (sans-IO: the driver's later turns are process_backlog calls)."""

from __future__ import annotations

import h2.events
import pytest

from hypercorn.config import Config
from hypercorn.protocol import ConnectionInfo
from hypercorn.protocol.connection import HTTPConnection
from hypercorn.protocol.ws_stream import FRAMES_PER_TURN, WSStream

from .test_h2_core import Pair

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """A masked frame as a client sends it (RFC 6455 5.2), payload under 126 bytes."""
    mask = b"abcd"
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked


def pongs(data: bytes) -> int:
    return data.count(b"\x8a\x00")  # server pongs: unmasked, empty


def session(parser: str, **settings: object) -> tuple[HTTPConnection, WSStream]:
    if parser == "httptools":
        pytest.importorskip("httptools")
    config = Config(http1_parser=parser, **settings)
    conn = HTTPConnection(config, ConnectionInfo(("127.0.0.1", 1), ("127.0.0.1", 80)), 0.0)
    conn.receive_data(UPGRADE, 0.0)
    [stream] = conn.pop_new_streams()
    assert isinstance(stream, WSStream)
    assert stream.app_receive_nowait() == {"type": "websocket.connect"}
    stream.app_send({"type": "websocket.accept"})
    assert conn.data_to_send().startswith(b"HTTP/1.1 101 ")
    return conn, stream


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_a_read_of_many_pings_is_answered_a_turn_at_a_time(parser: str) -> None:
    conn, stream = session(parser)
    pings = 10 * FRAMES_PER_TURN + 7
    conn.receive_data(client_frame(0x9) * pings + client_frame(0x1, b"after"), 1.0)
    answered = pongs(conn.data_to_send())
    assert answered == FRAMES_PER_TURN
    assert conn.backlogged and not conn.wants_read
    while conn.backlogged:
        assert stream.app_receive_nowait() is None  # the message is behind the pings
        conn.process_backlog(1.0)
        answered += pongs(conn.data_to_send())
    assert answered == pings
    assert stream.app_receive_nowait() == {"type": "websocket.receive", "text": "after"}
    assert conn.wants_read


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_a_full_inbox_holds_the_rest_until_the_application_reads(parser: str) -> None:
    """Messages are parsed a turn at a time and no further than the application's queue
    (max_app_queue_size) has room for; what is left waits, unread input, in order."""
    conn, stream = session(parser, max_app_queue_size=4)
    count = 3 * FRAMES_PER_TURN
    conn.receive_data(b"".join(client_frame(0x1, b"%d" % i) for i in range(count)), 1.0)
    received: list[str] = []
    while len(received) < count:
        message = stream.app_receive_nowait()
        if message is None:
            assert conn.backlogged  # never stuck: room again means more is parsed
            conn.process_backlog(1.0)
            continue
        received.append(message["text"])
        assert stream.queued <= 4
    assert received == [str(i) for i in range(count)]
    if conn.backlogged:  # (a turn that ended exactly at the end of the input looks once more)
        conn.process_backlog(1.0)
    assert not conn.backlogged and conn.wants_read


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_what_came_before_the_end_of_input_is_not_lost(parser: str) -> None:
    conn, stream = session(parser)
    conn.receive_data(client_frame(0x9) * (2 * FRAMES_PER_TURN) + client_frame(0x1, b"last"), 1.0)
    assert conn.backlogged
    conn.receive_data(b"", 1.0)  # the client's FIN, behind frames not yet parsed
    assert stream.app_receive_nowait() == {"type": "websocket.receive", "text": "last"}
    disconnect = stream.app_receive_nowait()
    assert disconnect is not None and disconnect["type"] == "websocket.disconnect"
    assert disconnect["code"] == 1006


# ---------------------------------------------------------------- over HTTP/2 (RFC 8441)
def h2_session(**settings: object) -> tuple[Pair, WSStream, int]:
    pair = Pair(**settings)
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(
        stream_id,
        [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":path", b"/"),
            (b":authority", b"a"),
            (b"sec-websocket-version", b"13"),
        ],
    )
    pair.exchange()
    [stream] = pair.server.pop_new_streams()
    assert isinstance(stream, WSStream)
    assert stream.app_receive_nowait() == {"type": "websocket.connect"}
    stream.app_send({"type": "websocket.accept"})
    pair.exchange()
    return pair, stream, stream_id


def received(events: list[h2.events.Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))


def test_h2_a_read_of_many_pings_is_answered_a_turn_at_a_time() -> None:
    """The connection goes on reading (its other streams are not held up); the session's
    unparsed bytes are not acknowledged meanwhile, so flow control holds its client back."""
    pair, stream, stream_id = h2_session()
    pings = 24 * FRAMES_PER_TURN + 7  # 36 KiB: h2 sends WINDOW_UPDATE past half the window
    data = client_frame(0x9) * pings + client_frame(0x1, b"after")
    for start in range(0, len(data), 16000):  # (DATA frames within the default frame size)
        pair.client.send_data(stream_id, data[start : start + 16000])
    answered = pongs(received(pair.exchange()))
    assert answered == FRAMES_PER_TURN
    assert pair.server.backlogged and pair.server.wants_read
    window = pair.client.local_flow_control_window(stream_id)
    assert window == 65535 - len(data)  # nothing acknowledged while unparsed
    turns = 1
    while pair.server.backlogged:
        assert stream.app_receive_nowait() is None  # the message is behind the pings
        pair.server.process_backlog(1.0)
        answered += pongs(received(pair.exchange()))
        turns += 1
    assert answered == pings and turns == 25
    assert stream.app_receive_nowait() == {"type": "websocket.receive", "text": "after"}
    pair.exchange()
    assert pair.client.local_flow_control_window(stream_id) > window  # acknowledged now


def test_h2_taking_a_message_parses_the_next_ones() -> None:
    """With the queue full, parsing waits for the application, and its receive() resumes it:
    a driver that is waiting for input (trio's, on HTTP/2) need not come back for it."""
    pair, stream, stream_id = h2_session(max_app_queue_size=4)
    count = 3 * FRAMES_PER_TURN
    pair.client.send_data(stream_id, b"".join(client_frame(0x1, b"%d" % i) for i in range(count)))
    pair.exchange()
    assert stream.queued == 4 and not pair.server.backlogged  # full: nothing to do but wait
    texts = []
    while (message := stream.app_receive_nowait()) is not None:
        texts.append(message["text"])
        assert stream.queued <= 4
    assert texts == [str(i) for i in range(count)]


# ---------------------------------------------------------------- keep-alive pings
@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_a_pong_behind_a_full_queue_is_not_a_ping_timeout(parser: str) -> None:
    """The server stops reading while the application's queue is full, so the client's
    pong can wait behind its messages; the ping timeout only ends a peer that went silent."""
    conn, stream = session(
        parser, max_app_queue_size=2, websocket_ping_interval=1.0, websocket_ping_timeout=1.0
    )
    conn.handle_timer(1.0)  # the first ping goes out
    assert b"\x89\x09hypercorn" in conn.data_to_send()
    pong = bytes((0x8A, 0x80 | 9)) + b"\x00" * 4 + b"hypercorn"  # (a zero mask)
    messages = b"".join(client_frame(0x1, b"%d" % i) for i in range(5))
    conn.receive_data(messages + pong, 1.5)
    assert stream.queued == 2 and not conn.wants_read  # full: the pong waits, unread
    conn.handle_timer(2.5)  # past the pong deadline
    assert not stream.complete and not conn.closed
    texts = []
    while (message := stream.app_receive_nowait()) is not None:
        texts.append(message["text"])
    assert texts == ["0", "1", "2", "3", "4"]
    conn.handle_timer(3.0)  # the pong was read with the messages: the next ping, no timeout
    assert not stream.complete


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_a_silent_peer_still_gets_a_ping_timeout(parser: str) -> None:
    conn, stream = session(parser, websocket_ping_interval=1.0, websocket_ping_timeout=1.0)
    conn.handle_timer(1.0)
    conn.handle_timer(2.5)
    assert stream.complete
    assert b"\x88" in conn.data_to_send()  # a close frame (1011)
